using KfmRollback.Engine.Adapters.PullRequests;
using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Receipts;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Rollback.Surfaces;

namespace KfmRollback.Engine.Rollback;

/// <summary>
/// What to roll back to: the previous revision (nothing named, or revision 0 as kubectl says), a
/// revision number (Deployment or Helm release), an image digest, or (GitOps) a deploy commit to
/// revert. At most one is named (RollbackRules).
/// </summary>
public sealed record RollbackTarget(long? Revision, string? Digest, string? RevertCommit = null)
{
    public static RollbackTarget Previous { get; } = new(null, null);

    /// <summary>
    /// The ReplicaSet a run recorded for its digest target (set by the engine when it resumes a run):
    /// it picks among revisions that run the same digest with other settings (a config-only deploy),
    /// where the digest alone is ambiguous. Never set from parameters.
    /// </summary>
    public string? ReplicaSet { get; init; }

    public bool IsPrevious => Digest is null && RevertCommit is null && (Revision ?? 0) == 0;

    /// <summary>How many targets were named: more than one is a contradiction to refuse.</summary>
    public int Named => (Revision is null ? 0 : 1) + (Digest is null ? 0 : 1) + (RevertCommit is null ? 0 : 1);

    public override string ToString() =>
        RevertCommit is not null ? $"revert of {RevertCommit}" : Digest ?? (IsPrevious ? "the previous revision" : $"revision {Revision}");
}

/// <summary>
/// One request for every mechanism (cluster, GitOps, Helm), filled by the cmdlet from parameters and
/// configuration. Mechanisms ignore what does not apply to them; <see cref="RollbackRules"/> refuses
/// what cannot apply before anything is read.
/// </summary>
public sealed record RollbackRequest
{
    public required EnvironmentConfig Environment { get; init; }
    public required RollbackMethod Method { get; init; }
    public string? IncidentId { get; init; }
    public required string Actor { get; init; }
    public string? Reason { get; init; }
    public RollbackTarget Target { get; init; } = RollbackTarget.Previous;
    /// <summary>What to put back: the image (template), the runtime configuration, the policy bundle link.</summary>
    public RollbackSurfaces Surfaces { get; init; } = RollbackSurfaces.Image;
    public string? Container { get; init; }
    /// <summary>Override the default-deny refusals (unfrozen GitOps controller, paused deployment, unverifiable config).</summary>
    public bool Force { get; init; }
    /// <summary>Why -Force was needed; recorded on the timeline. Required with <see cref="Force"/>.</summary>
    public string? ForceReason { get; init; }
    public bool Wait { get; init; }
    /// <summary>
    /// Cluster with -Wait: for this rollout only, raise maxSurge to 100% (maxUnavailable 0) when the
    /// namespace's quota allows it, and restore the Deployment's own strategy once it converged (FastRollout).
    /// </summary>
    public bool Fast { get; init; }
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>GitOps: what the rollback affects, for the commit trailer and the pull request.</summary>
    public string BlastRadius { get; init; } = "api";
    /// <summary>GitOps: push straight to the deploy branch (needs gitops.allow_direct_push).</summary>
    public bool DirectPush { get; init; }
    public GitCredential? GitCredential { get; init; }
    /// <summary>GitOps with -Wait: merge the rollback PR this way once it has the approvals (needs gitops.pr.auto_merge); null: people merge it.</summary>
    public MergeStrategy? MergeWith { get; init; }
    /// <summary>The decision-tree comparisons that chose this rollback (Get-KfmRollbackPlan), carried into the result and receipt.</summary>
    public IReadOnlyList<PlanEvidence> Evidence { get; init; } = Array.Empty<PlanEvidence>();
    /// <summary>
    /// What the last-known-good authority knows of the environment (quarantine, rollback targets),
    /// filled by the engine: a mechanism's "previous" target is its choice, never a quarantined digest.
    /// </summary>
    public Refs.EnvironmentTrust? Trust { get; init; }
    /// <summary>The run and attempt this request is (filled by the engine): the lease holder names them.</summary>
    public Runs.RunContext? Run { get; init; }
    /// <summary>What the journal says this run already did (filled by the engine): a mechanism finishes it rather than start over.</summary>
    public Runs.RunResume? Resume { get; init; }
    /// <summary>-BreakLock -Reason: take the rollback lock from a holder known dead; the reason and the old holder are journaled.</summary>
    public string? BreakLockReason { get; init; }

    public string ContainerName => Container ?? Environment.Cluster.Container ?? string.Empty;
}

/// <summary>
/// Ways the engine reports back while it works; called from worker threads. A timeline write that
/// fails never stops a step half-way (after a change that would hide the change): the first
/// failure is kept in <see cref="JournalFailure"/> for the engine to report with the result.
/// </summary>
public sealed class RollbackReporter
{
    private Core.KfmException? _journalFailure;

    public static RollbackReporter Silent { get; } = new();

    public Action<string>? Verbose { get; init; }
    public Action<string, int>? Progress { get; init; }
    /// <summary>Appends a timeline line (role, event) to the incident.</summary>
    public Action<string, string>? Timeline { get; init; }
    /// <summary>Something people must see even without -Verbose (a lost lock, a note on the last-known-good).</summary>
    public Action<string>? Warning { get; init; }

    /// <summary>The first timeline or run-record write that failed, if any.</summary>
    public Core.KfmException? JournalFailure => Root._journalFailure;

    public void Say(string message) => Verbose?.Invoke(message);

    public void Warn(string message) => (Warning ?? Verbose)?.Invoke(message);

    public void Record(string role, string text)
    {
        try
        {
            Timeline?.Invoke(role, text);
        }
        catch (Core.KfmException ex)
        {
            Failed(ex);
        }
    }

    /// <summary>Keeps the first journal failure; the step goes on.</summary>
    public void Failed(Core.KfmException failure) => Interlocked.CompareExchange(ref Root._journalFailure, failure, null);

    /// <summary>The same reporter with progress reports passed through <paramref name="observe"/> first.</summary>
    public RollbackReporter Observing(Action observe) => new(this)
    {
        Verbose = Verbose,
        Progress = (status, percent) => { observe(); Progress?.Invoke(status, percent); },
        Timeline = Timeline,
        Warning = Warning,
    };

    public RollbackReporter()
    {
    }

    private RollbackReporter(RollbackReporter shared) => _shared = shared;

    private readonly RollbackReporter? _shared;

    /// <summary>The reporter whose failures count (a derived one shares its parent's).</summary>
    internal RollbackReporter Root => _shared?.Root ?? this;
}
