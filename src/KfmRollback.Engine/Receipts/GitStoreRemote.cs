using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Core;
using LibGit2Sharp;

namespace KfmRollback.Engine.Receipts;

/// <summary>
/// The git store's remote: the local branch always shows what the remote holds. A save fetches, commits
/// on the remote's head and pushes without force; a commit that did not land (the process died before the
/// push, the push was refused) is kept aside under refs/kfm-receipts/pending/ and chained again on top of
/// the remote by the next save, so a receipt is neither lost nor stored twice.
/// </summary>
internal sealed partial class GitStoreBackend
{
    internal const string Origin = "origin";
    internal const string PendingPrefix = "refs/kfm-receipts/pending/";
    private const string FetchedRef = "refs/kfm-receipts/fetched";

    [GeneratedRegex(@"^[a-f0-9]{64}\.json$|^[a-f0-9]{64}\.dsse\.json$|\.tmp-[0-9a-f]{32}$", RegexOptions.CultureInvariant)]
    private static partial Regex SaveLeftover();

    [GeneratedRegex(@"^Kfm-Receipt-Digest: (sha256:[a-f0-9]{64})$", RegexOptions.CultureInvariant | RegexOptions.Multiline)]
    private static partial Regex DigestTrailer();

    public bool IsShared => RemoteUrl() is not null;

    /// <summary>The configured remote, else the clone's origin; null for a store on this machine only.</summary>
    private string? RemoteUrl()
    {
        if (_options.RemoteUrl is { } configured) return configured;
        if (!Repository.IsValid(_workTree)) return null;
        using var repo = new Repository(_workTree);
        return repo.Network.Remotes[Origin]?.Url;
    }

    private string RemoteForMessages => Safety.Redactor.Default.Url(RemoteUrl() ?? Origin);

    private void EnsureRemote(Repository repo)
    {
        var origin = repo.Network.Remotes[Origin];
        var url = _options.RemoteUrl ?? origin?.Url;
        if (url is null) return;
        GitOpsRemote.EnsureSupported(url, "ReceiptStoreUnsupportedTransport", "the receipt store's remote",
            "Use an https:// URL in receipts.git.url (http only to a loopback host), or a file:// URL.");
        if (_options.RemoteUrl is null) return;
        if (origin is null)
        {
            repo.Network.Remotes.Add(Origin, _options.RemoteUrl);
        }
        else if (!SameUrl(origin.Url, _options.RemoteUrl))
        {
            throw new KfmException("ReceiptStoreRemoteMismatch", KfmErrorKind.InvalidArgument,
                $"The receipt clone {_workTree} pushes to {Safety.Redactor.Default.Url(origin.Url)}, not to receipts.git.url {Safety.Redactor.Default.Url(_options.RemoteUrl)}. " +
                "Point receipts.git.path at a clone of that URL, or leave path out so the module keeps its own clone.", _workTree);
        }
    }

    private static bool SameUrl(string a, string b) =>
        string.Equals(a.TrimEnd('/'), b.TrimEnd('/'), StringComparison.Ordinal);

    private GitRemoteTransport Transport() => new(_options.Credential?.Handler(), _options.Cancellation);

    private string BranchName(Repository repo) =>
        _options.Branch ?? (repo.Info.IsHeadUnborn ? repo.Refs.Head.TargetIdentifier["refs/heads/".Length..] : repo.Head.FriendlyName);

    /// <summary>
    /// Where the remote's head was when this clone last saw it. Not refs/remotes/origin/*: libgit2 moves
    /// those on any fetch from origin, which would follow a rewritten history instead of noticing it.
    /// </summary>
    private static string TrackingRef(string branch) => $"refs/kfm-receipts/published/{branch}";

    private static Commit? Target(Repository repo, string reference) =>
        repo.Refs[reference]?.ResolveToDirectReference()?.Target as Commit;

    private static bool Contains(Repository repo, Commit descendant, Commit ancestor) =>
        descendant.Id == ancestor.Id || repo.ObjectDatabase.FindMergeBase(descendant, ancestor)?.Id == ancestor.Id;

