using KfmRollback.Engine.Adapters.Http;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Verification;

/// <summary>
/// What waiting can fix, in one place. A check whose verdict rests on the configuration or on what
/// only a person can provide (a probe credential, restricted ids known to exist, a recorded contract
/// snapshot, a trace API) cannot change by checking again: it is <see cref="CheckResult.Settled"/>, so
/// <c>-Wait</c> stops waiting on it. Every check that did not pass gets the next step that can change
/// its verdict (<see cref="CheckResult.NextStep"/>), which the cmdlets print as a warning when they end.
/// </summary>
/// <remarks>
/// Checks mark themselves settled where they know it (a section not configured); the rules here add
/// what the runner knows from the configuration alone (no restricted ids given), so the checks' own
/// code stays free of waiting policy.
/// </remarks>
public static class WaitingRules
{
    /// <summary>The soonest a next round is worth running: Prometheus has not scraped anything new sooner.</summary>
    public static readonly TimeSpan ShortestRound = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The longest a round's metrics wait, within the round, for the requests the sequential 5xx test still
    /// needs (<see cref="ChecklistInput.EvidenceWait"/>): two scrapes, so an estimate that was a little early
    /// still ends in the round that has the evidence.
    /// </summary>
    public static readonly TimeSpan EvidenceWait = 2 * ShortestRound;

    /// <summary>
    /// How long before the requests are expected a round starts: the round's other sections (probes, contract,
    /// logs, traces) run while its metrics wait for the last requests, so the verdict comes when the evidence
    /// does, not a round's length after it.
    /// </summary>
    public static readonly TimeSpan EvidenceLead = ShortestRound;

    /// <summary>
    /// When to check again. In the round that first saw the rollout converged, the metrics still judged the
    /// window before it (the bad build's traffic), so the next round comes two scrapes later to judge the
    /// rolled-back build's own. While the sequential 5xx test then waits for requests, its next round is due
    /// when the requests it needs (<see cref="SequentialTest.Outcome.RequestsToPass"/>) should have arrived
    /// at the rate counted between the last two rounds (since the convergence, if this is the first to count),
    /// less <see cref="EvidenceLead"/>, and that round's metrics wait for the last of them
    /// (<see cref="EvidenceWait"/>), so a clean build is passed when its evidence exists rather than up to
    /// <paramref name="interval"/> later; with no rate yet, two scrapes' time gives one. Never sooner than
    /// <see cref="ShortestRound"/> nor later than <paramref name="interval"/>.
    /// </summary>
    /// <param name="sinceConverged">Time from the convergence to this round's start (the window its counts cover); null before convergence.</param>
    /// <param name="previous">The round before, and its window since the convergence (null: none counted since).</param>
    public static TimeSpan NextRound(VerificationSummary summary, TimeSpan? sinceConverged, TimeSpan interval,
        (VerificationSummary Round, TimeSpan SinceConverged)? previous = null)
    {
        if (sinceConverged is not { } window)
        {
            return interval;
        }
        TimeSpan twoScrapes = 2 * ShortestRound;
        if (window <= TimeSpan.Zero)
        {
            return twoScrapes < interval ? twoScrapes : interval;
        }
        CheckResult? errors = OpenErrorRatio(summary);
        if (errors is null)
        {
            return interval;
        }
        TimeSpan seconds = twoScrapes;
        if (errors.Reading is { Requests: { } requests and > 0, ErrorTest: { } test } reading)
        {
            // The window the count covers; it ends after this round's start when the round waited for its evidence.
            TimeSpan counted = reading.Window ?? window;
            double rate = requests / counted.TotalSeconds;
            if (previous is { SinceConverged: { } earlier } before && OpenErrorRatio(before.Round)?.Reading is { Requests: { } lastRequests } last
                && (last.Window ?? earlier) is var lastCounted && lastCounted > TimeSpan.Zero && lastCounted < counted && requests > lastRequests)
            {
                rate = (requests - lastRequests) / (counted - lastCounted).TotalSeconds;
            }
            // Counted from this round's start: the rest of the count's window, then the requests still needed, less the lead.
            seconds = (counted - window) + TimeSpan.FromSeconds((test.RequestsToPass - requests) / rate) - EvidenceLead;
        }
        return seconds >= interval ? interval : seconds <= ShortestRound ? ShortestRound : seconds;
    }

