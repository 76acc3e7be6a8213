using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Context;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Incidents;

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

/// <summary>
/// Runbook step 0 (Start-, Stop-, Get-KfmFreeze): freezes or thaws every selected mechanism of an
/// environment and records each change. Built from the engine context: its mechanisms (the
/// controllers' adapters and the kill switch), the policy-safe text rule and the clock.
/// </summary>
public sealed class FreezeService
{
    private readonly FreezeMechanisms _mechanisms;
    private readonly ITextSafety _textSafety;
    private readonly IClock _clock;

    public FreezeService(EngineContext context)
        : this(new FreezeMechanisms(context), context.TextSafety, context.Clock)
    {
    }

    /// <param name="mechanisms">The mechanisms an environment configures (tests: scripted ones, or the lab's).</param>
    public FreezeService(FreezeMechanisms mechanisms, ITextSafety textSafety, IClock clock)
    {
        _mechanisms = mechanisms;
        _textSafety = textSafety;
        _clock = clock;
    }

    public async Task<IReadOnlyList<FreezeState>> GetAsync(EnvironmentConfig environment, IReadOnlyCollection<FreezeKind>? kinds, CancellationToken cancellationToken)
    {
        var states = new List<FreezeState>();
        foreach (IFreezeMechanism mechanism in _mechanisms.For(environment, kinds))
        {
            states.Add(await mechanism.GetAsync(cancellationToken).ConfigureAwait(false));
        }
        return states;
    }

    /// <param name="freeze">True to freeze, false to thaw.</param>
    /// <param name="timeline">Appends (role, event) to the incident timeline.</param>
    /// <param name="otherTimeline">Appends (incident, role, event) to another incident's timeline: a forced thaw is recorded on the timelines of the holders it overrode.</param>
    public async Task<FreezeSummary> ApplyAsync(EnvironmentConfig environment, IReadOnlyCollection<FreezeKind>? kinds, bool freeze, FreezeRequest request,
        bool dryRun, Action<string, string> timeline, CancellationToken cancellationToken, Action<string, string, string>? otherTimeline = null)
    {
        // The reason is written onto controllers (annotations) and into kill-switch commits.
        _textSafety.EnsurePolicySafe(request.Reason, "-Reason");
        var states = new List<FreezeState>();
        IReadOnlyList<IFreezeMechanism> mechanisms = _mechanisms.For(environment, kinds);
        if (freeze && !dryRun)
        {
            // Who asked, and when the freeze began: a run's freeze phase runs from here to the last mechanism frozen.
            timeline("OPS", $"{TimelineFacts.FreezeRequestedPrefix}{environment.Name}: {string.Join(", ", mechanisms.Select(m => m.Target))}");
        }
        foreach (IFreezeMechanism mechanism in mechanisms)
        {
            FreezeState state = freeze
                ? await mechanism.FreezeAsync(request, dryRun, cancellationToken).ConfigureAwait(false)
                : await mechanism.ThawAsync(request, dryRun, cancellationToken).ConfigureAwait(false);
            states.Add(state);
            Record(environment, request, state, timeline, otherTimeline);
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

    /// <summary>
    /// Stop-KfmFreeze: when this thaw would resume a controller (no other holder left, or holders
    /// overridden with <paramref name="overrideReason"/>), first checks what Git would redeploy
    /// (<see cref="ThawGuard"/>: a quarantined pin is refused before anything changes), then thaws.
    /// </summary>
    public async Task<(FreezeSummary Summary, ThawDesiredState? Desired)> ThawAsync(EnvironmentConfig environment, IReadOnlyCollection<FreezeKind>? kinds, FreezeRequest request,
        string? overrideReason, bool dryRun, Func<Refs.ApiRef> readDesired, Action<string, string> timeline, CancellationToken cancellationToken,
        Action<string, string, string>? otherTimeline = null)
    {
        IReadOnlyList<FreezeState> before = await GetAsync(environment, kinds, cancellationToken).ConfigureAwait(false);
        // Releasing one hold while another incident keeps the controller frozen lets nothing deploy: no Git check then.
        bool resumes = before.Any(s => s.Frozen && s.FrozenBy is not null
            && (overrideReason is not null || s.Holders.All(h => string.Equals(h.IncidentId, request.IncidentId, StringComparison.OrdinalIgnoreCase))));
        ThawDesiredState? desired = resumes
            ? ThawGuard.Check(environment, readDesired, overrideReason, dryRun ? (_, _) => { } : timeline)
            : null;
        FreezeSummary summary = await ApplyAsync(environment, kinds, freeze: false, request, dryRun, timeline, cancellationToken, otherTimeline).ConfigureAwait(false);
        return (summary, desired);
    }

    /// <summary>The timeline lines of one mechanism's change (TimelineFacts reads them back).</summary>
    private static void Record(EnvironmentConfig environment, FreezeRequest request, FreezeState state, Action<string, string> timeline, Action<string, string, string>? otherTimeline)
    {
        string where = $"{state.Target} ({environment.Name})";
        string Holders() => string.Join(", ", state.Holders.Select(h => h.IncidentId).Where(id => !string.Equals(id, request.IncidentId, StringComparison.OrdinalIgnoreCase)));
        switch (state.Action)
        {
            case FreezeAction.Froze:
                timeline("OPS", $"{TimelineFacts.FrozePrefix}{where}");
                break;
            case FreezeAction.Joined:
                timeline("OPS", $"{TimelineFacts.JoinedPrefix}{where}, held by {Holders()}");
                break;
            case FreezeAction.Released:
                timeline("OPS", $"{TimelineFacts.ReleasedPrefix}{where}; still frozen, held by {Holders()}");
                break;
            case FreezeAction.Thawed:
                timeline("OPS", $"{TimelineFacts.ThawedPrefix}{where}");
                if (state.Overridden.Count > 0)
                {
                    string ids = string.Join(", ", state.Overridden.Select(h => h.IncidentId));
                    timeline("OPS", $"FORCED thaw of {where} while {ids} held it: {request.Reason}");
                    foreach (FreezeHolder holder in state.Overridden)
                    {
                        otherTimeline?.Invoke(holder.IncidentId, "OPS", $"{TimelineFacts.ThawedPrefix}{where} by {request.IncidentId} ({request.Actor}), overriding this incident's hold: {request.Reason}");
                    }
                }
                break;
            default:
                if (!state.Freezable)
                {
                    timeline("OPS", $"Could not freeze {state.Target}: {state.Detail}");
                }
                else if (state.Changed)
                {
                    // Proposed, not in force (a kill-switch change through a pull request).
                    timeline("OPS", $"Change to {where} waits for review: {state.Detail}");
                }
                break;
        }
    }

    /// <summary>The request of an incident (or of "none", the holder of freezes made without one).</summary>
    public FreezeRequest Request(string? incidentId, string? reason, bool force = false) =>
        new(string.IsNullOrWhiteSpace(incidentId) ? NoIncident : incidentId, Actor.Current(), reason ?? "incident response", _clock.UtcNow, force);

    /// <summary>The holder of a freeze made without -IncidentId.</summary>
    public const string NoIncident = "none";
}
