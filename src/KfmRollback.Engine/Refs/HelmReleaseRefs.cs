using KfmRollback.Engine.Adapters.Helm;
using KfmRollback.Engine.Adapters.Kubernetes;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Refs;

/// <summary>One revision of a Helm release, as <c>helm history</c> shows it, plus the API image it runs.</summary>
public sealed class HelmRevision
{
    public required string Environment { get; init; }
    public required string Release { get; init; }
    public required long Revision { get; init; }
    public required string Status { get; init; }
    public string? Chart { get; init; }
    public string? AppVersion { get; init; }
    public string? Description { get; init; }
    /// <summary>The API container's image in this revision's manifest; null when the manifest has no such Deployment.</summary>
    public string? Image { get; init; }
    public string? Digest { get; init; }
    /// <summary>helm history's UPDATED: the release's last_deployed time.</summary>
    public DateTimeOffset? UpdatedAt { get; init; }
    /// <summary>The deployed revision (what helm considers live).</summary>
    public bool IsCurrent { get; init; }
    /// <summary>sha256 of the revision's values (never the values).</summary>
    public required string ConfigHash { get; init; }
}

/// <summary>
/// The Helm release's refs as the runbook's step 1 and the history table want them, computed from the
/// release history <see cref="HelmReleaseStore"/> reads the way helm does (no I/O here): the deployed
/// revision, the image each revision renders, the last-known-good candidates.
/// </summary>
public static class HelmReleaseRefs
{
    /// <summary>The quarantine annotation of the API Deployment.</summary>
    public static IReadOnlyList<QuarantineEntry> Quarantine(V1Deployment deployment) =>
        QuarantineAnnotation.Parse(deployment.Metadata.Annotations is { } a && a.TryGetValue(QuarantineAnnotation.Key, out string? v) ? v : null, QuarantineSources.DeploymentAnnotation, out _);

    /// <summary>The release storage of <paramref name="environment"/>'s release (helm.namespace, else cluster.namespace); refuses an environment without a helm section.</summary>
    public static HelmReleaseStore Store(IKubernetes client, EnvironmentConfig environment) =>
        new(client, Require(environment).EffectiveNamespace(environment.Cluster));

    /// <summary>The environment's helm section, or a refusal saying how to add it.</summary>
    public static HelmConfig Require(EnvironmentConfig environment) => environment.Helm ?? throw new KfmException("HelmNotConfigured", KfmErrorKind.InvalidArgument,
        $"Environment '{environment.Name}' has no helm section, so its Helm release is unknown. Add helm.release (and helm.namespace if the release Secrets are not in cluster.namespace) to the configuration; docs/helm.md explains it.",
        environment.Name);

    /// <summary>
    /// Current = the newest deployed revision; last-known-good = the one authority's choice among the
    /// earlier deployed/superseded revisions (never a quarantined digest; the current one when a
    /// recorded rollback put it there).
    /// </summary>
    public static ApiRef Ref(IReadOnlyList<StoredRelease> history, EnvironmentConfig environment, string? container, EnvironmentTrust? trust = null)
    {
        string deployment = environment.Cluster.Deployment;
        string? containerName = container ?? environment.Cluster.Container;
        StoredRelease current = Deployed(history, environment);
        (string image, string resolved) = ImageOf(current.Release, deployment, containerName)
            ?? throw NoDeployment(current.Release, deployment);
        string? digest = ImageRefs.DigestOf(image);
        EnvironmentTrust known = trust ?? EnvironmentTrust.Empty(environment.Name);
        LastKnownGoodChoice choice = known.Choose(digest, Candidates(history, current.Version, deployment, resolved), LastKnownGoodSources.PreviousRelease);

        return new ApiRef
        {
            Environment = environment.Name,
            Source = RefSource.Helm,
            CurrentImage = image,
            CurrentRef = digest,
            Revision = current.Version,
            Namespace = environment.Cluster.Namespace,
            Deployment = deployment,
            Container = resolved,
        }.WithLastKnownGood(choice, known);
    }

