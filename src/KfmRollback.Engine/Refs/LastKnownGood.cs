using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Refs;

/// <summary>
/// A digest recorded as bad for an environment: a rollback moved away from it. Where the record was
/// found (<see cref="Source"/>: the incident journal, the Deployment's or a GitOps controller's
/// annotation, a rollback commit in Git, a verified receipt) and, when known, which incident and run.
/// </summary>
public sealed record QuarantineEntry
{
    public required string Digest { get; init; }
    public required string Source { get; init; }
    public string? IncidentId { get; init; }
    public string? RunId { get; init; }
    public DateTimeOffset? At { get; init; }
    public string? Actor { get; init; }
    /// <summary>The digest the rollback moved to, when recorded.</summary>
    public string? MovedTo { get; init; }

    public override string ToString() =>
        $"{ImageRefs.Short(Digest)} (quarantined{(IncidentId is null ? "" : $" by {IncidentId}")}{(RunId is null ? "" : $" run {RunId}")}{(At is null ? "" : $" at {At.Value.UtcDateTime:yyyy-MM-dd HH:mm} UTC")}; {Source})";
}

/// <summary>A digest a recorded rollback moved to (the journal) or a verified receipt names as its target (the ledger), newest first.</summary>
public sealed record EstablishedTarget(string Digest, string Source, string? IncidentId, DateTimeOffset? At);

/// <summary>One entry of a ref source's history, newest first: a ReplicaSet revision, a Helm release, a Git commit.</summary>
public sealed record RefCandidate(string Digest, long? Revision, string Label);

/// <summary>What the authority chose, where from, and why (for people).</summary>
public sealed record LastKnownGoodChoice(string? Digest, string? Source, long? Revision, string Why)
{
    /// <summary>True when the build running now is itself the last-known-good: a rollback already put it there.</summary>
    public bool IsCurrent { get; init; }
}

/// <summary>
/// Sources of <see cref="LastKnownGoodChoice.Source"/>: the established current build, the three
/// histories, a recorded rollback target and a verified receipt.
/// </summary>
public static class LastKnownGoodSources
{
    public const string PreviousRevision = "previous-revision";
    public const string PreviousRelease = "previous-release";
    public const string GitHistory = "git-history";
    public const string ReceiptStore = "receipt-store";
    public const string RollbackTarget = "rollback-target";
}

/// <summary>Where a quarantine record was found.</summary>
public static class QuarantineSources
{
    public const string Journal = "incident-journal";
    public const string DeploymentAnnotation = "deployment-annotation";
    public const string ControllerAnnotation = "controller-annotation";
    public const string GitHistory = "git-history";
    public const string ReceiptStore = "receipt-store";
}

/// <summary>
/// Everything the module knows about one environment's builds, and the one rule that turns a ref
/// source's history into a last-known-good. Every source (cluster ReplicaSets, Helm releases, Git
/// commits), Get-KfmRollbackPlan and every mechanism's "previous" target ask this rule, so they
/// cannot disagree:
/// <list type="number">
/// <item>A digest a rollback moved away from (quarantined) is never chosen.</item>
/// <item>When the build running now is the target of a recorded rollback or of a verified receipt
/// (and not quarantined since), it is the last-known-good: a rerun or a new incident changes nothing
/// instead of rolling further back (kubectl's undo hazard).</item>
/// <item>Otherwise the newest history entry older than the current one that runs another digest.</item>
/// <item>Otherwise the newest recorded rollback target or verified receipt target (ledger order,
/// never a date the receipt states about itself).</item>
/// </list>
/// </summary>
public sealed class EnvironmentTrust
{
    private readonly Dictionary<string, QuarantineEntry> _quarantined;
    private readonly HashSet<string> _lifted;

    public EnvironmentTrust(string environment, IEnumerable<QuarantineEntry> quarantined, IEnumerable<EstablishedTarget> established,
        IEnumerable<string>? lifted = null, IEnumerable<string>? notes = null)
    {
        Environment = environment;
        _lifted = new HashSet<string>(lifted ?? Array.Empty<string>(), StringComparer.Ordinal);
        _quarantined = new Dictionary<string, QuarantineEntry>(StringComparer.Ordinal);
        foreach (QuarantineEntry entry in quarantined)
        {
            if (!_lifted.Contains(entry.Digest) && !_quarantined.ContainsKey(entry.Digest))
            {
                _quarantined[entry.Digest] = entry;
            }
        }
        Established = established.ToList();
        Notes = (notes ?? Array.Empty<string>()).ToList();
    }

    public static EnvironmentTrust Empty(string environment) => new(environment, Array.Empty<QuarantineEntry>(), Array.Empty<EstablishedTarget>());

    public string Environment { get; }

    /// <summary>Quarantined digests, each with the first record found for it.</summary>
    public IReadOnlyCollection<QuarantineEntry> Quarantined => _quarantined.Values;

    /// <summary>Rollback targets and verified receipt targets, newest first.</summary>
    public IReadOnlyList<EstablishedTarget> Established { get; }

