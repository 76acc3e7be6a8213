using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Freeze;

/// <summary>The result of freezing or thawing an environment: one state per mechanism.</summary>
public sealed record FreezeSummary
{
    public required string Environment { get; init; }
    public string? IncidentId { get; init; }
    public string? Reason { get; init; }
    public required IReadOnlyList<FreezeState> Mechanisms { get; init; }
    /// <summary>True when every mechanism is frozen (after Start) or thawed (after Stop).</summary>
    public required bool Complete { get; init; }
}

/// <summary>Freezes or thaws every selected mechanism of an environment, recording each change.</summary>
public static class FreezeOperations
{
    public static async Task<IReadOnlyList<FreezeState>> GetAsync(EnvironmentConfig environment, IReadOnlyCollection<FreezeKind>? kinds, FreezeMechanisms mechanisms, CancellationToken cancellationToken)
    {
        var states = new List<FreezeState>();
        foreach (IFreezeMechanism mechanism in mechanisms.For(environment, kinds))
        {
            states.Add(await mechanism.GetAsync(cancellationToken).ConfigureAwait(false));
        }
        return states;
    }

    /// <param name="freeze">True to freeze, false to thaw.</param>
    /// <param name="timeline">Appends (role, event) to the incident timeline.</param>
    public static async Task<FreezeSummary> ApplyAsync(EnvironmentConfig environment, IReadOnlyCollection<FreezeKind>? kinds, bool freeze, FreezeRequest request,
        bool dryRun, FreezeMechanisms mechanisms, Action<string, string> timeline, CancellationToken cancellationToken)
    {
        // The reason is written onto controllers (annotations) and into kill-switch commits.
        EngineServices.TextSafety.EnsurePolicySafe(request.Reason, "-Reason");
        var states = new List<FreezeState>();
        foreach (IFreezeMechanism mechanism in mechanisms.For(environment, kinds))
        {
            FreezeState state = freeze
                ? await mechanism.FreezeAsync(request, dryRun, cancellationToken).ConfigureAwait(false)
                : await mechanism.ThawAsync(request, dryRun, cancellationToken).ConfigureAwait(false);
            states.Add(state);
            if (state.Changed)
            {
                timeline("OPS", $"{(freeze ? "Froze" : "Thawed")} {state.Target} ({environment.Name})");
            }
            else if (!state.Freezable)
            {
                timeline("OPS", $"Could not freeze {state.Target}: {state.Detail}");
            }
        }
        return new FreezeSummary
        {
            Environment = environment.Name,
            IncidentId = request.IncidentId,
            Reason = request.Reason,
            Mechanisms = states,
            Complete = dryRun || states.All(s => freeze ? s.Frozen : !s.Frozen || s.FrozenBy is null),
        };
    }

    public static FreezeRequest Request(string? incidentId, string? reason, IClock? clock = null) =>
        new(incidentId ?? "none", Actor.Current(), reason ?? "incident response", (clock ?? SystemClock.Instance).UtcNow);
}
