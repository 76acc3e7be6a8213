using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Freeze;

/// <summary>
/// Who freezes (or thaws) and why; recorded on the frozen object so anyone can see it. A thaw with
/// <paramref name="Force"/> lifts the freeze although other incidents still hold it (Stop-KfmFreeze
/// -Force -Reason; the override is recorded on their timelines).
/// </summary>
public sealed record FreezeRequest(string IncidentId, string Actor, string Reason, DateTimeOffset At, bool Force = false);

/// <summary>What a freeze or thaw call did to one mechanism.</summary>
public enum FreezeAction
{
    /// <summary>Nothing changed (an idempotent repeat, a dry run, or a thaw another incident's hold prevents).</summary>
    None,
    /// <summary>Stopped deploys, recording the prior settings and this incident as the first holder.</summary>
    Froze,
    /// <summary>Already frozen for another incident: this incident was added to the holders.</summary>
    Joined,
    /// <summary>This incident's hold was removed; the freeze stays for the holders left.</summary>
    Released,
    /// <summary>Restored the prior settings: no holder was left, or the thaw was forced.</summary>
    Thawed,
}

/// <summary>
/// The state of one freeze mechanism. <see cref="PriorSettings"/> is what thawing restores exactly
/// (for example Argo CD's automated sync policy as JSON).
/// </summary>
public sealed record FreezeState
{
    public required string Environment { get; init; }
    public required FreezeKind Mechanism { get; init; }
    /// <summary>What is frozen, e.g. <c>argocd/Application/kfm-api-prod</c> or <c>git:infra/gitops/FREEZE</c>.</summary>
    public required string Target { get; init; }
    public required bool Frozen { get; init; }
    /// <summary>False when this mechanism cannot freeze the target (e.g. an ApplicationSet-owned Application).</summary>
    public bool Freezable { get; init; } = true;
    public string? IncidentId { get; init; }
    public string? FrozenBy { get; init; }
    public DateTimeOffset? FrozenAt { get; init; }
    public string? Reason { get; init; }
    public string? PriorSettings { get; init; }
    /// <summary>The incidents holding the freeze (empty when not frozen by KfmRollback); the freeze stays while any is open.</summary>
    public IReadOnlyList<FreezeHolder> Holders { get; init; } = Array.Empty<FreezeHolder>();
    /// <summary>True when this call changed something (false for an idempotent repeat or a dry run).</summary>
    public bool Changed { get; init; }
    /// <summary>What this call did (<see cref="FreezeAction.None"/> for a read).</summary>
    public FreezeAction Action { get; init; }
    /// <summary>A forced thaw: the holders other than the requester whose freeze it lifted.</summary>
    public IReadOnlyList<FreezeHolder> Overridden { get; init; } = Array.Empty<FreezeHolder>();
    /// <summary>A short, policy-safe explanation for people (why not freezable, which PR, ...).</summary>
    public string? Detail { get; init; }
}

/// <summary>
/// One way of stopping deploys (Argo CD auto-sync, Flux suspend, a kill-switch file), behind one
/// interface as Flux's CLI does for suspend/resume. Every operation is idempotent.
/// </summary>
public interface IFreezeMechanism
{
    FreezeKind Kind { get; }

    /// <summary>The target this mechanism acts on, for messages and -WhatIf.</summary>
    string Target { get; }

    Task<FreezeState> GetAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Freezes, or adds the requesting incident to the holders of a freeze already in force; with
    /// <paramref name="dryRun"/> it reports what it would do and changes nothing.
    /// </summary>
    Task<FreezeState> FreezeAsync(FreezeRequest request, bool dryRun, CancellationToken cancellationToken);

    /// <summary>
    /// Releases the requesting incident's hold; restores exactly the settings recorded at freeze time
    /// once no other incident holds the freeze (or the request is forced).
    /// </summary>
    Task<FreezeState> ThawAsync(FreezeRequest request, bool dryRun, CancellationToken cancellationToken);
}
