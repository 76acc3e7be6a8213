using KfmRollback.Engine.Adapters.GitOpsFiles;
using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using LibGit2Sharp;

namespace KfmRollback.Engine.Refs;

/// <summary>
/// One commit on the deploy branch that changed the API image pin. <see cref="Unreadable"/> says why
/// an older revision of the file could not be read (no images entry yet, two matches, invalid YAML):
/// history lists and skips it instead of failing.
/// </summary>
public sealed record GitOpsRefChange(string Commit, string Author, DateTimeOffset When, string Image, string? Digest, string Summary, string? Unreadable = null)
{
    /// <summary>True for a rollback commit (its Incident: and Last-Good-Ref: trailers): the digest before it is one a rollback moved away from.</summary>
    public bool IsRollback { get; init; }
    /// <summary>A rollback commit's Incident: trailer.</summary>
    public string? Incident { get; init; }
}

/// <summary>What Get-KfmApiRef -Source GitOps returns: the ref plus the history it was derived from.</summary>
public sealed record GitOpsRefReport(ApiRef Ref, IReadOnlyList<GitOpsRefChange> History);

/// <summary>
/// Git's refs: the digest the GitOps file pins at the deploy branch's tip, and the last-known-good
/// from the file's history, read through <see cref="GitOpsRepository"/> here (no reader between).
/// History is a first-parent walk comparing the file's blob id per commit (no tree diffs); a blob is
/// parsed only when its id changed, and the walk stops as soon as it has what was asked for. Git's
/// history is its commit log: this source lists no revisions of its own.
/// </summary>
public sealed class GitOpsRefSource : IRefSource
{
    public const string SourceReceiptStore = LastKnownGoodSources.ReceiptStore;
    public const string SourceGitHistory = LastKnownGoodSources.GitHistory;

    public RefSource Source => RefSource.GitOps;

    public Task<ApiRef> ReadAsync(RefQuery query, LastKnownGoodAuthority authority, CancellationToken cancellationToken) =>
        Task.Run(() =>
        {
            var environment = query.Environment;
            using GitOpsRepository repository = GitOpsRepository.Open(environment.Gitops, query.Credential, cancellationToken: cancellationToken);
            GitOpsRefReport report = Read(environment.Name, environment.Gitops, repository, authority.For(environment));
            return report.Ref with { IncidentId = query.IncidentId };
        }, cancellationToken);

    public Task<IReadOnlyList<object>> HistoryAsync(RefQuery query, long? revision, CancellationToken cancellationToken) =>
        throw RefSources.NoHistory(Source);

    /// <param name="trust">What the last-known-good authority knows of the environment (quarantine, rollback targets, verified receipts).</param>
    /// <param name="historyLimit">How many changes to list; the last-known-good search stops earlier when it can.</param>
    public static GitOpsRefReport Read(string environment, GitOpsConfig config, GitOpsRepository repository, EnvironmentTrust? trust = null, int historyLimit = 10)
    {
        var tip = repository.DeployTip();
        var current = ReadAt(config, ImagePinLocator.For(config), tip) ?? throw new KfmException(GitOpsErrorIds.FileNotFound, KfmErrorKind.ObjectNotFound,
            $"{config.File} does not exist on '{config.Branch}' at {tip.Sha[..12]}. Check gitops.file, or roll back with -Revert <sha> (a git revert of the bad deploy commit).", config.File);
        var history = History(config, repository.Repo, tip, Math.Max(2, historyLimit), stopAtDigestOtherThan: historyLimit <= 2 ? current.Digest : null);
        // The one authority; Git adds its own evidence: the digest before each rollback commit was rolled away from.
        var known = (trust ?? EnvironmentTrust.Empty(environment)).With(RolledAway(history));
        var choice = known.Choose(current.Digest, Candidates(history), SourceGitHistory);
        if (!choice.IsCurrent && choice.Source != SourceGitHistory && (history.Count >= historyLimit || historyLimit <= 2))
        {
            // The listed window held only edits that kept the digest, or only rolled-away digests: walk the whole first-parent history.
            var all = History(config, repository.Repo, tip, int.MaxValue);
            known = known.With(RolledAway(all));
            choice = known.Choose(current.Digest, Candidates(all), SourceGitHistory);
        }
        var apiRef = new ApiRef
        {
            Environment = environment,
            Source = RefSource.GitOps,
            Commit = tip.Sha,
            CurrentImage = current.Image,
            CurrentRef = current.Digest,
            LastKnownGoodRef = choice.Digest,
            LastKnownGoodSource = choice.Source,
            LastKnownGoodReason = choice.Why,
            Quarantined = known.Quarantined.OrderBy(q => q.At ?? DateTimeOffset.MinValue).ToList(),
        };
        return new GitOpsRefReport(apiRef, history);
    }

