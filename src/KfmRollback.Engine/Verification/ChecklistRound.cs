using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Context;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Verification;

/// <summary>
/// What one round of a checklist section is given: the engine context, the environment, the incident and
/// its start (the metric baseline is the window before it), the incidents that rule baseline windows out,
/// and, in a wait, when the rollout was first seen converged (<see cref="Since"/>: the metrics judge only
/// the time since). <see cref="Now"/> is the round's start, one instant for every check of the round;
/// <see cref="Previous"/> is the round before it in a wait.
/// </summary>
public sealed record ChecklistInput(EngineContext Context, EnvironmentConfig Environment, string? IncidentId, DateTimeOffset IncidentStart,
    BaselineHistory? History = null, bool RecordContractSnapshot = false)
{
    public DateTimeOffset Now { get; init; } = Context.Clock.UtcNow;
    public DateTimeOffset? Since { get; init; }
    /// <summary>In a wait, the round before this one (what it read stands as this round's earlier observation, as the restart counts do).</summary>
    public VerificationSummary? Previous { get; init; }
    /// <summary>
    /// In a wait, after the convergence: how long this round's metrics may wait for the requests the sequential
    /// 5xx test still needs (<see cref="MetricChecks.RunAsync"/>); zero judges once, at <see cref="Now"/>.
    /// </summary>
    public TimeSpan EvidenceWait { get; init; }
}

/// <summary>
/// One checklist section's round (A: <see cref="HealthChecks.SectionAsync"/>, B: <see cref="PolicyChecks.SectionAsync"/>,
/// C: <see cref="ContractChecks.SectionAsync"/>, D: <see cref="LogChecks.SectionAsync"/> and <see cref="TraceChecks.SectionAsync"/>):
/// each section's cmdlet calls its own checks; <see cref="VerificationRunner"/> only aggregates and waits.
/// </summary>
public delegate Task<IReadOnlyList<CheckResult>> ChecklistSection(ChecklistInput input, CancellationToken cancellationToken);

/// <summary>A section that could not probe the API records why as a failed check: an API that cannot be probed is not a pass.</summary>
public static class Unprobed
{
    /// <summary>Runs <paramref name="run"/>; a connection error or an invalid argument becomes <see cref="Result"/> for <paramref name="check"/>.</summary>
    public static async Task<IReadOnlyList<CheckResult>> Guard(EnvironmentConfig environment, string check, Func<Task<IReadOnlyList<CheckResult>>> run)
    {
        try { return await run().ConfigureAwait(false); }
        catch (KfmException ex) when (ex.Kind is KfmErrorKind.ConnectionError or KfmErrorKind.InvalidArgument)
        {
            return new[] { Result(environment, check, ex) };
        }
    }

    /// <summary>
    /// A section that could not run, as a failed check. A connection error may pass by waiting (the API
    /// comes back); an invalid argument (a missing credential, a bad setting) cannot, so it is settled.
    /// </summary>
    public static CheckResult Result(EnvironmentConfig environment, string check, KfmException ex) =>
        HealthChecks.Result(environment, check, Verdict.Fail, ex.Message, new Dictionary<string, string>()) with
        {
            Settled = ex.Kind == KfmErrorKind.InvalidArgument,
            NextStep = ex.Kind == KfmErrorKind.InvalidArgument
                ? "do what the summary says (a credential or setting only you can provide), then run the check again"
                : "the API did not answer: check api.base_url and that the API is up, then run the check again",
        };
}
