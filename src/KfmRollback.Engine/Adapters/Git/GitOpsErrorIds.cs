
namespace KfmRollback.Engine.Adapters.Git;

/// <summary>
/// Stable ErrorIds of the GitOps engine. They become FullyQualifiedErrorIds, so scripts and alert
/// rules match on them: never rename one.
/// </summary>
public static class GitOpsErrorIds
{
    public const string UnsupportedTransport = "GitOpsUnsupportedTransport";
    public const string RepositoryUnavailable = "GitOpsRepositoryUnavailable";
    public const string BranchNotFound = "GitOpsBranchNotFound";
    public const string FileNotFound = "GitOpsFileNotFound";
    public const string YamlInvalid = "GitOpsYamlInvalid";
    public const string ImageNotFound = "GitOpsImageNotFound";
    /// <summary>Two or more images match gitops.image_name; resolved by a more specific image_name.</summary>
    public const string ImageAmbiguous = "GitOpsImageAmbiguous";
    /// <summary>A tag was given or found where a digest is required; resolved by -ToRef sha256:….</summary>
    public const string DigestRequired = "GitOpsDigestRequired";
    /// <summary>No earlier digest in history and no verified receipt; resolved by -ToRef.</summary>
    public const string LastKnownGoodUnknown = "GitOpsLastKnownGoodUnknown";
    /// <summary>The file has no field the digest can be written to (Helm chart without image.digest, Kustomize entry without newTag/digest).</summary>
    public const string NoDigestField = "GitOpsNoDigestField";
    /// <summary>Helm values held in a string (gitops.helm_values.block) that the module cannot map back to the file (folded, quoted, not a string).</summary>
    public const string ValuesUnreadable = "GitOpsValuesUnreadable";
    public const string WorkingTreeDirty = "GitOpsWorkingTreeDirty";
    public const string RevertConflict = "GitOpsRevertConflict";
    public const string CommitNotFound = "GitOpsCommitNotFound";
    public const string PushRejected = "GitOpsPushRejected";
    public const string AuthenticationFailed = "GitOpsAuthenticationFailed";
    public const string DirectPushNotAllowed = "GitOpsDirectPushNotAllowed";
    public const string PullRequestFailed = "GitOpsPullRequestFailed";
    public const string TokenUnavailable = "GitOpsTokenUnavailable";
    public const string KillSwitchNotConfigured = "GitOpsKillSwitchNotConfigured";
    public const string MergeRefused = "GitOpsMergeRefused";
    public const string AutoMergeNotAllowed = "GitOpsAutoMergeNotAllowed";
    public const string PullRequestClosed = "GitOpsPullRequestClosed";
    public const string ReconciledOtherRevision = "GitOpsReconciledOtherRevision";
    public const string SyncFailed = "GitOpsSyncFailed";
    public const string WaitTimeout = "GitOpsWaitTimeout";
    public const string NothingToAwait = "GitOpsNothingToAwait";
    /// <summary>The rollback PR's branch no longer ends at the commit the module pushed; nothing is merged or deployed.</summary>
    public const string PullRequestHeadMoved = "GitOpsPullRequestHeadMoved";
    /// <summary>A reused ops/rollback-api-* branch does not hold exactly the planned change; the run stops.</summary>
    public const string RollbackBranchTampered = "GitOpsRollbackBranchTampered";
}
