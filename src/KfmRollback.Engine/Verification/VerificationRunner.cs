using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Context;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Verification;

/// <summary>Which checklist sections to run.</summary>
[Flags]
public enum VerificationSections
{
    Health = 1,
    PolicyInvariants = 2,
    Contract = 4,
    Observability = 8,
    All = Health | PolicyInvariants | Contract | Observability,
}

/// <summary>
/// The checklist as a whole: its sections in order (<see cref="Sections"/>), one round of them as one
/// summary, and the wait that repeats a round. It aggregates only: each section's checks are called by
/// the caller's round (a section cmdlet calls its own section's checks, <see cref="ChecklistSection"/>).
/// </summary>
public static class VerificationRunner
{
    /// <summary>The sections of <paramref name="sections"/>, in the checklist's order (D is its logs, then its traces).</summary>
    public static IReadOnlyList<ChecklistSection> Sections(VerificationSections sections)
    {
        var selected = new List<ChecklistSection>();
        if (sections.HasFlag(VerificationSections.Health)) selected.Add(HealthChecks.SectionAsync);
        if (sections.HasFlag(VerificationSections.PolicyInvariants)) selected.Add(PolicyChecks.SectionAsync);
        if (sections.HasFlag(VerificationSections.Contract)) selected.Add(ContractChecks.SectionAsync);
        if (sections.HasFlag(VerificationSections.Observability))
        {
            selected.Add(LogChecks.SectionAsync);
            selected.Add(TraceChecks.SectionAsync);
        }
        return selected;
    }

    /// <summary>
    /// One round of <paramref name="sections"/> as one summary, its results in the checklist's order. The
    /// sections run at once: each waits on a different system (the cluster's restart watch, Prometheus, the
    /// API's probes, the trace pipeline), and a round as long as its slowest section decides sooner.
    /// </summary>
    public static async Task<VerificationSummary> RunAsync(ChecklistInput input, IReadOnlyList<ChecklistSection> sections, CancellationToken cancellationToken)
    {
        IReadOnlyList<CheckResult>[] bySection = await Task.WhenAll(sections.Select(section => section(input, cancellationToken))).ConfigureAwait(false);
        return Summary(input, bySection.SelectMany(results => results).ToList());
    }

    /// <summary>A round's results as the summary, with the waiting rules applied (which verdicts waiting cannot change).</summary>
    public static VerificationSummary Summary(ChecklistInput input, IReadOnlyList<CheckResult> results) =>
        new() { Environment = input.Environment.Name, IncidentId = input.IncidentId, Results = WaitingRules.Apply(input.Environment, results) };

    /// <summary>
    /// Every check passed, or what is left cannot change by waiting (<see cref="WaitingRules"/>: a check
    /// not configured here, a credential or input only a person can give). Checks that can still change
    /// (a rollout settling, a metric window filling) are waited for, then the wait ends without its timeout.
    /// </summary>
    public static bool NothingToWaitFor(VerificationSummary summary) =>
        summary.Results.Count > 0 && summary.Results.All(r => r.Verdict == Verdict.Pass || r.Settled);

    /// <summary>The checks that did not pass, for a progress line: "B.error-model (inconclusive), C.openapi (fail, settled)".</summary>
    public static string NotPassing(VerificationSummary summary, int max = 4)
    {
        var open = summary.Results.Where(r => r.Verdict != Verdict.Pass).ToList();
        string listed = string.Join(", ", open.Take(max).Select(r => $"{r.Check} ({r.Verdict.ToString().ToLowerInvariant()}{(r.Settled ? ", waiting cannot fix" : "")})"));
        return open.Count > max ? $"{listed} and {open.Count - max} more" : listed;
    }

