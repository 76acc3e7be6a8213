using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Freeze;

/// <summary>Who freezes (or thaws) and why; recorded on the frozen object so anyone can see it.</summary>
public sealed record FreezeRequest(string IncidentId, string Actor, string Reason, DateTimeOffset At);

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
    /// <summary>True when this call changed something (false for an idempotent repeat or a dry run).</summary>
    public bool Changed { get; init; }
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

    /// <summary>Freezes; with <paramref name="dryRun"/> it reports what it would do and changes nothing.</summary>
    Task<FreezeState> FreezeAsync(FreezeRequest request, bool dryRun, CancellationToken cancellationToken);

    /// <summary>Restores exactly the settings recorded at freeze time.</summary>
    Task<FreezeState> ThawAsync(FreezeRequest request, bool dryRun, CancellationToken cancellationToken);
}
