using k8s.Models;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Adapters.Kubernetes;

/// <summary>One revision of a Deployment, as `kubectl rollout history` shows it and more.</summary>
public sealed class RolloutRevision
{
    public required string Environment { get; init; }
    public required string Deployment { get; init; }
    public required long Revision { get; init; }
    public required string ReplicaSet { get; init; }
    public required string Image { get; init; }
    /// <summary>The image digest, or null when the template names a tag.</summary>
    public string? Digest { get; init; }
    public string? ChangeCause { get; init; }
    public DateTimeOffset? CreatedAt { get; init; }
    public IReadOnlyList<string> ConfigMaps { get; init; } = Array.Empty<string>();
    public IReadOnlyList<string> Secrets { get; init; } = Array.Empty<string>();
    /// <summary>The policy bundle ref in the template (env var or annotation), or the ConfigMap that holds it.</summary>
    public string? PolicyBundleRef { get; init; }
    public int Replicas { get; init; }
    public bool IsCurrent { get; init; }
    /// <summary>Earlier revision numbers this template had before an undo renumbered it.</summary>
    public IReadOnlyList<long> PreviousRevisions { get; init; } = Array.Empty<long>();
}

public static class RolloutHistory
{
    public static IReadOnlyList<RolloutRevision> Read(DeploymentSnapshot snapshot, EnvironmentConfig environment, string? container)
    {
        string containerName = PodTemplates.ResolveContainerName(snapshot.Deployment.Spec.Template, container ?? environment.Cluster.Container, snapshot.Name);
        return snapshot.ReplicaSets
            .Select(rs => (Set: rs, Revision: DeploymentRevisions.Revision(rs.Metadata)))
            .Where(x => x.Revision.HasValue)
            .OrderBy(x => x.Revision)
            .Select(x => Describe(x.Set, x.Revision!.Value, snapshot, environment, containerName))
            .ToList();
    }

    private static RolloutRevision Describe(V1ReplicaSet set, long revision, DeploymentSnapshot snapshot, EnvironmentConfig environment, string container)
    {
        V1PodTemplateSpec template = set.Spec.Template;
        string image = PodTemplates.ContainerImage(template, container, snapshot.Name);
        IDictionary<string, string> annotations = set.Metadata.Annotations ?? new Dictionary<string, string>();
        annotations.TryGetValue(environment.Cluster.ChangeCauseAnnotation, out string? cause);
        return new RolloutRevision
        {
            Environment = environment.Name,
            Deployment = snapshot.Name,
            Revision = revision,
            ReplicaSet = set.Metadata.Name,
            Image = image,
            Digest = ImageRefs.DigestOf(image),
            ChangeCause = cause,
            CreatedAt = set.Metadata.CreationTimestamp is { } created ? new DateTimeOffset(DateTime.SpecifyKind(created, DateTimeKind.Utc)) : null,
            ConfigMaps = TemplateReferences.ConfigMaps(template),
            Secrets = TemplateReferences.Secrets(template),
            PolicyBundleRef = TemplateReferences.PolicyBundleRef(template, container, environment.PolicySurface),
            Replicas = set.Status?.Replicas ?? 0,
            IsCurrent = revision == snapshot.Revision,
            PreviousRevisions = annotations.TryGetValue(DeploymentRevisions.RevisionHistoryAnnotation, out string? history)
                ? history.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(long.Parse).ToList()
                : Array.Empty<long>(),
        };
    }
}
