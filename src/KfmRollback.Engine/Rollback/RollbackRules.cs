using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Rollback;

/// <summary>
/// What a request may ask of a mechanism, checked once before anything is read, so every method
/// refuses the same thing with the same error id.
/// </summary>
public static class RollbackRules
{
    /// <param name="textSafety">The policy-safe text rule (the engine context's): free text never carries a credential.</param>
    public static void Validate(RollbackRequest request, ITextSafety textSafety)
    {
        // Free text goes into commits, PR bodies, annotations and the timeline: a credential in it never does.
        textSafety.EnsurePolicySafe(request.Reason, "-Reason");
        textSafety.EnsurePolicySafe(request.BlastRadius, "-BlastRadius");
        textSafety.EnsurePolicySafe(request.ForceReason, "-ForceReason");
        if (request.Force && string.IsNullOrWhiteSpace(request.ForceReason))
        {
            throw new KfmException("ForceReasonMissing", KfmErrorKind.InvalidArgument,
                "-Force overrides a safety refusal, so it needs -ForceReason saying why; the reason is recorded on the incident timeline.");
        }
        RollbackTarget target = request.Target;
        if (target.Named > 1)
        {
            throw new KfmException("RollbackTargetConflict", KfmErrorKind.InvalidArgument,
                $"Name one rollback target: -ToRevision, -ToRef or -Revert (got {target.Named}). A plan from Get-KfmRollbackPlan sets exactly one; with an ApiRef piped in, -ToRef comes from its LastKnownGoodRef.");
        }
        // One digest rule for every mechanism: a tag can move, so it never names a rollback target. A
        // prefix of a digest (as tables show it) is resolved by the mechanism against the history it reads.
        if (target.Digest is { } digest && !ImageRefs.IsDigestOrPrefix(digest))
        {
            throw new KfmException("RollbackTargetNotDigest", KfmErrorKind.Ambiguous,
                $"-ToRef '{digest}' is not an image digest, and a tag can move, so the target is ambiguous. Pass -ToRef sha256:<64 hex> (or its first {ImageRefs.MinPrefixHex} hex or more); Get-KfmRolloutHistory and Get-KfmApiRef show the digests.", digest);
        }
        if (target.RevertCommit is not null && request.Method != RollbackMethod.GitOps)
        {
            throw new KfmException("RollbackRevertNeedsGitOps", KfmErrorKind.InvalidArgument,
                "-Revert reverts a deploy commit in the GitOps repository; use it with -Method GitOps.", target.RevertCommit);
        }
        if (request.Fast && request.Method != RollbackMethod.Cluster)
        {
            throw new KfmException("RollbackFastNeedsCluster", KfmErrorKind.InvalidArgument,
                request.Method == RollbackMethod.GitOps
                    ? "-Fast raises the Deployment's maxSurge for the rollout, which a GitOps controller would revert as drift (and the change would not be in Git). Drop -Fast, or use -Method Cluster -Fast."
                    : $"-Fast raises the Deployment's maxSurge for the rollout; a {request.Method} rollback writes the strategy the chart renders, and a raise outside the release would show as drift. Drop -Fast, or use -Method Cluster -Fast.",
                request.Method);
        }
        if (request.Fast && !request.Wait)
        {
            throw new KfmException("RollbackFastNeedsWait", KfmErrorKind.InvalidArgument,
                "-Fast raises the Deployment's maxSurge for this rollout only and restores its own strategy once the rollout converged, which only a run that waits can see. Add -Wait (or drop -Fast).");
        }
        if (request.Method == RollbackMethod.GitOps)
        {
            ValidateGitOps(request);
        }
        else if (request.MergeWith is not null)
        {
            throw new KfmException("RollbackMergeNeedsGitOps", KfmErrorKind.InvalidArgument,
                $"-MergeWith merges the GitOps rollback pull request; -Method {request.Method} opens none. Drop -MergeWith.");
        }
        else if (request.DirectPush)
        {
            throw new KfmException("RollbackDirectPushNeedsGitOps", KfmErrorKind.InvalidArgument,
                $"-DirectPush pushes to the GitOps deploy branch; -Method {request.Method} does not use Git. Drop -DirectPush.");
        }
    }

    private static void ValidateGitOps(RollbackRequest request)
    {
        if (request.Target.Revision is > 0)
        {
            throw new KfmException("RollbackRevisionNeedsCluster", KfmErrorKind.InvalidArgument,
                "-ToRevision names a Deployment or Helm release revision, which -Method Cluster and -Method Helm know; with -Method GitOps use -ToRef <digest> or -Revert <commit>.", request.Target.Revision);
        }
        if (string.IsNullOrWhiteSpace(request.IncidentId))
        {
            throw new KfmException("RollbackIncidentRequired", KfmErrorKind.InvalidArgument,
                "A GitOps rollback names its incident in the branch, commit and pull request: pass -IncidentId or pipe the incident in.");
        }
        if (request.MergeWith is not null && (request.DirectPush || !request.Wait))
        {
            throw new KfmException("RollbackMergeNeedsWait", KfmErrorKind.InvalidArgument,
                request.DirectPush
                    ? "-MergeWith merges the rollback pull request, and -DirectPush opens none. Use one of them."
                    : "-MergeWith merges the rollback pull request while -Wait follows it to the rollout; add -Wait (or merge later with Wait-KfmRollback -MergeWith).");
        }
        if (request.Target.RevertCommit is null && (request.Surfaces & ~Surfaces.RollbackSurfaces.Image) != 0)
        {
            throw new KfmException("RollbackSurfaceNeedsRevert", KfmErrorKind.InvalidArgument,
                $"-Method GitOps pins the image digest; config and policy live in the commits that changed them. Revert that commit with -Revert <sha> (it rolls back whatever the commit changed), or use -Method Cluster for -Surface {Surfaces.SurfaceNames.Of(request.Surfaces)}.");
        }
    }
}
