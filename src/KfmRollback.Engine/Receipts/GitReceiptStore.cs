using KfmRollback.Engine.Adapters.Git;
using LibGit2Sharp;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Receipts;

public sealed class GitReceiptStoreOptions
{
    /// <summary>Branch that must be checked out (and is created as the initial branch of a new repository). Null: whatever HEAD is.</summary>
    public string? Branch { get; init; }
    /// <summary>Store directory relative to the work tree root; "" keeps receipts at the root.</summary>
    public string Subdirectory { get; init; } = string.Empty;
    /// <summary>Commit author; falls back to git config user.name/user.email, then "KfmRollback &lt;kfm-rollback@localhost&gt;".</summary>
    public string? AuthorName { get; init; }
    public string? AuthorEmail { get; init; }
    /// <summary>
    /// The shared repository receipts are pushed to (https, http to loopback, file). Null: the clone's
    /// <c>origin</c> when it has one; a clone without a remote is a store on this machine only.
    /// </summary>
    public string? RemoteUrl { get; init; }
    /// <summary>Credentials for <see cref="RemoteUrl"/> over HTTPS (a token by reference, see GitCredential.FromReference).</summary>
    public GitCredential? Credential { get; init; }
    /// <summary>Ctrl+C: stops a fetch or push between packets.</summary>
    public CancellationToken Cancellation { get; init; }
    /// <summary>Runs just before each push, after the local commit (tests: a concurrent writer lands, or the process dies, exactly there).</summary>
    internal Action? BeforePush { get; init; }
}

/// <summary>
/// A receipt store kept in a git work tree: every save is one commit holding the receipt, its signature
/// and the new ledger line, so the git history is a second, independent record of the chain. With a
/// remote, the work tree is this machine's clone of the shared store: every save is fetched, chained on
/// the remote's head, committed and pushed without force, and counts only once the push landed.
/// </summary>
public sealed class GitReceiptStore : ReceiptStore
{
    public GitReceiptStore(string workTree, GitReceiptStoreOptions? gitOptions = null, ReceiptStoreOptions? options = null)
        : base(new GitStoreBackend(workTree, gitOptions ?? new GitReceiptStoreOptions()), options)
    {
    }
}

internal sealed partial class GitStoreBackend : IReceiptStoreBackend
{
    internal const string FallbackName = "KfmRollback";
    internal const string FallbackEmail = "kfm-rollback@localhost";

    private readonly string _workTree;
    private readonly GitReceiptStoreOptions _options;
    private readonly string _relativeDir;

    public GitStoreBackend(string workTree, GitReceiptStoreOptions options)
    {
        _workTree = Path.GetFullPath(workTree);
        _options = options;
        _relativeDir = options.Subdirectory.Replace('\\', '/').Trim('/');
        if (_relativeDir.Split('/').Any(part => part == ".."))
            throw new KfmException("ReceiptStorePathInvalid", KfmErrorKind.InvalidArgument,
                "The receipt store subdirectory must stay inside the git work tree; remove '..' from it.", options.Subdirectory);
        Directory = _relativeDir.Length == 0 ? _workTree : Path.Combine(_workTree, _relativeDir);
    }

    public string Directory { get; }
    public string Description => $"git work tree {_workTree}" + (_relativeDir.Length > 0 ? $", directory {_relativeDir}" : string.Empty)
        + (RemoteUrl() is { } remote ? $", remote {Safety.Redactor.Default.Url(remote)}" : string.Empty);

    // Inside .git so the lock never shows up as an untracked file in the store.
    public string LockFilePath
    {
        get
        {
            using var repo = new Repository(_workTree);
            return Path.Combine(repo.Info.Path, "kfm-receipts.lock");
        }
    }

