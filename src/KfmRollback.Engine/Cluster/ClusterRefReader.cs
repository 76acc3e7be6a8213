using KfmRollback.Engine.Cluster;
using k8s.Models;
using KfmRollback.Engine.Refs;
using KfmRollback.Engine.Rollback.Cluster;

namespace KfmRollback.Engine.Cluster;

/// <summary>
/// The runbook's step 1 from the cluster: which image the Deployment asks for, which digests its
/// pods really run, and the last-known-good (the previous revision, else the last verified
/// rollback target in the receipt store).
/// </summary>
public static class ClusterRefReader
{
    public static ApiRef Read(DeploymentSnapshot snapshot, string environment, string? container, Func<string?>? lastVerifiedDigest = null)
    {
        V1Deployment deployment = snapshot.Deployment;
        string containerName = ResolveContainerName(deployment.Spec.Template, container, snapshot.Name);
        string image = PodTemplates.ContainerImage(deployment.Spec.Template, containerName, snapshot.Name);

        var running = snapshot.Pods
            .Where(p => p.Metadata.DeletionTimestamp is null)
            .SelectMany(p => p.Status?.ContainerStatuses ?? new List<V1ContainerStatus>())
            .Where(s => s.Name == containerName)
            .Select(s => ImageRefs.NormaliseImageId(s.ImageID))
            .OfType<string>()
            .Distinct(StringComparer.Ordinal)
            .OrderBy(d => d, StringComparer.Ordinal)
            .ToList();

        string? specDigest = ImageRefs.DigestOf(image);
        // A tag says nothing immutable; what the pods run does, when they agree.
        string? current = specDigest ?? (running.Count == 1 ? running[0] : null);
        bool inFlight = running.Count > 1
            || (deployment.Metadata.Generation ?? 0) > (deployment.Status?.ObservedGeneration ?? 0)
            || (deployment.Status?.UpdatedReplicas ?? 0) < (deployment.Spec.Replicas ?? 1);

        (string? lastGood, string? source, long? lastGoodRevision) = LastKnownGood(snapshot, containerName, current, lastVerifiedDigest);
        return new ApiRef
        {
            Environment = environment,
            Source = RefSource.Cluster,
            CurrentImage = image,
            CurrentRef = current,
            RunningDigests = running,
            RolloutInFlight = inFlight,
            Revision = snapshot.Revision,
            LastKnownGoodRef = lastGood,
            LastKnownGoodSource = source,
            LastKnownGoodRevision = lastGoodRevision,
            Namespace = snapshot.Namespace,
            Deployment = snapshot.Name,
            Container = containerName,
        };
    }

    private static (string?, string?, long?) LastKnownGood(DeploymentSnapshot snapshot, string container, string? current, Func<string?>? lastVerifiedDigest)
    {
        var previous = snapshot.ReplicaSets
            .Select(rs => (Set: rs, Revision: DeploymentRevisions.Revision(rs.Metadata)))
            .Where(x => x.Revision.HasValue && x.Revision < snapshot.Revision)
            .OrderByDescending(x => x.Revision)
            .Select(x => (x.Revision, Digest: ImageRefs.DigestOf(PodTemplates.ContainerImage(x.Set.Spec.Template, container, snapshot.Name))))
            .FirstOrDefault(x => x.Digest is not null && x.Digest != current);
        if (previous.Digest is not null)
        {
            return (previous.Digest, "previous-revision", previous.Revision);
        }
        string? verified = lastVerifiedDigest?.Invoke();
        return verified is not null && verified != current ? (verified, "receipt-store", null) : (null, null, null);
    }

    /// <summary>The container the rollback is about: the configured one, or the only one.</summary>
    public static string ResolveContainerName(V1PodTemplateSpec template, string? container, string deployment)
    {
        if (container is not null)
        {
            PodTemplates.ContainerImage(template, container, deployment);
            return container;
        }
        PodTemplates.ContainerImage(template, null, deployment);
        return template.Spec.Containers[0].Name;
    }
}
