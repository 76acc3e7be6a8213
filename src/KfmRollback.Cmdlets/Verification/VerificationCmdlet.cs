using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Verification;

namespace KfmRollback.Cmdlets.Verification;

/// <summary>Shared by the Test-* checklist cmdlets: the incident start (for baselines) and -Quiet.</summary>
public abstract class VerificationCmdlet : KfmEnvironmentCmdlet
{
    /// <summary>When the incident started; the metric baseline is the window before it.</summary>
    [Parameter]
    public DateTimeOffset? IncidentStart { get; set; }

    [Parameter]
    public SwitchParameter Quiet { get; set; }

    /// <summary>Re-check until every check passes or -Timeout runs out.</summary>
    [Parameter]
    public SwitchParameter Wait { get; set; }

    [Parameter]
    [DurationTransformation]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(5);

    protected DateTimeOffset ResolveIncidentStart() =>
        IncidentStart ?? TryGetIncident()?.StartedAt ?? DateTimeOffset.UtcNow.AddMinutes(-30);

    protected VerificationSummary Run(VerificationSections sections, bool recordContractSnapshot = false)
    {
        var environment = RequireEnvironment();
        DateTimeOffset start = ResolveIncidentStart();
        if (!Wait)
        {
            return RunAsync(token => VerificationRunner.RunAsync(environment, IncidentId, start, sections, clock: null, token, recordContractSnapshot));
        }
        VerificationSummary last = RunAsync(token => VerificationRunner.WaitAsync(environment, IncidentId, start, sections, Timeout, TimeSpan.FromSeconds(5),
            (summary, left) => OnPipelineThread(() => WriteProgress(new ProgressRecord(2, $"Verifying {environment.Name}",
                $"{summary.Results.Count(r => r.Verdict == Verdict.Pass)} of {summary.Results.Count} checks pass; {Math.Max(0, left.TotalSeconds):0} s left"))), token));
        WriteProgress(new ProgressRecord(2, $"Verifying {environment.Name}", "done") { RecordType = ProgressRecordType.Completed });
        return last;
    }

    protected void WriteResults(IReadOnlyList<CheckResult> results)
    {
        if (Quiet)
        {
            WriteObject(results.Count > 0 && results.All(r => r.Verdict == Verdict.Pass));
            return;
        }
        WriteObject(results, enumerateCollection: true);
    }
}
