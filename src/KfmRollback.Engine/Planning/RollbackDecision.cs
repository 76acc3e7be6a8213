using KfmRollback.Engine.Receipts;

namespace KfmRollback.Engine.Planning;

/// <summary>
/// Get-KfmRollbackPlan's answer to the runbook's decision tree for one environment: which surfaces
/// changed against the last-known-good, how to roll them back, and the comparisons that say so.
/// Property names bind by name into Invoke-KfmRollback (Environment, IncidentId, Method, Surface,
/// ToRef, ToRevision).
/// </summary>
public sealed record RollbackDecision
{
    public required string Environment { get; init; }
    public string? IncidentId { get; init; }
    /// <summary>"GitOps" when the GitOps repository is reachable and its desired ref readable, else "Cluster".</summary>
    public required string Method { get; init; }
    public required string MethodReason { get; init; }
    /// <summary>Every method (GitOps, Cluster, Helm), whether the decision tree chose it, and why (not).</summary>
    public IReadOnlyList<MethodChoice> Methods { get; init; } = Array.Empty<MethodChoice>();
    /// <summary>The surfaces that changed, in runbook order: Image, Config, Policy.</summary>
    public required string[] Surface { get; init; }
    /// <summary>GitOps: the last-known-good digest to pin, when the image changed (null for Cluster, which targets ToRevision).</summary>
    public string? ToRef { get; init; }
    /// <summary>Cluster: the Deployment revision of the last-known-good (null for GitOps, which pins ToRef).</summary>
    public long? ToRevision { get; init; }
    public string? CurrentRef { get; init; }
    public long CurrentRevision { get; init; }
    /// <summary>The last-known-good digest whether or not the image changed (the receipt's rollback_target_ref).</summary>
    public string? RollbackTargetRef { get; init; }
    /// <summary>How the last-known-good was chosen: previous-revision, running-revision, to-revision, to-ref.</summary>
    public required string LastKnownGoodSource { get; init; }
    public required DateTimeOffset IncidentStartedAt { get; init; }
    /// <summary>When the running ReplicaSet was created: the last deploy.</summary>
    public required DateTimeOffset LastDeployAt { get; init; }
    /// <summary>
    /// The last deploy came after the incident began, so it is not the cause (the runbook's "most
    /// recent deploy?" answered No); the comparison still shows what it changed.
    /// </summary>
    public bool DeployAfterIncidentStart { get; init; }
    /// <summary>The last deploy came shortly (within -DeployWindow) before the incident: the likely cause.</summary>
    public bool MostRecentDeploySuspect { get; init; }
    public required IReadOnlyList<PlanEvidence> Evidence { get; init; }
    /// <summary>
    /// The proposed rollback's preflight (RollbackPlanning.PreflightAsync): its plan by the chosen mechanism, each planned
    /// Kubernetes write dry-run on the server, the target digest in the registry. Invoke-KfmRollback
    /// refuses what failed here.
    /// </summary>
    public IReadOnlyList<Rollback.Preflight.PreflightCheck> Preflight { get; init; } = Array.Empty<Rollback.Preflight.PreflightCheck>();
    /// <summary>True when no preflight check failed.</summary>
    public bool PreflightPassed => Preflight.All(c => !c.Failed);
    /// <summary>One line for people at 3 a.m.: what changed, what to run.</summary>
    public required string Summary { get; init; }
    public required DateTimeOffset PlannedAt { get; init; }
}

/// <summary>One rollback method in a plan: chosen or not, and why, in words for the operator.</summary>
public sealed record MethodChoice(string Method, bool Chosen, string Why)
{
    public override string ToString() => $"{Method}: {(Chosen ? "chosen" : "not chosen")}: {Why}";
}
