using KfmRollback.Engine.Adapters.Kubernetes;
using KfmRollback.Engine.Rollback.Preflight;
using KfmRollback.Engine.Rollback.Surfaces;

namespace KfmRollback.Engine.Rollback;

/// <summary>
/// One change a rollback sends, as data: which surface it serves, the object it writes, how, and the
/// content as people see it (a JSON patch with env values redacted, a unified diff, or hashes for a
/// Secret; never a secret value). What is sent is the mechanism's own plan, never this text.
/// </summary>
public sealed record PlannedChange(string Surface, string Object, string Action, string Content)
{
    /// <summary>Shown and stored (results, receipts, the journal): always through the one redaction.</summary>
    public string Content { get; init; } = Safety.Redactor.Default.Text(Content);

    public override string ToString() => $"{Action} {Object} [{Surface}]{System.Environment.NewLine}{Content}";
}

/// <summary>
/// What a mechanism will do, computed from a read of the current state. <see cref="Changes"/> is
/// exactly what <see cref="IRollbackMechanism.ApplyAsync"/> sends; mechanisms derive from this to
/// keep what they need to send it.
/// </summary>
public record MechanismPlan
{
    public required RollbackMethod Method { get; init; }
    public required string Environment { get; init; }
    public string? CurrentRef { get; init; }
    public string? TargetRef { get; init; }
    public long? FromRevision { get; init; }
    public long? ToRevision { get; init; }
    public required IReadOnlyList<PlannedChange> Changes { get; init; }
    /// <summary>One line for people: what would happen, or why nothing needs to.</summary>
    public required string Summary { get; init; }
    public required DateTimeOffset PlannedAt { get; init; }
    public bool NoOp => Changes.Count == 0;
    /// <summary>The target image (repository and digest) when the mechanism knows it, for the registry preflight.</summary>
    public string? TargetImage { get; init; }
    /// <summary>The preflight of this plan (RollbackPreflight): server dry runs, target in the registry.</summary>
    public IReadOnlyList<PreflightCheck> Preflight { get; init; } = Array.Empty<PreflightCheck>();
    /// <summary>Quarantine records the mechanism found itself (the Deployment's annotation, Git's rollback commits), for the engine's check of the target.</summary>
    public IReadOnlyList<Refs.QuarantineEntry> Quarantine { get; init; } = Array.Empty<Refs.QuarantineEntry>();
    /// <summary>The engine's preparation (run, attempt, what the journal says), carried to RunAsync; null for a plan made outside the engine.</summary>
    public RunPlanning? Run { get; init; }

    /// <summary>Adds what only this mechanism knows (a branch, a release) to a result about this plan.</summary>
    public virtual RollbackResult Decorate(RollbackResult result) => result;

    /// <summary>The result of acting on this plan; <paramref name="sent"/> is what actually went out.</summary>
    public RollbackResult ToResult(RollbackRequest request, RollbackOutcome outcome, DateTimeOffset completedAt, string detail, IReadOnlyList<PlannedChange> sent) => Decorate(new()
    {
        Environment = Environment,
        IncidentId = request.IncidentId,
        Method = Method,
        ChangedSurfaces = SurfaceNames.ReceiptNames(request.Surfaces),
        Outcome = outcome,
        CurrentRef = CurrentRef,
        RollbackTargetRef = TargetRef,
        FromRevision = FromRevision,
        ToRevision = ToRevision,
        StartedAt = PlannedAt,
        CompletedAt = completedAt,
        Changes = sent,
        Detail = detail,
        Reason = request.Reason,
        Evidence = request.Evidence,
    });
}

/// <summary>A rollback lock as held: how it was taken, whether it was lost since, and a fresh check before each change.</summary>
public interface IRollbackLock : IAsyncDisposable
{
    /// <summary>For messages: the lease, or "no lock".</summary>
    string Description { get; }
    /// <summary>Who held it before this run took it (its own earlier attempt, an expired or broken holder), or null.</summary>
    string? PreviousHolder { get; }
    Adapters.Kubernetes.LeaseTakeover Takeover { get; }
    /// <summary>Who took it while this run held it, once noticed; null while it is ours.</summary>
    string? LostTo { get; }
    /// <summary>Reads the lock afresh; throws RollbackLockLost unless it is still ours.</summary>
    Task EnsureHeldAsync(CancellationToken cancellationToken);
}

/// <summary>
/// The environment's rollback Lease as the run holds it; <paramref name="released"/> runs when it is
/// let go (a mechanism that keeps the lease for its own Apply and Await forgets it there).
/// </summary>
public sealed class LeaseLock(Adapters.Kubernetes.RollbackLease lease, Action? released = null) : IRollbackLock
{
    public Adapters.Kubernetes.RollbackLease Lease => lease;
    public string Description => lease.Description;
    public string? PreviousHolder => lease.PreviousHolder;
    public Adapters.Kubernetes.LeaseTakeover Takeover => lease.Takeover;
    public string? LostTo => lease.LostTo;
    public Task EnsureHeldAsync(CancellationToken cancellationToken) => lease.EnsureHeldAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        released?.Invoke();
        await lease.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>
/// A way of rolling the API back (a Deployment's history, Git, a Helm release), one adapter per
/// mechanism behind one interface, as kubectl's Rollbacker is per kind. Plan reads and returns
/// data; Apply sends exactly the planned changes (with preconditions, lease and retries); Await
/// waits for what Apply started to take effect.
/// </summary>
public interface IRollbackMechanism
{
    RollbackMethod Method { get; }

    /// <summary>Kubernetes permissions this mechanism needs (empty when it only talks to Git).</summary>
    IReadOnlyList<AccessRequirement> Requirements(RollbackRequest request);

    /// <summary>Reads state and returns every change it would send, per surface. Changes nothing.</summary>
    Task<MechanismPlan> PlanAsync(RollbackRequest request, RollbackReporter reporter, CancellationToken cancellationToken);

    /// <summary>
    /// Sends each Kubernetes write of <paramref name="plan"/> once with dryRun=All (ServerDryRun) and
    /// reports one check per write; changes nothing. Empty when the mechanism writes no Kubernetes object.
    /// </summary>
    Task<IReadOnlyList<PreflightCheck>> DryRunAsync(RollbackRequest request, MechanismPlan plan, CancellationToken cancellationToken);

    /// <summary>
    /// Serialises operators for the whole of Apply and Await (a Lease per Deployment for the cluster;
    /// Git's non-forced push needs none): a second rollback must not start while the first rolls out.
    /// The same run's rerun takes its own lock over at once; -BreakLock takes another holder's.
    /// </summary>
    Task<IRollbackLock> LockAsync(RollbackRequest request, RollbackReporter reporter, CancellationToken cancellationToken);

    /// <summary>What the target system runs (or pins) now: the digest a finished run's rerun compares with its target.</summary>
    Task<string?> CurrentRefAsync(RollbackRequest request, CancellationToken cancellationToken);

    /// <summary>Sends exactly <paramref name="plan"/>'s changes; refuses (Failed) when the state moved so that they would differ.</summary>
    Task<RollbackResult> ApplyAsync(RollbackRequest request, MechanismPlan plan, RollbackReporter reporter, CancellationToken cancellationToken);

    /// <summary>Waits for an applied rollback to roll out (or reconcile); returns the final result.</summary>
    Task<RollbackResult> AwaitAsync(RollbackRequest request, RollbackResult applied, RollbackReporter reporter, CancellationToken cancellationToken);
}
