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

    /// <summary>
    /// Runs the given checklist sections once, or with -Wait until they pass or -Timeout runs out. The
    /// sections are called from here (each section cmdlet names its own); the runner only aggregates and waits.
    /// </summary>
    protected VerificationSummary Run(IReadOnlyList<ChecklistSection> sections, bool recordContractSnapshot = false)
    {
        var environment = RequireEnvironment();
        DateTimeOffset start = ResolveIncidentStart();
        // The journal's incidents rule baseline windows out (checklist A compares against a verified-good window).
        BaselineHistory? history = sections.Contains(HealthChecks.SectionAsync) ? BaselineHistory.FromIncidents(OpenJournal(environment).ReadAll(), environment.Name) : null;
        var input = new ChecklistInput(EngineContext, environment, IncidentId, start, history, recordContractSnapshot);
        if (!Wait)
        {
            return RunAsync(token => VerificationRunner.RunAsync(input, sections, token));
        }
        VerificationSummary last = RunAsync(token => VerificationRunner.WaitAsync(input, sections, Timeout, TimeSpan.FromSeconds(5),
            (summary, left) => OnPipelineThread(() => WriteProgress(new ProgressRecord(2, $"Verifying {environment.Name}", Progress(summary, left)))), token));
        WriteProgress(new ProgressRecord(2, $"Verifying {environment.Name}", "done") { RecordType = ProgressRecordType.Completed });
        WarnNotPassing(last);
        return last;
    }

    /// <summary>"8 of 11 checks pass; not yet: B.existence-leak/… (inconclusive, waiting cannot fix), A.error-ratio (fail); 178 s left".</summary>
    private static string Progress(VerificationSummary summary, TimeSpan left)
    {
        int passed = summary.Results.Count(r => r.Verdict == Verdict.Pass);
        string open = VerificationRunner.NotPassing(summary);
        return $"{passed} of {summary.Results.Count} checks pass{(open.Length > 0 ? "; not yet: " + open : "")}; {Math.Max(0, left.TotalSeconds):0} s left";
    }

    /// <summary>When a wait ends without a pass: why it ended, then one warning per check that did not pass, with its next step.</summary>
    private void WarnNotPassing(VerificationSummary summary)
    {
        var open = summary.Results.Where(r => r.Verdict != Verdict.Pass).ToList();
        if (open.Count == 0)
        {
            return;
        }
        string ended = VerificationRunner.NothingToWaitFor(summary)
            ? "before its timeout: what is left cannot change by waiting"
            : $"at its timeout ({Engine.Configuration.Binding.DurationParser.Format(Timeout)})";
        WriteWarning($"Verification of {summary.Environment} ended {ended}; {open.Count} of {summary.Results.Count} checks did not pass.");
        foreach (CheckResult result in open)
        {
            WriteWarning($"{result.Check}: {result.Verdict.ToString().ToLowerInvariant()}: {result.Summary}. Next: {result.NextStep}.");
        }
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
