using k8s;
using k8s.Models;

namespace KfmRollback.Engine.Adapters.Kubernetes;

/// <summary>
/// A Deployment with the ReplicaSets it controls and its pods, read in one go, as kubectl reads
/// them for rollout history and undo.
/// </summary>
public sealed class DeploymentSnapshot
{
    public required V1Deployment Deployment { get; init; }
    public required IReadOnlyList<V1ReplicaSet> ReplicaSets { get; init; }
    public required IReadOnlyList<V1Pod> Pods { get; init; }

    public string Namespace => Deployment.Metadata.NamespaceProperty;
    public string Name => Deployment.Metadata.Name;
    public long Revision => DeploymentRevisions.Revision(Deployment.Metadata) ?? 0;

    public static async Task<DeploymentSnapshot> ReadAsync(IKubernetes client, string @namespace, string name, CancellationToken cancellationToken, bool includePods = true)
    {
        V1Deployment deployment;
        try
        {
            deployment = await client.AppsV1.ReadNamespacedDeploymentAsync(name, @namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw KubernetesErrors.Wrap(ex, $"Reading deployment {@namespace}/{name}", name);
        }

        string selector = LabelSelectors.ToQuery(deployment.Spec.Selector);
        try
        {
            V1ReplicaSetList sets = await client.AppsV1.ListNamespacedReplicaSetAsync(@namespace, labelSelector: selector, cancellationToken: cancellationToken).ConfigureAwait(false);
            IReadOnlyList<V1Pod> pods = Array.Empty<V1Pod>();
            if (includePods)
            {
                V1PodList podList = await client.CoreV1.ListNamespacedPodAsync(@namespace, labelSelector: selector, cancellationToken: cancellationToken).ConfigureAwait(false);
                pods = podList.Items.ToList();
            }
            return new DeploymentSnapshot
            {
                Deployment = deployment,
                ReplicaSets = DeploymentRevisions.Owned(deployment, sets.Items),
                Pods = pods,
            };
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw KubernetesErrors.Wrap(ex, $"Listing ReplicaSets and pods of deployment {@namespace}/{name}", name);
        }
    }

    /// <summary>The ReplicaSet whose revision is the Deployment's, if it still exists.</summary>
    public V1ReplicaSet? CurrentReplicaSet => ReplicaSets.FirstOrDefault(rs => DeploymentRevisions.Revision(rs.Metadata) == Revision);
}