    /// <summary>
    /// Re-checks until every check passes, what is left cannot change by waiting
    /// (<see cref="NothingToWaitFor"/>), or <paramref name="timeout"/> runs out (metrics need their
    /// window to fill with the rolled-back build's traffic), reporting each round. Returns the last
    /// summary either way: a timeout is the caller's verdict to draw, not an exception.
    /// </summary>
    /// <remarks>
    /// The metrics judge only the traffic since the rollout was first seen converged (A.deployment-stable
    /// passing), so the verdict starts then and the sequential 5xx test decides as soon as those requests
    /// suffice (docs/verification.md), not after a fixed evaluation window.
    /// </remarks>
    /// <param name="sections">The caller's sections, run as one round (<see cref="RunAsync"/>) on an input whose <see cref="ChecklistInput.Since"/> and <see cref="ChecklistInput.Now"/> this wait sets.</param>
    public static async Task<VerificationSummary> WaitAsync(ChecklistInput input, IReadOnlyList<ChecklistSection> sections,
        TimeSpan timeout, TimeSpan interval, Action<VerificationSummary, TimeSpan>? progress, CancellationToken cancellationToken)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        DateTimeOffset? converged = null;
        (VerificationSummary Round, TimeSpan SinceConverged)? previous = null;
        while (true)
        {
            DateTimeOffset started = input.Context.Clock.UtcNow;
            // After the convergence a round's metrics may wait a little for their evidence, never past the timeout.
            TimeSpan evidenceWait = converged is null ? TimeSpan.Zero : Min(WaitingRules.EvidenceWait, deadline - DateTime.UtcNow);
            VerificationSummary summary = await RunAsync(input with { Now = started, Since = converged, Previous = previous?.Round, EvidenceWait = evidenceWait },
                sections, cancellationToken).ConfigureAwait(false);
            bool justConverged = converged is null && summary.Results.Any(r => r.Check == "A.deployment-stable" && r.Verdict == Verdict.Pass);
            if (justConverged)
            {
                // Converged at the latest when this round began: judge from then on, at once.
                converged = started;
            }
            TimeSpan left = deadline - DateTime.UtcNow;
            progress?.Invoke(summary, left);
            TimeSpan next = WaitingRules.NextRound(summary, started - converged, interval, previous);
            previous = (summary, started - converged ?? TimeSpan.Zero);
            // The round that first saw the convergence judged the metrics over a window that may hold the bad
            // build's traffic: its pass is not the rolled-back build's, so the wait goes on to judge that.
            bool judgedOnlyEarlierTraffic = justConverged && summary.Results.Any(r => r.Check == MetricChecks.ErrorRatioCheck && !r.Settled);
            if ((NothingToWaitFor(summary) && !judgedOnlyEarlierTraffic) || left <= next)
            {
                return summary;
            }
            // The schedule counts from the round's start (its window's end): a slow round does not push the next one back.
            TimeSpan wait = next - (input.Context.Clock.UtcNow - started);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}

/// <summary>The check a fleet runs on each environment of a wave after its bake time.</summary>
public static class WaveVerification
{
    /// <summary>Checklist A (health) and B (policy invariants); null when every check passed, else the checks that did not.</summary>
    /// <remarks>
    /// The wave's rollouts converged before its bake time began, so the metrics judge the traffic since then
    /// (<paramref name="bakeTime"/> back from now): the sequential 5xx test decides on that evidence, and a
    /// bake too short for it leaves the check inconclusive, which stops the fleet.
    /// </remarks>
    public static Func<EnvironmentConfig, CancellationToken, Task<string?>> HealthAndPolicy(EngineContext context, string? incidentId, DateTimeOffset incidentStart,
        BaselineHistory? history = null, TimeSpan bakeTime = default) =>
        async (environment, cancellationToken) =>
        {
            DateTimeOffset? since = bakeTime > TimeSpan.Zero ? context.Clock.UtcNow - bakeTime : null;
            var input = new ChecklistInput(context, environment, incidentId, incidentStart, history) { Since = since };
            VerificationSummary summary = await VerificationRunner.RunAsync(input,
                VerificationRunner.Sections(VerificationSections.Health | VerificationSections.PolicyInvariants), cancellationToken).ConfigureAwait(false);
            return summary.Passed ? null
                : summary.Results.Count == 0 ? "no check could run"
                : string.Join(", ", summary.Results.Where(r => r.Verdict != Verdict.Pass).Select(r => $"{r.Check} {r.Verdict.ToString().ToLowerInvariant()}"));
        };
}