    /// <summary>
    /// Fetches the receipt branch and shows it: an interrupted save is undone, commits that never landed
    /// are kept aside as pending, and the branch and work tree move to the remote's head. A remote whose
    /// history no longer contains what this clone saw there is refused, never followed.
    /// </summary>
    public void Refresh(bool forSave)
    {
        if (!IsShared) return;
        using var repo = new Repository(_workTree);
        var branch = BranchName(repo);
        UndoInterruptedSave(repo);
        var remoteTip = FetchBranch(repo, branch, forSave);
        var tracking = TrackingRef(branch);
        if (Target(repo, tracking) is { } known)
        {
            if (remoteTip is null || !Contains(repo, remoteTip, known))
                throw RemoteRewritten(branch, known, remoteTip);
        }
        var local = repo.Info.IsHeadUnborn ? null : repo.Head.Tip;
        if (remoteTip is null)
        {
            // Nothing was ever pushed: the branch (and any receipts on it) goes out with the next save.
            return;
        }
        repo.Refs.Add(tracking, remoteTip.Id, allowOverwrite: true);
        // Commits the remote does not have never landed (a save that died before its push, lost a race, or
        // was refused, or a store that only ever lived here): kept aside, they are chained again on top.
        if (local is not null && local.Id != remoteTip.Id && !Contains(repo, remoteTip, local))
            repo.Refs.Add(PendingPrefix + local.Sha, local.Id, allowOverwrite: true);
        if (local?.Id != remoteTip.Id)
            MoveTo(repo, remoteTip);
        DropLandedPending(repo, remoteTip);
    }

    /// <summary>The remote branch's head (null when the remote has no such branch), fetched into a scratch ref.</summary>
    private Commit? FetchBranch(Repository repo, string branch, bool forSave)
    {
        if (repo.Refs[FetchedRef] is not null) repo.Refs.Remove(FetchedRef);
        try
        {
            Transport().Fetch(repo, Origin, new[] { $"+refs/heads/{branch}:{FetchedRef}" });
        }
        catch (GitRemoteException e)
        {
            throw Unreachable(e, branch, forSave ? "The receipt is NOT stored" : "Nothing was read");
        }
        var tip = Target(repo, FetchedRef);
        if (repo.Refs[FetchedRef] is not null) repo.Refs.Remove(FetchedRef);
        return tip;
    }

    /// <summary>Moves the branch, index and work tree to <paramref name="commit"/>; refuses to discard someone's edits.</summary>
    private void MoveTo(Repository repo, Commit commit)
    {
        var edited = repo.RetrieveStatus(new StatusOptions { IncludeUntracked = false, IncludeIgnored = false })
            .Where(e => e.State != FileStatus.Unaltered).Select(e => e.FilePath).ToList();
        if (edited.Count > 0)
            throw new KfmException("ReceiptStoreDirty", KfmErrorKind.InvalidOperation,
                $"The receipt clone {_workTree} has uncommitted changes ({string.Join(", ", edited.Take(5))}), so it cannot be brought up to the remote's receipts. " +
                "Commit or discard them (`git status`) and retry; receipts go through Save-KfmRollbackReceipt only. Nothing was written.", _workTree);
        repo.Reset(ResetMode.Hard, commit);
    }

    /// <summary>
    /// Files a save writes before its commit (receipt, envelope, ledger line, temp files), left by a process
    /// that died in between, are removed: that save never counted, and its rerun writes them again. Anything
    /// else uncommitted is left for <see cref="EnsureReadyForWrite"/> to refuse.
    /// </summary>
    private void UndoInterruptedSave(Repository repo)
    {
        var status = repo.RetrieveStatus(new StatusOptions { IncludeUntracked = true, RecurseUntrackedDirs = true, IncludeIgnored = false });
        var leftovers = new List<string>();
        var ledgerRelative = RelativeToWorkTree(Path.Combine(Directory, ReceiptStore.LedgerFileName));
        var ledgerExtended = false;
        foreach (var entry in status.Where(e => e.State != FileStatus.Unaltered && !e.State.HasFlag(FileStatus.Ignored)))
        {
            var untracked = entry.State is FileStatus.NewInWorkdir or FileStatus.NewInIndex;
            if (!InStore(entry.FilePath))
            {
                if (untracked) continue;
                return;
            }
            if (entry.FilePath == ledgerRelative)
            {
                if (!ExtendsCommittedLedger(repo, entry.FilePath)) return;
                ledgerExtended = true;
                continue;
            }
            var name = Path.GetFileName(entry.FilePath);
            var inStoreDirectory = RelativeToWorkTree(Path.Combine(Directory, name)) == entry.FilePath;
            if (!untracked || !inStoreDirectory || !SaveLeftover().IsMatch(name)) return;
            if (name.EndsWith(ReceiptStore.ReceiptExtension, StringComparison.Ordinal) && !name.EndsWith(ReceiptStore.SignatureExtension, StringComparison.Ordinal)
                && !ReceiptStore.Holds(File.ReadAllBytes(Path.Combine(_workTree, entry.FilePath)), ReceiptDigest.Prefix + name[..64]))
                return;
            leftovers.Add(entry.FilePath);
        }
        if (leftovers.Count == 0 && !ledgerExtended) return;
        if (repo.Info.IsHeadUnborn)
        {
            repo.Index.Clear();
            repo.Index.Write();
            if (ledgerExtended) File.Delete(Path.Combine(_workTree, ledgerRelative));
        }
        else
        {
            repo.Reset(ResetMode.Hard, repo.Head.Tip);
        }
        foreach (var file in leftovers)
            File.Delete(Path.Combine(_workTree, file));
    }

