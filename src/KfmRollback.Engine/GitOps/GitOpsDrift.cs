using KfmRollback.Engine.Refs;

namespace KfmRollback.Engine.GitOps;

/// <summary>One difference between desired (Git) and live (cluster) state.</summary>
public sealed record DriftItem(string Field, string? Desired, string? Live, string Detail);

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
            items.Add(new DriftItem("image-digest", gitDigest, liveDigests[0], "The cluster runs a digest Git does not pin: open a GitOps PR to re-align desired state."));
        if (gitDigest is not null && liveDigests.Count == 0)
            items.Add(new DriftItem("live-digest", gitDigest, liveRef.CurrentImage, "The cluster's running digest is unknown (tag only); cannot confirm it matches Git."));
        return items;
    }
}
