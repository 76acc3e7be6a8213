using System.Management.Automation;
using KfmRollback.Engine.Verification;

namespace KfmRollback.Cmdlets.Verification;

/// <summary>Checklist D: logs present over the window, and no sensitive payloads in them.</summary>
[Cmdlet(VerbsDiagnostic.Test, "KfmObservability")]
[OutputType(typeof(CheckResult), typeof(bool))]
public sealed class TestKfmObservabilityCommand : VerificationCmdlet
{
    protected override void ProcessRecordCore() => WriteResults(Run([LogChecks.SectionAsync, TraceChecks.SectionAsync]).Results);
}