    private static CheckResult? OpenErrorRatio(VerificationSummary round) =>
        round.Results.FirstOrDefault(r => r.Check == MetricChecks.ErrorRatioCheck && r.Verdict == Verdict.Inconclusive);

    /// <summary>The results with <see cref="CheckResult.Settled"/> and <see cref="CheckResult.NextStep"/> decided.</summary>
    public static IReadOnlyList<CheckResult> Apply(EnvironmentConfig environment, IReadOnlyList<CheckResult> results) =>
        results.Select(result => Decide(environment, result)).ToList();

    private static CheckResult Decide(EnvironmentConfig environment, CheckResult result)
    {
        if (result.Verdict == Verdict.Pass)
        {
            return result;
        }
        ProbePlan plan = environment.Api.Probe;
        if (result.Check.StartsWith("B.existence-leak", StringComparison.Ordinal) && result.Verdict == Verdict.Inconclusive
            && plan.RestrictedIds().Count == 0)
        {
            // No restricted id known to exist, so no leak comparison can ever run: only a person can give them.
            string where = plan.RestrictedIdsEnv is { } variable ? $"set ${variable}"
                : plan.RestrictedIdsFile is { } file ? $"write them to {file}"
                : "set api.probe.restricted_ids_env (or restricted_ids_file) and provide them";
            return result with { Settled = true, NextStep = $"give restricted dataset ids known to exist ({where}, comma-separated), then run the check again" };
        }
        return result with { NextStep = result.NextStep ?? NextStep(environment, result) };
    }

    /// <summary>What to do about a check that did not pass, by check and verdict.</summary>
    private static string NextStep(EnvironmentConfig environment, CheckResult result)
    {
        bool failed = result.Verdict == Verdict.Fail;
        string check = result.Check;
        if (result.Settled)
        {
            // Settled by the check itself (a section not configured): its summary says which key is missing.
            return "configure what the summary names; checking again will not change it";
        }
        return check switch
        {
            "A.deployment-stable" => failed
                ? "the rolled-back pods are not healthy: look at the pods (kubectl describe pods), roll back further (-ToRevision) or fail closed (Enable-KfmFailClosed)"
                : "the rollout has not finished: wait longer (-Timeout) or follow it with Wait-KfmRollback",
            _ when check.StartsWith("A.endpoint", StringComparison.Ordinal) =>
                "the health endpoint does not answer 200: look at the pods and the API's logs; fail closed (Enable-KfmFailClosed) if it stays down",
            MetricChecks.ErrorRatioCheck or "A.p95-latency" or "A.p99-latency" => failed
                ? $"still above baseline: if the rolled-back build had its evaluation window ({Configuration.Binding.DurationParser.Format(environment.Prometheus.EvaluationWindow)}) to itself, it does not restore health: roll back further (-ToRevision) or fail closed (Enable-KfmFailClosed)"
                : "too little traffic (or no answer from Prometheus) in the evaluation window: wait longer (-Timeout), or check prometheus.url and the selector",
            _ when check.StartsWith("B.", StringComparison.Ordinal) => failed
                ? "the policy boundary is broken: fail closed now (Enable-KfmFailClosed) and escalate; governance review follows (New-KfmFollowUp)"
                : "no answer to judge the policy boundary by: check that the API answers the probes (api.base_url), then run the check again",
            "C.no-breaking-change" or "C.spec-diff" => failed
                ? "the contract broke against the last-known-good: roll back to a build that keeps it (-ToRevision/-ToRef) or fail closed"
                : "record the contract of a known-good build (Test-KfmContract -RecordSnapshot while it serves)",
            _ when check.StartsWith("C.", StringComparison.Ordinal) => failed
                ? "the API breaks its own OpenAPI contract: roll back to a build that keeps it (-ToRevision/-ToRef) or fail closed (Enable-KfmFailClosed)"
                : "the contract could not be judged: check that the API serves its OpenAPI document, then run the check again",
            "D.logs-present" => "no log lines in the window: check the pods' logging and observability.log_window",
            "D.no-sensitive-payloads" => "sensitive payloads in the logs: treat it as a data exposure (governance review, New-KfmFollowUp) and stop the logging of them",
            "D.traces" => failed
                ? "traces do not show policy evaluation: check the API's tracing of the policy step (observability.traces.policy_span)"
                : "the trace did not arrive in time: check the trace API (observability.traces.url) or raise observability.traces.deadline",
            _ => "look at the summary; run the check again once it is addressed",
        };
    }
}