    public void Prepare()
    {
        try
        {
            if (!System.IO.Directory.Exists(_workTree) || !System.IO.Directory.EnumerateFileSystemEntries(_workTree).Any())
                InitRepository();
            else if (!Repository.IsValid(_workTree))
                throw new KfmException("ReceiptStoreNotARepository", KfmErrorKind.InvalidOperation,
                    $"{_workTree} is neither empty nor a git work tree. Point the git receipt store at the root of a git work tree, or at an empty directory to create one.", _workTree);
            using (var repo = new Repository(_workTree))
            {
                if (repo.Info.IsBare)
                    throw new KfmException("ReceiptStoreNotARepository", KfmErrorKind.InvalidOperation,
                        $"{_workTree} is a bare repository; receipts need a work tree. Clone it and point the store at the clone.", _workTree);
                EnsureBranch(repo);
                EnsureRemote(repo);
            }
            System.IO.Directory.CreateDirectory(Directory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or LibGit2SharpException)
        {
            throw ReceiptStore.NotWritable(Description, "the work tree or repository cannot be created or opened", ex);
        }
    }

    private void InitRepository()
    {
        System.IO.Directory.CreateDirectory(_workTree);
        Repository.Init(_workTree);
        if (_options.Branch is null) return;
        ValidateBranchName();
        // No commit exists yet, so HEAD can simply be pointed at the (unborn) branch.
        using var repo = new Repository(_workTree);
        File.WriteAllText(Path.Combine(repo.Info.Path, "HEAD"), $"ref: refs/heads/{_options.Branch}\n");
    }

    private void ValidateBranchName()
    {
        if (!Reference.IsValidName("refs/heads/" + _options.Branch))
            throw new KfmException("ReceiptStoreBranchInvalid", KfmErrorKind.InvalidArgument,
                "The receipt branch name is not a valid git branch name. Pick a name such as 'receipts'.", _options.Branch);
    }

    private void EnsureBranch(Repository repo)
    {
        if (_options.Branch is null) return;
        ValidateBranchName();
        var current = repo.Info.IsHeadUnborn ? repo.Refs.Head.TargetIdentifier : repo.Head.CanonicalName;
        if (current == "refs/heads/" + _options.Branch) return;
        if (repo.Info.IsHeadUnborn)
        {
            File.WriteAllText(Path.Combine(repo.Info.Path, "HEAD"), $"ref: refs/heads/{_options.Branch}\n");
            return;
        }
        // Switching branches would rewrite the operator's work tree; that is their call, not ours.
        throw new KfmException("ReceiptStoreWrongBranch", KfmErrorKind.InvalidOperation,
            $"The work tree {_workTree} has {repo.Head.FriendlyName} checked out, not the receipt branch {_options.Branch}. " +
            $"Run `git -C {_workTree} switch {_options.Branch}` (or use a dedicated clone/worktree for receipts) and retry.", _workTree);
    }

    public void EnsureReadyForWrite()
    {
        using var repo = new Repository(_workTree);
        var status = repo.RetrieveStatus(new StatusOptions { IncludeUntracked = true, RecurseUntrackedDirs = true, IncludeIgnored = false });
        var dirtyInStore = status.Where(e => e.State != FileStatus.Unaltered && !e.State.HasFlag(FileStatus.Ignored) && InStore(e.FilePath))
            .Select(e => e.FilePath).ToList();
        // Anything already staged elsewhere would ride along in our commit.
        var stagedElsewhere = status.Where(e => IsStaged(e.State) && !InStore(e.FilePath)).Select(e => e.FilePath).ToList();
        if (dirtyInStore.Count == 0 && stagedElsewhere.Count == 0) return;
        var examples = string.Join(", ", dirtyInStore.Concat(stagedElsewhere).Take(5));
        throw new KfmException("ReceiptStoreDirty", KfmErrorKind.InvalidOperation,
            $"The git receipt store has uncommitted changes ({dirtyInStore.Count} in the store, {stagedElsewhere.Count} staged elsewhere: {examples}). " +
            "Receipts are committed one save per commit; commit or discard those changes (`git status`) and retry. Nothing was written.", _workTree);
    }

    public string? Persist(IReadOnlyList<string> writtenPaths, StoreChange change)
    {
        using var repo = new Repository(_workTree);
        var paths = writtenPaths.Select(RelativeToWorkTree).ToList();
        try
        {
            Commands.Stage(repo, paths);
            return repo.Commit(CommitMessage(change), Author(repo, change.At), Author(repo, change.At), new CommitOptions { PrettifyMessage = false }).Sha;
        }
        catch (LibGit2SharpException ex)
        {
            // The store undoes the file writes; the index must not keep pointing at them either.
            try { Commands.Unstage(repo, paths); } catch (LibGit2SharpException) { }
            throw new KfmException("ReceiptStoreCommitFailed", KfmErrorKind.WriteError,
                $"Committing the receipt to {Description} failed ({ex.GetType().Name}); the save was undone. Check `git status` and the repository's hooks/permissions, then retry.", _workTree, ex);
        }
    }

    private static string CommitMessage(StoreChange change) =>
        $"receipt: {change.IncidentId} {change.ReceiptDigest}\n\n" +
        $"Kfm-Receipt-Digest: {change.ReceiptDigest}\n" +
        $"Kfm-Incident: {change.IncidentId}\n" +
        $"Kfm-Environment: {change.Environment}\n" +
        $"Kfm-Ledger-Seq: {change.Sequence}\n" +
        $"Kfm-Chain-Head: {change.ChainHead}\n";

    private Signature Author(Repository repo, DateTimeOffset when)
    {
        var name = _options.AuthorName ?? repo.Config.Get<string>("user.name")?.Value;
        var email = _options.AuthorEmail ?? repo.Config.Get<string>("user.email")?.Value;
        return new Signature(string.IsNullOrWhiteSpace(name) ? FallbackName : name,
            string.IsNullOrWhiteSpace(email) ? FallbackEmail : email, when);
    }

    public string? RecordedBy(string path)
    {
        using var repo = new Repository(_workTree);
        if (repo.Info.IsHeadUnborn) return null;
        return repo.Commits.QueryBy(RelativeToWorkTree(path)).FirstOrDefault()?.Commit.Sha;
    }

    public IEnumerable<ReceiptStoreProblem> ExtraProblems()
    {
        if (!Repository.IsValid(_workTree)) return Array.Empty<ReceiptStoreProblem>();
        using var repo = new Repository(_workTree);
        return UncommittedChanges(repo).Concat(LedgerHistoryRewrites(repo)).ToList();
    }

    /// <summary>
    /// The ledger is append-only, so every committed version must start with the bytes of the one before.
    /// This makes git history an anchor of its own: a rewritten or truncated ledger that was committed
    /// (even with a freshly recomputed chain) is caught without an externally recorded chain head.
    /// </summary>
    private IEnumerable<ReceiptStoreProblem> LedgerHistoryRewrites(Repository repo)
    {
        if (repo.Info.IsHeadUnborn) yield break;
        var ledgerRelative = RelativeToWorkTree(Path.Combine(Directory, ReceiptStore.LedgerFileName));
        var oldestFirst = repo.Commits.QueryBy(new CommitFilter
        {
            FirstParentOnly = true,
            SortBy = CommitSortStrategies.Topological | CommitSortStrategies.Reverse,
        });
        byte[]? previous = null;
        string? previousSha = null;
        foreach (var commit in oldestFirst)
        {
            var content = commit[ledgerRelative]?.Target is Blob blob ? ReadAll(blob) : null;
            if (previous is not null && (content is null || !content.AsSpan().StartsWith(previous)))
            {
                yield return new ReceiptStoreProblem(ReceiptProblemKind.LedgerHistoryRewritten, null, Path.Combine(_workTree, ledgerRelative),
                    $"commit {commit.Sha} {(content is null ? "deletes" : "rewrites")} ledger lines committed in {previousSha}; the ledger may only grow. " +
                    $"Inspect with `git log -p -- {ledgerRelative}` and restore the earlier lines.");
            }
            if (content is not null)
            {
                previous = content;
                previousSha = commit.Sha;
            }
        }
    }

    private static byte[] ReadAll(Blob blob)
    {
        using var stream = blob.GetContentStream();
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }

    private IEnumerable<ReceiptStoreProblem> UncommittedChanges(Repository repo)
    {
        var status = repo.RetrieveStatus(new StatusOptions { IncludeUntracked = true, RecurseUntrackedDirs = true, IncludeIgnored = false });
        foreach (var entry in status.Where(e => e.State != FileStatus.Unaltered && !e.State.HasFlag(FileStatus.Ignored) && InStore(e.FilePath)))
        {
            yield return new ReceiptStoreProblem(ReceiptProblemKind.UncommittedChange, null, Path.Combine(_workTree, entry.FilePath),
                $"differs from the last commit ({entry.State}); receipts are only trustworthy once committed. Inspect with `git diff`/`git status`.");
        }
    }

    private bool InStore(string repoRelativePath) =>
        _relativeDir.Length == 0 || repoRelativePath == _relativeDir || repoRelativePath.StartsWith(_relativeDir + "/", StringComparison.Ordinal);

    private static bool IsStaged(FileStatus s) =>
        (s & (FileStatus.NewInIndex | FileStatus.ModifiedInIndex | FileStatus.DeletedFromIndex | FileStatus.RenamedInIndex | FileStatus.TypeChangeInIndex)) != 0;

    private string RelativeToWorkTree(string path) => Path.GetRelativePath(_workTree, path).Replace('\\', '/');
}