    /// <summary>
    /// Changes of the pin, newest first (the first entry is the commit that set the current value).
    /// With <paramref name="stopAtDigestOtherThan"/> the walk ends at the first older digest.
    /// </summary>
    public static IReadOnlyList<GitOpsRefChange> History(GitOpsConfig config, Repository repo, Commit tip, int limit, string? stopAtDigestOtherThan = null)
    {
        ImagePinLocator locator = ImagePinLocator.For(config);
        var changes = new List<GitOpsRefChange>();
        // No sort: a topological sort makes libgit2 walk the whole history before yielding the first
        // commit, which would defeat stopping early; a first-parent chain is already in order.
        var filter = new CommitFilter { IncludeReachableFrom = tip, FirstParentOnly = true, SortBy = CommitSortStrategies.None };
        Commit? newer = null;
        ObjectId? newerBlob = null;
        foreach (var commit in repo.Commits.QueryBy(filter))
        {
            var blob = commit[config.File]?.Target.Id;
            if (newer is not null && blob != newerBlob && newerBlob is not null)
            {
                // 'newer' introduced the blob it has; record it, parsed once.
                changes.Add(Describe(config, locator, newer));
                if (changes.Count >= limit)
                    return changes;
                if (stopAtDigestOtherThan is not null && changes.Count > 1 && changes[^1].Digest != stopAtDigestOtherThan)
                    return changes;
            }
            newer = commit;
            newerBlob = blob;
            if (blob is null)
                break; // the file did not exist before this point
        }
        if (newer is not null && newerBlob is not null && changes.Count < limit)
            changes.Add(Describe(config, locator, newer)); // the commit that created the file
        return changes;
    }

    /// <summary>The revisions before the current one (the first entry set it), newest first.</summary>
    private static IEnumerable<RefCandidate> Candidates(IReadOnlyList<GitOpsRefChange> history) =>
        history.Skip(1).Where(c => c.Digest is not null).Select(c => new RefCandidate(c.Digest!, null, $"commit {c.Commit[..12]}"));

    /// <summary>Digests rollback commits moved away from: the readable revision older than each rollback commit.</summary>
    private static IEnumerable<QuarantineEntry> RolledAway(IReadOnlyList<GitOpsRefChange> history)
    {
        for (int i = 0; i < history.Count; i++)
        {
            if (!history[i].IsRollback)
                continue;
            if (history.Skip(i + 1).FirstOrDefault(c => c.Digest is not null)?.Digest is { } before && before != history[i].Digest)
                yield return new QuarantineEntry
                {
                    Digest = before,
                    Source = QuarantineSources.GitHistory,
                    IncidentId = history[i].Incident,
                    At = history[i].When,
                    MovedTo = history[i].Digest,
                };
        }
    }

    private static GitOpsRefChange Describe(GitOpsConfig config, ImagePinLocator locator, Commit commit)
    {
        string? incident = RollbackMessage.Trailer(commit.Message, "Incident");
        bool rollback = incident is not null && RollbackMessage.Trailer(commit.Message, "Last-Good-Ref") is not null;
        try
        {
            var pin = ReadAt(config, locator, commit)!.Value;
            return new GitOpsRefChange(commit.Sha, commit.Author.Name, commit.Author.When, pin.Image, pin.Digest, commit.MessageShort) { IsRollback = rollback, Incident = rollback ? incident : null };
        }
        catch (KfmException e) when (e.ErrorId is GitOpsErrorIds.YamlInvalid or GitOpsErrorIds.ImageNotFound or GitOpsErrorIds.ImageAmbiguous or GitOpsErrorIds.NoDigestField)
        {
            // An older revision that cannot be read (before the first deploy, two containers, broken YAML) is listed and skipped, never fatal.
            return new GitOpsRefChange(commit.Sha, commit.Author.Name, commit.Author.When, "", null, commit.MessageShort, $"{e.ErrorId}: {e.Message}") { IsRollback = rollback, Incident = rollback ? incident : null };
        }
    }

    private static (string Image, string? Digest)? ReadAt(GitOpsConfig config, ImagePinLocator locator, Commit commit)
    {
        byte[]? bytes = GitOpsRepository.ReadFile(commit, config.File);
        if (bytes is null)
            return null;
        var file = YamlText.Parse(config.File, bytes);
        if (config.Kind == GitOpsKind.Helm)
            return locator.ReadHelmLoosely(file);
        var pin = locator.Locate(file);
        return (pin.Image, pin.Digest);
    }
}
