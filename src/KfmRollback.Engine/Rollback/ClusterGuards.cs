using KfmRollback.Engine.Adapters.Kubernetes;
using k8s;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Freeze;

namespace KfmRollback.Engine.Rollback;

/// <summary>The refusals every mechanism that writes to the cluster makes before it plans anything.</summary>
public static class ClusterGuards
{
    /// <summary>Asks the apiserver for every permission first, so a rollback never stops half-way on a 403.</summary>
    /// <param name="reviews">The operation's answers so far (a fleet asks a namespace's permissions once); null: ask.</param>
    public static async Task EnsureAccessAsync(IKubernetes client, RollbackRequest request, IEnumerable<AccessRequirement> requirements, CancellationToken cancellationToken, AccessReviews? reviews = null)
    {
        IReadOnlyList<AccessCheck> checks = await AccessPreflight.CheckAsync(client, request.Environment.Name, requirements, cancellationToken, reviews).ConfigureAwait(false);
        var denied = checks.Where(c => !c.Allowed).ToList();
        if (denied.Count > 0)
        {
            throw new KfmException("RollbackAccessDenied", KfmErrorKind.PermissionDenied,
                $"Missing permissions, so nothing was changed: {string.Join("; ", denied.Select(d => $"{d.Resource} (to {d.Why})"))}. docs/rbac.md has the Role the module needs.",
                request.Environment.Name);
        }
    }

    /// <summary>
    /// The environment's rollback Lease (one per Deployment, shared by the cluster and Helm mechanisms),
    /// held as this request's run and attempt.
    /// </summary>
    public static async Task<RollbackLease> LockAsync(IKubernetes client, RollbackRequest request, RollbackReporter reporter, IClock clock, CancellationToken cancellationToken)
    {
        var cluster = request.Environment.Cluster;
        Runs.RunContext run = request.Run ?? Runs.RunContext.Anonymous();
        var holder = new LeaseHolder(request.Actor, run.IncidentId, run.IncidentId is null ? null : run.RunId, run.Attempt);
        string breakHint = $"Invoke-KfmRollback -Environment {request.Environment.Name} -Method {request.Method} -IncidentId {request.IncidentId ?? "<incident>"} -BreakLock -Reason '<why that holder is known dead>'.";
        RollbackLease lease = await RollbackLease.AcquireAsync(client, cluster.Namespace, cluster.EffectiveLeaseName, holder, cluster.LeaseDuration, clock,
            request.BreakLockReason, breakHint, cancellationToken).ConfigureAwait(false);
        reporter.Say(lease.Takeover switch
        {
            LeaseTakeover.OwnRun => $"Took over rollback lock {cluster.Namespace}/{cluster.EffectiveLeaseName} from this run's earlier attempt '{lease.PreviousHolder}'; holding it as {holder}.",
            LeaseTakeover.Broken => $"Broke rollback lock {cluster.Namespace}/{cluster.EffectiveLeaseName} held by '{lease.PreviousHolder}'; holding it as {holder}.",
            LeaseTakeover.Expired => $"Took over expired rollback lock {cluster.Namespace}/{cluster.EffectiveLeaseName} from '{lease.PreviousHolder}'; holding it as {holder}.",
            _ => $"Holding rollback lock {cluster.Namespace}/{cluster.EffectiveLeaseName} as {holder}.",
        });
        return lease;
    }

    /// <summary>Default-deny: a GitOps controller left running would silently revert a cluster change.</summary>
    public static async Task EnsureFrozenAsync(IReadOnlyList<IFreezeMechanism> controllers, RollbackRequest request, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        var unfrozen = new List<string>();
        foreach (IFreezeMechanism mechanism in controllers)
        {
            FreezeState state = await mechanism.GetAsync(cancellationToken).ConfigureAwait(false);
            if (!state.Frozen)
            {
                unfrozen.Add(mechanism.Target);
            }
        }
        if (unfrozen.Count == 0)
        {
            return;
        }
        if (!request.Force)
        {
            throw new KfmException("RollbackGitOpsNotFrozen", KfmErrorKind.Ambiguous,
                $"{string.Join(", ", unfrozen)} can still sync and would revert a {request.Method.ToString().ToLowerInvariant()} rollback within seconds (self-heal). " +
                "Freeze first with Start-KfmFreeze, or pass -Force with -ForceReason to roll back anyway.", unfrozen[0]);
        }
        reporter.Record("OPS", $"FORCED {request.Method.ToString().ToLowerInvariant()} rollback while {string.Join(", ", unfrozen)} not frozen: {request.ForceReason}");
    }
}