    /// <summary>The deployed or superseded revisions older than <paramref name="version"/>, newest first, with the digest each runs.</summary>
    public static IReadOnlyList<RefCandidate> Candidates(IReadOnlyList<StoredRelease> history, int version, string deployment, string? container) =>
        history
            .Where(r => r.Version < version && r.Status is HelmStatus.Deployed or HelmStatus.Superseded)
            .OrderByDescending(r => r.Version)
            .Select(r => (r.Version, Digest: ImageRefs.DigestOf(ImageOf(r.Release, deployment, container)?.Image)))
            .Where(r => r.Digest is not null)
            .Select(r => new RefCandidate(r.Digest!, r.Version, $"release revision {r.Version}"))
            .ToList();

    public static IReadOnlyList<HelmRevision> History(IReadOnlyList<StoredRelease> history, EnvironmentConfig environment, string? container)
    {
        string deployment = environment.Cluster.Deployment;
        string? containerName = container ?? environment.Cluster.Container;
        int? deployed = history.LastOrDefault(r => r.Status == HelmStatus.Deployed)?.Version;
        return history.Select(r =>
        {
            string? image = ImageOf(r.Release, deployment, containerName)?.Image;
            return new HelmRevision
            {
                Environment = environment.Name,
                Release = r.Release.Name,
                Revision = r.Version,
                Status = r.Status ?? "unknown",
                Chart = r.Release.Chart,
                AppVersion = r.Release.AppVersion,
                Description = r.Release.Description,
                Image = image,
                Digest = ImageRefs.DigestOf(image),
                UpdatedAt = r.Release.LastDeployed,
                IsCurrent = r.Version == deployed,
                ConfigHash = r.Release.ConfigHash,
            };
        }).ToList();
    }

    /// <summary>storage.go Deployed: the highest-revision release with status deployed.</summary>
    public static StoredRelease Deployed(IReadOnlyList<StoredRelease> history, EnvironmentConfig environment) =>
        history.LastOrDefault(r => r.Status == HelmStatus.Deployed) ?? throw new KfmException("HelmNoDeployedRelease", KfmErrorKind.ObjectNotFound,
            $"Helm release \"{environment.Helm?.Release}\" has no deployed revision (statuses: {string.Join(", ", history.Select(r => $"v{r.Version} {r.Status}"))}). " +
            "Look at 'helm history' and Get-KfmRolloutHistory -Source Helm; roll back to an explicit revision with -ToRevision.", environment.Helm?.Release);

    /// <summary>The API Deployment's pod template in a release's manifest, or null when it does not render that Deployment.</summary>
    public static JsonObject? PodTemplate(HelmRelease release, string deployment) =>
        HelmManifest.Deployment(HelmManifest.Parse(release.Manifest, release.Name), deployment)?.Body["spec"]?["template"] as JsonObject;

    /// <summary>The API container's image (and the container's name) in a release's manifest.</summary>
    public static (string Image, string Container)? ImageOf(HelmRelease release, string deployment, string? container)
    {
        if (PodTemplate(release, deployment) is not JsonObject template)
        {
            return null;
        }
        var spec = KubernetesJson.Deserialize<V1PodTemplateSpec>(template.ToJsonString());
        string image = PodTemplates.ContainerImage(spec, container, deployment);
        return (image, container ?? spec.Spec.Containers[0].Name);
    }

    private static KfmException NoDeployment(HelmRelease release, string deployment) =>
        new("HelmDeploymentNotInRelease", KfmErrorKind.ObjectNotFound,
            $"Revision {release.Version} of Helm release \"{release.Name}\" renders no Deployment \"{deployment}\" (cluster.deployment). Check 'helm get manifest {release.Name} --revision {release.Version}' and the configuration.", deployment);
}
