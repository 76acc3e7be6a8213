using System.Management.Automation;
using KfmRollback.Engine.Verification;

namespace KfmRollback.Cmdlets.Verification;

/// <summary>
/// Checklist B: the policy boundary probed from outside, existence leaks included; with
/// -PolicyCases (or policy_surface.cases_file), the policy cases after confirming OPA's active bundle.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "KfmPolicyInvariant")]
[OutputType(typeof(CheckResult), typeof(bool))]
public sealed class TestKfmPolicyInvariantCommand : VerificationCmdlet
{
    /// <summary>A YAML or JSON list of policy cases (name, caller, method, endpoint, expect allow|deny).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? PolicyCases { get; set; }

    /// <summary>Only the policy cases (with the bundle check), not the boundary probes.</summary>
    [Parameter]
    public SwitchParameter CasesOnly { get; set; }

    protected override void ProcessRecordCore()
    {
        var environment = RequireEnvironment();
        string? cases = PolicyCases is null ? environment.PolicySurface?.CasesFile : GetUnresolvedProviderPathFromPSPath(PolicyCases);
        if (CasesOnly && cases is null)
        {
            throw new Engine.Core.KfmException("PolicyCasesMissing", Engine.Core.KfmErrorKind.InvalidArgument,
                $"-CasesOnly needs policy cases: pass -PolicyCases <file> or set policy_surface.cases_file for {environment.Name}.", environment.Name);
        }
        var results = new List<CheckResult>();
        if (!CasesOnly) { results.AddRange(Run([PolicyChecks.SectionAsync]).Results); }
        if (cases is not null)
        {
            results.AddRange(RunAsync(token => Engine.Verification.PolicyCases.RunAsync(EngineContext, environment, cases, !Wait ? TimeSpan.Zero : Timeout < TimeSpan.FromMinutes(1) ? Timeout : TimeSpan.FromMinutes(1), token)));
        }
        WriteResults(results);
    }
}
