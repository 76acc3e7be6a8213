namespace KfmRollback.Engine.Refs;

/// <summary>Where a ref was read from.</summary>
public enum RefSource
{
    Cluster,
    GitOps,
    /// <summary>The Helm release history (release Secrets).</summary>
    Helm,
}

/// <summary>
/// The runbook's step 1: the API's current ref and its last-known-good, from the cluster or from
/// Git. Property names bind by name into Invoke-KfmRollback and New-KfmRollbackReceipt.
/// </summary>
public sealed record ApiRef
{
    public required string Environment { get; init; }
    /// <summary>The incident this lookup serves, carried along the pipeline.</summary>
    public string? IncidentId { get; init; }
    public required RefSource Source { get; init; }
    /// <summary>The image reference as written (spec image or GitOps file); may be a mutable tag.</summary>
    public required string CurrentImage { get; init; }
    /// <summary>The immutable current ref: an image digest, or null when only a tag is known.</summary>
    public string? CurrentRef { get; init; }
    public bool CurrentIsDigest => CurrentRef is not null && ImageRefs.IsDigest(CurrentRef);
    /// <summary>Cluster source: the distinct digests the pods actually run.</summary>
    public IReadOnlyList<string> RunningDigests { get; init; } = Array.Empty<string>();
    /// <summary>Cluster source: pods disagree (a rollout is in flight).</summary>
    public bool RolloutInFlight { get; init; }
    /// <summary>Cluster source: the Deployment's revision; Helm source: the deployed release revision.</summary>
    public long? Revision { get; init; }
    /// <summary>GitOps source: the commit on the deploy branch the ref was read from.</summary>
    public string? Commit { get; init; }
    public string? LastKnownGoodRef { get; init; }
    /// <summary>
    /// How the last-known-good was found: previous-revision, previous-release or git-history (the
    /// newest earlier entry not quarantined), rollback-target (a recorded rollback moved here) or
    /// receipt-store (a verified receipt's target). When it equals <see cref="CurrentRef"/>, the API
    /// already runs its last-known-good and a rollback changes nothing.
    /// </summary>
    public string? LastKnownGoodSource { get; init; }
    public long? LastKnownGoodRevision { get; init; }
    /// <summary>Why the authority chose it (and which quarantined digests it skipped), for people.</summary>
    public string? LastKnownGoodReason { get; init; }
    /// <summary>Digests rollbacks moved away from in this environment: never chosen as a target unless named with -Force.</summary>
    public IReadOnlyList<QuarantineEntry> Quarantined { get; init; } = Array.Empty<QuarantineEntry>();
    public string? Namespace { get; init; }
    public string? Deployment { get; init; }
    public string? Container { get; init; }

    /// <summary>
    /// This ref with the authority's <paramref name="choice"/> as its last-known-good (its revision is
    /// <see cref="Revision"/> when the choice is the running build) and what <paramref name="trust"/> holds quarantined.
    /// </summary>
    public ApiRef WithLastKnownGood(LastKnownGoodChoice choice, EnvironmentTrust trust) => this with
    {
        LastKnownGoodRef = choice.Digest,
        LastKnownGoodSource = choice.Source,
        LastKnownGoodRevision = choice.IsCurrent ? Revision : choice.Revision,
        LastKnownGoodReason = choice.Why,
        Quarantined = trust.Quarantined.OrderBy(q => q.At ?? DateTimeOffset.MinValue).ToList(),
    };
}
