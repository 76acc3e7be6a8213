using System.Management.Automation;
using KfmRollback.Engine.Verification;

namespace KfmRollback.Cmdlets.Verification;

/// <summary>Checklist C: smoke calls from the API's OpenAPI document, schema validation, no breaking change.</summary>
[Cmdlet(VerbsDiagnostic.Test, "KfmContract")]
[OutputType(typeof(CheckResult), typeof(bool))]
public sealed class TestKfmContractCommand : VerificationCmdlet
{
    /// <summary>Record the contract snapshot of the running build (do it on a known-good build).</summary>
    [Parameter]
    public SwitchParameter RecordSnapshot { get; set; }

    protected override void ProcessRecordCore() => WriteResults(Run([ContractChecks.SectionAsync], RecordSnapshot).Results);
}
