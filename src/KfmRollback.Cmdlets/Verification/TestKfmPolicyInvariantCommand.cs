using System.Management.Automation;
using KfmRollback.Engine.Verification;

namespace KfmRollback.Cmdlets.Verification;

/// <summary>Checklist B: the policy boundary probed from outside, existence leaks included.</summary>
[Cmdlet(VerbsDiagnostic.Test, "KfmPolicyInvariant")]
[OutputType(typeof(CheckResult), typeof(bool))]
public sealed class TestKfmPolicyInvariantCommand : VerificationCmdlet
{
    protected override void ProcessRecordCore() => WriteResults(Run(VerificationSections.PolicyInvariants).Results);
}