    private bool ExtendsCommittedLedger(Repository repo, string ledgerRelative)
    {
        var path = Path.Combine(_workTree, ledgerRelative);
        if (!File.Exists(path)) return false;
        var committed = repo.Info.IsHeadUnborn ? Array.Empty<byte>() : ReadBlob(repo.Head.Tip, ledgerRelative) ?? Array.Empty<byte>();
        return File.ReadAllBytes(path).AsSpan().StartsWith(committed);
    }

    private static byte[]? ReadBlob(Commit commit, string path) => commit[path]?.Target is Blob blob ? ReadAll(blob) : null;

    /// <summary>Receipts committed on this machine that the remote does not have, oldest first.</summary>
    public IReadOnlyList<PendingReceipt> Pending()
    {
        if (!IsShared) return Array.Empty<PendingReceipt>();
        using var repo = new Repository(_workTree);
        var tip = repo.Info.IsHeadUnborn ? null : repo.Head.Tip;
        var result = new List<PendingReceipt>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (reference, commit, digest) in PendingCommits(repo, tip))
        {
            if (!seen.Add(digest)) continue;
            var hex = ReceiptDigest.Hex(digest);
            var receiptPath = RelativeToWorkTree(Path.Combine(Directory, hex + ReceiptStore.ReceiptExtension));
            var content = ReadBlob(commit, receiptPath);
            if (content is null || !ReceiptStore.Holds(content, digest))
                throw new KfmException("ReceiptPendingUnreadable", KfmErrorKind.InvalidData,
                    $"Commit {commit.Sha} (kept under {reference} because it never reached the remote) does not hold receipt {digest} intact. " +
                    $"Inspect it with `git -C {_workTree} show {commit.Sha}`; if it is not a receipt that must be stored, drop it with `git -C {_workTree} update-ref -d {reference}`. Nothing was written.", reference);
            var signature = ReadBlob(commit, RelativeToWorkTree(Path.Combine(Directory, hex + ReceiptStore.SignatureExtension)));
            result.Add(new PendingReceipt(digest, ReceiptJson.FromJsonNode(JsonNode.Parse(content)), signature));
        }
        return result;
    }

    /// <summary>Each pending ref's commits that <paramref name="tip"/> does not contain, with the receipt each one saved.</summary>
    private static IEnumerable<(string Reference, Commit Commit, string Digest)> PendingCommits(Repository repo, Commit? tip)
    {
        foreach (var reference in repo.Refs.FromGlob(PendingPrefix + "*").ToList())
        {
            if (reference.ResolveToDirectReference()?.Target is not Commit pendingTip) continue;
            var filter = new CommitFilter
            {
                IncludeReachableFrom = pendingTip,
                ExcludeReachableFrom = tip is null ? null : (object)tip,
                SortBy = CommitSortStrategies.Topological | CommitSortStrategies.Reverse,
            };
            foreach (var commit in repo.Commits.QueryBy(filter))
            {
                if (DigestTrailer().Match(commit.Message) is { Success: true } match)
                    yield return (reference.CanonicalName, commit, match.Groups[1].Value);
            }
        }
    }

    /// <summary>Pending refs whose every receipt the remote's ledger now records are done with.</summary>
    private void DropLandedPending(Repository repo, Commit remoteTip)
    {
        var ledger = ReadBlob(remoteTip, RelativeToWorkTree(Path.Combine(Directory, ReceiptStore.LedgerFileName))) ?? Array.Empty<byte>();
        var recorded = LedgerChain.Check(ledger, ReceiptStore.LedgerFileName).Where(l => l.Entry is not null)
            .Select(l => l.Entry!.ReceiptDigest).ToHashSet(StringComparer.Ordinal);
        var open = PendingCommits(repo, remoteTip).Where(p => !recorded.Contains(p.Digest)).Select(p => p.Reference).ToHashSet(StringComparer.Ordinal);
        foreach (var reference in repo.Refs.FromGlob(PendingPrefix + "*").Select(r => r.CanonicalName).ToList())
            if (!open.Contains(reference)) repo.Refs.Remove(reference);
    }

    /// <summary>
    /// Pushes the branch (never forced). A rejection after which the remote's branch moved is a concurrent
    /// writer: <see cref="ReceiptStoreRaceLost"/>, and the next attempt chains on top of theirs. Any other
    /// failure keeps the commits aside as pending, shows the remote again and says the receipt is not stored.
    /// </summary>
    public void Publish()
    {
        if (!IsShared) return;
        using var repo = new Repository(_workTree);
        var branch = BranchName(repo);
        var local = repo.Head.Tip;
        var published = Target(repo, TrackingRef(branch));
        if (local is null || local.Id == published?.Id) return;
        _options.BeforePush?.Invoke();
        try
        {
            Transport().Push(repo, Origin, local.Id, branch);
        }
        catch (GitRemoteException e)
        {
            Commit? now;
            try
            {
                now = FetchBranch(repo, branch, forSave: true);
            }
            catch (KfmException)
            {
                now = published;
            }
            if (now is not null && now.Id != published?.Id)
                throw new ReceiptStoreRaceLost($"'{branch}' moved from {Short(published)} to {Short(now)} while this save pushed");
            var kept = PendingPrefix + local.Sha;
            repo.Refs.Add(kept, local.Id, allowOverwrite: true);
            if (published is not null) MoveTo(repo, published);
            throw NotStored(e, branch, kept);
        }
        repo.Refs.Add(TrackingRef(branch), local.Id, allowOverwrite: true);
        foreach (var reference in repo.Refs.FromGlob(PendingPrefix + "*").Select(r => r.CanonicalName).ToList())
            repo.Refs.Remove(reference);
    }

    public bool IsPublished(string path)
    {
        if (!IsShared) return true;
        using var repo = new Repository(_workTree);
        var recordedBy = RecordedBy(path);
        var published = Target(repo, TrackingRef(BranchName(repo)));
        return recordedBy is not null && published is not null && Contains(repo, published, repo.Lookup<Commit>(recordedBy));
    }

    private static string Short(Commit? commit) => commit is null ? "nothing" : commit.Sha[..12];

    private KfmException NotStored(GitRemoteException e, string branch, string kept)
    {
        var keptNote = $"It stays committed in {_workTree} (under {kept}) and goes out with the next save.";
        return e.Failure switch
        {
            GitRemoteFailure.Authentication => new KfmException("ReceiptStoreAccessDenied", KfmErrorKind.PermissionDenied,
                $"The receipt is NOT stored: {RemoteForMessages} refused the credentials for pushing to '{branch}' ({e.Detail}). {keptNote} " +
                "Give the identity of receipts.git.token_env/token_file push rights on that branch (docs/rbac.md), then rerun Save-KfmRollbackReceipt.", branch, e),
            GitRemoteFailure.Rejected => new KfmException("ReceiptStorePushRejected", KfmErrorKind.InvalidOperation,
                $"The receipt is NOT stored: {RemoteForMessages} rejected the push to '{branch}' ({e.Detail}), and the branch did not move, so no concurrent writer " +
                $"caused it: a hook or branch protection refused it. {keptNote} Let the receipts identity push to '{branch}' directly, without a pull request " +
                "(docs/rbac.md), then rerun Save-KfmRollbackReceipt. Nothing was forced.", branch, e),
            _ => Unreachable(e, branch, "The receipt is NOT stored", keptNote),
        };
    }

    private KfmException Unreachable(GitRemoteException e, string branch, string outcome, string? note = null) => e.Failure == GitRemoteFailure.Authentication
        ? new KfmException("ReceiptStoreAccessDenied", KfmErrorKind.PermissionDenied,
            $"{outcome}: {RemoteForMessages} refused the credentials on {e.Operation} of '{branch}' ({e.Detail}). {note}" +
            "Check receipts.git.token_env/token_file and that identity's read and push rights (docs/rbac.md), then retry.", branch, e)
        : new KfmException("ReceiptStoreUnavailable", KfmErrorKind.ConnectionError,
            $"{outcome}: git {e.Operation} of '{branch}' with {RemoteForMessages} failed ({e.Detail}). {note}" +
            "Check the network and receipts.git.url, then retry.", branch, e);

    private KfmException RemoteRewritten(string branch, Commit known, Commit? now) =>
        new("ReceiptStoreRemoteRewritten", KfmErrorKind.SecurityError,
            $"The receipt remote {RemoteForMessages} {(now is null ? $"no longer has branch '{branch}'" : $"has '{branch}' at {now.Sha}")}, which does not contain {known.Sha}, " +
            "the head this clone last saw there: the remote's history was rewritten (a force-push or a deleted branch) or the URL now names another repository. " +
            $"Receipts are never force-pushed and nothing was read or written. Compare the two (`git -C {_workTree} log {known.Sha}` against the remote), restore the branch " +
            "on the remote so it contains that head again (push it back, without force), or point receipts.git.url at the right repository.", branch);
}
