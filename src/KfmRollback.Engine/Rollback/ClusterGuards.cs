using k8s;
using KfmRollback.Engine.Cluster;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Freeze;

namespace KfmRollback.Engine.Rollback;

/// <summary>The refusals every mechanism that writes to the cluster makes before it plans anything.</summary>
public static class ClusterGuards
{
    /// <summary>Asks the apiserver for every permission first, so a rollback never stops half-way on a 403.</summary>
    public static async Task EnsureAccessAsync(IKubernetes client, RollbackRequest request, IEnumerable<AccessRequirement> requirements, CancellationToken cancellationToken)
    {
        IReadOnlyList<AccessCheck> checks = await AccessPreflight.CheckAsync(client, request.Environment.Name, requirements, cancellationToken).ConfigureAwait(false);
        var denied = checks.Where(c => !c.Allowed).ToList();
        if (denied.Count > 0)
        {
            throw new KfmException("RollbackAccessDenied", KfmErrorKind.PermissionDenied,
                $"Missing permissions, so nothing was changed: {string.Join("; ", denied.Select(d => $"{d.Resource} (to {d.Why})"))}. docs/rbac.md has the Role the module needs.",
                request.Environment.Name);
        }
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
