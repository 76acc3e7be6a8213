using KfmRollback.Engine.Receipts;

namespace KfmRollback.Engine.Rollback;

public enum RollbackMethod
{
    GitOps,
    Cluster,
    Helm,
}

public enum RollbackOutcome
{
    Succeeded,
    /// <summary>Already at the target; nothing was changed.</summary>
    NoOp,
    /// <summary>-WhatIf: the plan was shown, nothing was changed.</summary>
    Planned,
    /// <summary>A GitOps change is pushed and waits for review/merge.</summary>
    PendingMerge,
    Failed,
}

/// <summary>One phase of awaiting a rollback: its name, when it started and ended, and what it found.</summary>
public sealed record RollbackPhase(string Name, DateTimeOffset StartedAt, DateTimeOffset CompletedAt, string Detail)
{
    public TimeSpan Duration => CompletedAt - StartedAt;
}

/// <summary>
/// What a rollback did. Binds by property name into New-KfmRollbackReceipt (IncidentId,
/// Environment, CurrentRef, RollbackTargetRef, ChangedSurfaces, StartedAt, CompletedAt) and into
/// the verification cmdlets.
/// </summary>
public sealed record RollbackResult
{
    public required string Environment { get; init; }
    public string? IncidentId { get; init; }
    public required RollbackMethod Method { get; init; }
    public IReadOnlyList<string> ChangedSurfaces { get; init; } = new[] { "api" };
    public required RollbackOutcome Outcome { get; init; }
    public string? CurrentRef { get; init; }
    public string? RollbackTargetRef { get; init; }
    public long? FromRevision { get; init; }
    public long? ToRevision { get; init; }
    public required DateTimeOffset StartedAt { get; init; }
    public DateTimeOffset? CompletedAt { get; init; }
    public TimeSpan? Duration => CompletedAt - StartedAt;
    /// <summary>
    /// What the rollout must reach for the rollback to take effect, for Await (and Wait-KfmRollback on
    /// a result piped in later): the ReplicaSet (cluster), the release revision (Helm), the commit (GitOps).
    /// </summary>
    public string? RolloutTarget { get; init; }
    /// <summary>GitOps: the rollback branch, its commit and the pull request.</summary>
    public string? Branch { get; init; }
    public string? Commit { get; init; }
    public string? PullRequestUrl { get; init; }
    /// <summary>GitOps -Wait: the commit that brought the rollback onto the deploy branch (merge, squash or fast-forward).</summary>
    public string? MergeCommit { get; init; }
    /// <summary>GitOps -Wait: the revision the controller reported as synced/applied (Argo syncResult.revision, Flux lastAppliedRevision).</summary>
    public string? ReconciledRevision { get; init; }
    public DateTimeOffset? MergedAt { get; init; }
    public DateTimeOffset? ReconciledAt { get; init; }
    /// <summary>Each phase -Wait went through (merge, thaw, reconcile, rollout) with its times, as on the timeline.</summary>
    public IReadOnlyList<RollbackPhase> Phases { get; init; } = Array.Empty<RollbackPhase>();
    /// <summary>
    /// What was sent (or, for Planned, what would be): every change, per surface, as data. The
    /// runbook's "record who/what/when/why" for the what.
    /// </summary>
    public IReadOnlyList<PlannedChange> Changes { get; init; } = Array.Empty<PlannedChange>();
    /// <summary>The exact content of <see cref="Changes"/> (JSON patches, unified diffs), as one text.</summary>
    public string? Change => Changes.Count == 0 ? null : string.Join(System.Environment.NewLine, Changes.Select(c => c.Content));
    /// <summary>The decision-tree comparisons behind this rollback (Get-KfmRollbackPlan), for the receipt.</summary>
    public IReadOnlyList<PlanEvidence> Evidence { get; init; } = Array.Empty<PlanEvidence>();
    /// <summary>Preflight checks the operator overrode with -Force -ForceReason (an unsigned or revoked target), for the receipt.</summary>
    public IReadOnlyList<Receipts.ForcedCheck> ForcedChecks { get; init; } = Array.Empty<Receipts.ForcedCheck>();
    /// <summary>A policy rollback with -Wait and policy_surface.cases_file: the bundle check and each policy case's result.</summary>
    public IReadOnlyList<Verification.CheckResult> PolicyCases { get; init; } = Array.Empty<Verification.CheckResult>();
    /// <summary>Policy-safe words on what happened, especially why it failed.</summary>
    public string? Detail { get; init; }
    public string? Reason { get; init; }
    /// <summary>Why it failed, when <see cref="Outcome"/> is Failed; the cmdlet reports it as an error too.</summary>
    public Core.KfmException? Error { get; init; }
}
