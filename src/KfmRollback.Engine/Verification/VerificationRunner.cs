using KfmRollback.Engine.Adapters.Http;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Context;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Refs;

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

/// <summary>Runs the checklist sections and returns one summary; a section that cannot run says why.</summary>
public static class VerificationRunner
{
    public static async Task<VerificationSummary> RunAsync(EngineContext context, EnvironmentConfig environment, string? incidentId, DateTimeOffset incidentStart,
        VerificationSections sections, CancellationToken cancellationToken, bool recordContractSnapshot = false, BaselineHistory? history = null, DateTimeOffset? since = null)
    {
        bool health = sections.HasFlag(VerificationSections.Health), policy = sections.HasFlag(VerificationSections.PolicyInvariants);
        var results = new List<CheckResult>();
        DateTimeOffset now = context.Clock.UtcNow;
        if (health)
        {
            results.AddRange(await HealthChecks.RunAsync(context.Kubernetes(environment), environment, incidentStart, now, cancellationToken, history, since).ConfigureAwait(false));
        }
        if (policy)
        {
            try
            {
                results.AddRange(await PolicyChecks.RunAsync(environment, cancellationToken).ConfigureAwait(false));
            }
            catch (KfmException ex) when (ex.Kind is KfmErrorKind.ConnectionError or KfmErrorKind.InvalidArgument)
            {
                // An API that cannot be probed is not a pass: record why, as a failed check.
                results.Add(Unprobed(environment, "B.probe", ex));
            }
        }
        if (sections.HasFlag(VerificationSections.Contract))
        {
            string? digest = (await new ClusterRefSource(context).ReadAsync(new RefQuery(environment, IncidentId: incidentId), LastKnownGoodAuthority.HistoryOnly, cancellationToken).ConfigureAwait(false)).CurrentRef;
            results.AddRange(await Guard(environment, "C.contract", () => ContractChecks.RunAsync(environment, digest, recordContractSnapshot, cancellationToken)).ConfigureAwait(false));
        }
        if (sections.HasFlag(VerificationSections.Observability))
        {
            results.AddRange(await LogChecks.RunAsync(context.Kubernetes(environment), environment, environment.Api.Probe.RestrictedIds(), cancellationToken).ConfigureAwait(false));
            results.AddRange(await Guard(environment, TraceChecks.Check, () => TraceChecks.RunAsync(environment, cancellationToken)).ConfigureAwait(false));
        }
        return new VerificationSummary { Environment = environment.Name, IncidentId = incidentId, Results = WaitingRules.Apply(environment, results) };
    }

    /// <summary>An API that cannot be probed is not a pass: record why as a failed check.</summary>
    private static async Task<IReadOnlyList<CheckResult>> Guard(EnvironmentConfig environment, string check, Func<Task<IReadOnlyList<CheckResult>>> run)
    {
        try { return await run().ConfigureAwait(false); }
        catch (KfmException ex) when (ex.Kind is KfmErrorKind.ConnectionError or KfmErrorKind.InvalidArgument)
        {
            return new[] { Unprobed(environment, check, ex) };
        }
    }

    /// <summary>
    /// A section that could not run, as a failed check. A connection error may pass by waiting (the API
    /// comes back); an invalid argument (a missing credential, a bad setting) cannot, so it is settled.
    /// </summary>
    private static CheckResult Unprobed(EnvironmentConfig environment, string check, KfmException ex) =>
        HealthChecks.Result(environment, check, Verdict.Fail, ex.Message, new Dictionary<string, string>()) with
        {
            Settled = ex.Kind == KfmErrorKind.InvalidArgument,
            NextStep = ex.Kind == KfmErrorKind.InvalidArgument
                ? "do what the summary says (a credential or setting only you can provide), then run the check again"
                : "the API did not answer: check api.base_url and that the API is up, then run the check again",
        };

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
    public static async Task<VerificationSummary> WaitAsync(EngineContext context, EnvironmentConfig environment, string? incidentId, DateTimeOffset incidentStart,
        VerificationSections sections, TimeSpan timeout, TimeSpan interval, Action<VerificationSummary, TimeSpan>? progress, CancellationToken cancellationToken,
        BaselineHistory? history = null)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        DateTimeOffset? converged = null;
        while (true)
        {
            DateTimeOffset round = context.Clock.UtcNow;
            VerificationSummary summary = await RunAsync(context, environment, incidentId, incidentStart, sections, cancellationToken, history: history, since: converged).ConfigureAwait(false);
            if (converged is null && summary.Results.Any(r => r.Check == "A.deployment-stable" && r.Verdict == Verdict.Pass))
            {
                // Converged at the latest when this round began: judge from then on, at once.
                converged = round;
            }
            TimeSpan left = deadline - DateTime.UtcNow;
            progress?.Invoke(summary, left);
            if (NothingToWaitFor(summary) || left <= interval)
            {
                return summary;
            }
            await Task.Delay(interval, cancellationToken).ConfigureAwait(false);
        }
    }
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
            VerificationSummary summary = await VerificationRunner.RunAsync(context, environment, incidentId, incidentStart,
                VerificationSections.Health | VerificationSections.PolicyInvariants, cancellationToken, history: history, since: since).ConfigureAwait(false);
            return summary.Passed ? null
                : summary.Results.Count == 0 ? "no check could run"
                : string.Join(", ", summary.Results.Where(r => r.Verdict != Verdict.Pass).Select(r => $"{r.Check} {r.Verdict.ToString().ToLowerInvariant()}"));
        };
}
