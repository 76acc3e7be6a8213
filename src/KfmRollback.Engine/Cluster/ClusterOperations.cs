using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Receipts;
using KfmRollback.Engine.Refs;

namespace KfmRollback.Engine.Cluster;

/// <summary>
/// The cluster-side operations the cmdlets call, taking only configuration and plain values so
/// that no KubernetesClient type ever reaches the cmdlet assembly.
/// </summary>
public static class ClusterOperations
{
    public static async Task<ApiRef> ReadApiRefAsync(EnvironmentConfig environment, string? container, string? incidentId, LastKnownGoodAuthority authority, CancellationToken cancellationToken)
    {
        var snapshot = await DeploymentSnapshot.ReadAsync(ClusterClientFactory.For(environment.Cluster), environment.Cluster.Namespace, environment.Cluster.Deployment, cancellationToken).ConfigureAwait(false);
        ApiRef reference = ClusterRefReader.Read(snapshot, environment.Name, container ?? environment.Cluster.Container, authority.For(environment));
        return reference with { IncidentId = incidentId };
    }

    public static async Task<IReadOnlyList<RolloutRevision>> ReadHistoryAsync(EnvironmentConfig environment, string? container, CancellationToken cancellationToken)
    {
        var snapshot = await DeploymentSnapshot.ReadAsync(ClusterClientFactory.For(environment.Cluster), environment.Cluster.Namespace, environment.Cluster.Deployment, cancellationToken, includePods: false).ConfigureAwait(false);
        return RolloutHistory.Read(snapshot, environment, container);
    }

    /// <summary>
    /// Snapshots the runtime configuration the running revision uses (at freeze time), so a later
    /// rollback can tell whether a reused ConfigMap or Secret name changed content. Hashes only.
    /// </summary>
    public static async Task<IReadOnlyList<Rollback.Surfaces.ConfigObjectState>> SnapshotConfigAsync(EnvironmentConfig environment, CancellationToken cancellationToken)
    {
        var client = ClusterClientFactory.For(environment.Cluster);
        var snapshot = await DeploymentSnapshot.ReadAsync(client, environment.Cluster.Namespace, environment.Cluster.Deployment, cancellationToken, includePods: false).ConfigureAwait(false);
        var current = snapshot.CurrentReplicaSet;
        if (current is null)
        {
            return Array.Empty<Rollback.Surfaces.ConfigObjectState>();
        }
        return await new Rollback.Surfaces.SurfaceRollback(client, environment)
            .SnapshotAsync(current.Spec.Template, Rollback.Surfaces.SurfaceRollback.PodTemplateHash(current), cancellationToken).ConfigureAwait(false);
    }
}
