using KfmRollback.Engine.Adapters.Kubernetes;
using KfmRollback.Engine.Context;

namespace KfmRollback.Engine.Refs;

/// <summary>
/// The cluster's refs: the Deployment, its ReplicaSets and pods read in one go (as <c>kubectl rollout
/// history</c> reads them), turned into the current ref and last-known-good by <see cref="ClusterRefReader"/>.
/// </summary>
public sealed class ClusterRefSource(EngineContext context) : IRefSource
{
    public RefSource Source => RefSource.Cluster;

    public async Task<ApiRef> ReadAsync(RefQuery query, LastKnownGoodAuthority authority, CancellationToken cancellationToken)
    {
        var environment = query.Environment;
        var snapshot = await DeploymentSnapshot.ReadAsync(context.Kubernetes(environment), environment.Cluster.Namespace, environment.Cluster.Deployment, cancellationToken).ConfigureAwait(false);
        ApiRef reference = ClusterRefReader.Read(snapshot, environment.Name, query.Container ?? environment.Cluster.Container, authority.For(environment));
        return reference with { IncidentId = query.IncidentId };
    }

    public async Task<IReadOnlyList<object>> HistoryAsync(RefQuery query, long? revision, CancellationToken cancellationToken)
    {
        var environment = query.Environment;
        var snapshot = await DeploymentSnapshot.ReadAsync(context.Kubernetes(environment), environment.Cluster.Namespace, environment.Cluster.Deployment, cancellationToken, includePods: false).ConfigureAwait(false);
        return RolloutHistory.Read(snapshot, environment, query.Container).Where(r => revision is null || r.Revision == revision).ToList<object>();
    }
}