    /// <summary>What people should know about how this was built (a receipt store that did not verify).</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>Digests an operator forced as a target after their quarantine: no longer quarantined.</summary>
    public IReadOnlyCollection<string> Lifted => _lifted;

    /// <summary>The quarantine record of <paramref name="digest"/>, or null when it is not quarantined here.</summary>
    public QuarantineEntry? QuarantineOf(string? digest) =>
        digest is not null && _quarantined.TryGetValue(digest, out QuarantineEntry? entry) ? entry : null;

    /// <summary>
    /// This knowledge plus the evidence a source read itself (the Deployment's annotation, Git's
    /// rollback commits): each entry quarantines the digest moved away from and establishes the one
    /// moved to, so a sandbox with an empty journal still knows both.
    /// </summary>
    public EnvironmentTrust With(IEnumerable<QuarantineEntry> more)
    {
        List<QuarantineEntry> evidence = more.ToList();
        var moved = evidence.Where(e => ImageRefs.IsDigest(e.MovedTo))
            .OrderByDescending(e => e.At ?? DateTimeOffset.MinValue)
            .Select(e => new EstablishedTarget(e.MovedTo!, LastKnownGoodSources.RollbackTarget, e.IncidentId, e.At));
        return new(Environment, _quarantined.Values.Concat(evidence), Established.Concat(moved), _lifted, Notes);
    }

    /// <summary>The last-known-good of a source whose current digest is <paramref name="current"/> and whose older entries are <paramref name="history"/> (newest first).</summary>
    /// <param name="sameDigest">
    /// Whether an older entry running the current digest counts (Get-KfmRollbackPlan compares whole
    /// revisions: the one before a configuration-only deploy runs the same image). Image refs skip them.
    /// </param>
    public LastKnownGoodChoice Choose(string? current, IEnumerable<RefCandidate> history, string historySource, bool sameDigest = false)
    {
        EstablishedTarget? established = current is not null && QuarantineOf(current) is null
            ? Established.FirstOrDefault(e => e.Digest == current)
            : null;
        var skipped = new List<QuarantineEntry>();
        foreach (RefCandidate candidate in history)
        {
            if (QuarantineOf(candidate.Digest) is { } bad)
            {
                skipped.Add(bad);
                continue;
            }
            if (candidate.Digest == current)
            {
                if (sameDigest)
                {
                    return new LastKnownGoodChoice(candidate.Digest, historySource, candidate.Revision, $"{candidate.Label} runs the same {ImageRefs.Short(candidate.Digest)}" + Skipped(skipped));
                }
                continue;
            }
            if (established is not null)
            {
                return Current(established, skipped);
            }
            return new LastKnownGoodChoice(candidate.Digest, historySource, candidate.Revision,
                $"{candidate.Label} runs {ImageRefs.Short(candidate.Digest)}" + Skipped(skipped));
        }
        if (established is not null)
        {
            return Current(established, skipped);
        }
        foreach (EstablishedTarget target in Established)
        {
            if (target.Digest != current && QuarantineOf(target.Digest) is null)
            {
                return new LastKnownGoodChoice(target.Digest, target.Source, null,
                    $"{ImageRefs.Short(target.Digest)} is the newest {(target.Source == LastKnownGoodSources.ReceiptStore ? "verified receipt" : "recorded rollback")} target" + Skipped(skipped));
            }
        }
        return new LastKnownGoodChoice(null, null, null, "no earlier build that is not quarantined" + Skipped(skipped));
    }

    /// <summary>The build running now is the last-known-good: a recorded rollback or a verified receipt put it there.</summary>
    private static LastKnownGoodChoice Current(EstablishedTarget established, IReadOnlyList<QuarantineEntry> skipped) =>
        new(established.Digest, established.Source, null,
            $"{ImageRefs.Short(established.Digest)} runs now and is the target of {(established.IncidentId is null ? "a recorded rollback" : $"{established.IncidentId}'s rollback")}" +
            (established.Source == LastKnownGoodSources.ReceiptStore ? " (verified receipt)" : "") + Skipped(skipped))
        { IsCurrent = true };

    /// <summary>Error id of a target that is quarantined here and was not forced.</summary>
    public const string TargetQuarantined = "RollbackTargetQuarantined";

    /// <summary>The refusal of a quarantined target: which digest, who quarantined it, and how to override it on the record.</summary>
    public KfmException Refusal(QuarantineEntry entry, string howToForce) =>
        new(TargetQuarantined, KfmErrorKind.Ambiguous,
            $"{entry.Digest} is quarantined for {Environment}: a rollback moved away from it ({entry}). A rollback never targets it unless an operator names it: {howToForce} " +
            "Nothing was changed.", entry.Digest);

    private static string Skipped(IReadOnlyList<QuarantineEntry> skipped) =>
        skipped.Count == 0 ? "" : $"; skipped quarantined {string.Join(", ", skipped.DistinctBy(s => s.Digest))}";
}
