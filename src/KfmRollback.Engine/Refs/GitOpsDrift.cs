using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Refs;

/// <summary>
/// One difference between desired (Git) and live (cluster) state. It binds to Invoke-KfmRollback by
/// property name (<c>Test-KfmDrift | Invoke-KfmRollback -Method GitOps</c>): Environment, IncidentId,
/// Drift, and for a digest difference the live digest as ToRef and a Reason, so the rollback PR pins
/// what production runs. Every other item has no ToRef and rolls nothing back.
/// </summary>
public sealed record DriftItem(string Field, string? Desired, string? Live, string Detail)
{
    public const string ImageDigest = "image-digest";

    public string? Environment { get; init; }
    public string? IncidentId { get; init; }

    /// <summary>The container compared when one was named (-Container), bound by Invoke-KfmRollback so the re-align pins that container.</summary>
    public string? Container { get; init; }

    /// <summary>The kind of drift (= <see cref="Field"/>), bound by Invoke-KfmRollback's -Drift.</summary>
    public string Drift => Field;

    /// <summary>The live digest, for a digest difference only: the one rollback target this item binds.</summary>
    public string? ToRef => Field == ImageDigest && ImageRefs.IsDigest(Live) ? Live : null;

    public string? Reason => ToRef is null ? null : $"Re-align Git with production: the cluster runs {ImageRefs.Short(Live)}, Git pins {ImageRefs.Short(Desired)}.";
}

/// <summary>
/// Test-KfmDrift: compares the GitOps ref with the cluster's. The runbook asks for a GitOps PR
/// right after an emergency cluster rollback, so any item here means "desired state not re-aligned".
/// </summary>
public static class GitOpsDrift
{
    public static IReadOnlyList<DriftItem> Compare(ApiRef gitRef, ApiRef liveRef)
    {
        var items = new List<DriftItem>();
        string gitRepo = ImageRefs.Repository(gitRef.CurrentImage);
        string liveRepo = ImageRefs.Repository(liveRef.CurrentImage);
        if (gitRepo != liveRepo)
            items.Add(new DriftItem("image-repository", gitRepo, liveRepo, "The cluster runs a different image repository than Git pins."));
        string? gitDigest = gitRef.CurrentIsDigest ? gitRef.CurrentRef : null;
        if (gitDigest is null)
            items.Add(new DriftItem("git-ref-kind", gitRef.CurrentImage, null, "Git pins a tag, not a digest: what it deploys can change without a commit."));
        var liveDigests = liveRef.RunningDigests.Count > 0 ? liveRef.RunningDigests : liveRef.CurrentIsDigest ? new[] { liveRef.CurrentRef! } : Array.Empty<string>();
        if (liveRef.RolloutInFlight || liveDigests.Distinct().Count() > 1)
            items.Add(new DriftItem("rollout", gitDigest, string.Join(",", liveDigests.Distinct()), "Pods run more than one digest: a rollout is in flight; compare again when it settles."));
        if (gitDigest is not null && liveDigests.Count > 0 && !liveDigests.Contains(gitDigest))
            items.Add(new DriftItem(DriftItem.ImageDigest, gitDigest, liveDigests[0], "The cluster runs a digest Git does not pin: open a GitOps PR to re-align desired state."));
        if (gitDigest is not null && liveDigests.Count == 0)
            items.Add(new DriftItem("live-digest", gitDigest, liveRef.CurrentImage, "The cluster's running digest is unknown (tag only); cannot confirm it matches Git."));
        return items;
    }

    /// <summary>Git's desired ref against what the cluster runs, one item per difference (Test-KfmDrift).</summary>
    /// <param name="container">The container compared (its pin in Git, its image in the pods); null: the configured one.</param>
    public static async Task<IReadOnlyList<DriftItem>> ReadAsync(RefSources sources, EnvironmentConfig environment, string? container, GitCredential? credential, CancellationToken cancellationToken)
    {
        ApiRef desired = await sources.For(RefSource.GitOps).ReadAsync(new RefQuery(environment, container, Credential: credential), LastKnownGoodAuthority.HistoryOnly, cancellationToken).ConfigureAwait(false);
        // Only what runs matters here, not its last-known-good.
        ApiRef live = await sources.For(RefSource.Cluster).ReadAsync(new RefQuery(environment, container), LastKnownGoodAuthority.HistoryOnly, cancellationToken).ConfigureAwait(false);
        return Compare(desired, live).Select(i => i with { Environment = environment.Name, Container = container }).ToList();
    }
}
