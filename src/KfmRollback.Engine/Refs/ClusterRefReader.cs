using KfmRollback.Engine.Adapters.Kubernetes;
using k8s.Models;

namespace KfmRollback.Engine.Refs;

/// <summary>
/// The runbook's step 1 from the cluster: which image the Deployment asks for, which digests its
/// pods really run, and the last-known-good as the one authority (<see cref="EnvironmentTrust"/>)
/// chooses it from the revision history, the quarantine (the journal's and the Deployment's own
/// <c>kfm.dev/quarantine</c> annotation) and the recorded rollback targets.
/// </summary>
public static class ClusterRefReader
{
    public static ApiRef Read(DeploymentSnapshot snapshot, string environment, string? container, EnvironmentTrust? trust = null)
    {
        V1Deployment deployment = snapshot.Deployment;
        string containerName = PodTemplates.ResolveContainerName(deployment.Spec.Template, container, snapshot.Name);
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

        EnvironmentTrust known = (trust ?? EnvironmentTrust.Empty(environment)).With(Quarantine(snapshot));
        LastKnownGoodChoice choice = known.Choose(current, History(snapshot, containerName), LastKnownGoodSources.PreviousRevision);
        return new ApiRef
        {
            Environment = environment,
            Source = RefSource.Cluster,
            CurrentImage = image,
            CurrentRef = current,
            RunningDigests = running,
            RolloutInFlight = inFlight,
            Revision = snapshot.Revision,
            Namespace = snapshot.Namespace,
            Deployment = snapshot.Name,
            Container = containerName,
        }.WithLastKnownGood(choice, known);
    }

    /// <summary>The revisions older than the current one, newest first, with the digest each runs.</summary>
    public static IReadOnlyList<RefCandidate> History(DeploymentSnapshot snapshot, string container) =>
        snapshot.ReplicaSets
            .Select(rs => (Set: rs, Revision: DeploymentRevisions.Revision(rs.Metadata)))
            .Where(x => x.Revision.HasValue && x.Revision < snapshot.Revision)
            .OrderByDescending(x => x.Revision)
            .Select(x => (x.Revision, Digest: ImageRefs.DigestOf(PodTemplates.ContainerImage(x.Set.Spec.Template, container, snapshot.Name))))
            .Where(x => x.Digest is not null)
            .Select(x => new RefCandidate(x.Digest!, x.Revision, $"revision {x.Revision}"))
            .ToList();

    /// <summary>The quarantine the Deployment carries (annotation kfm.dev/quarantine), so a sandbox with an empty journal sees it too.</summary>
    public static IReadOnlyList<QuarantineEntry> Quarantine(DeploymentSnapshot snapshot) =>
        QuarantineAnnotation.Parse(Annotation(snapshot.Deployment.Metadata, QuarantineAnnotation.Key), QuarantineSources.DeploymentAnnotation, out _);

    private static string? Annotation(V1ObjectMeta metadata, string key) =>
        metadata.Annotations is { } annotations && annotations.TryGetValue(key, out string? value) ? value : null;
}
