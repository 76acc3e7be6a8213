using System.Management.Automation;
using KfmRollback.Engine.Verification;

namespace KfmRollback.Cmdlets.Verification;

/// <summary>Checklist A: deployment stable, health endpoints up, 5xx ratio and P95 back to baseline.</summary>
[Cmdlet(VerbsDiagnostic.Test, "KfmApiHealth")]
[OutputType(typeof(CheckResult), typeof(bool))]
public sealed class TestKfmApiHealthCommand : VerificationCmdlet
{
    protected override void ProcessRecordCore() => WriteResults(Run([HealthChecks.SectionAsync]).Results);
}
