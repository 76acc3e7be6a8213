using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Receipts;
using KfmRollback.Engine.Rollback;
using LibGit2Sharp;

namespace KfmRollback.Engine.GitOps;

/// <summary>What Invoke-KfmRollback -Method GitOps asks for.</summary>
public sealed record GitOpsRollbackRequest
{
    public required string Environment { get; init; }
    public required string IncidentId { get; init; }
    public required string Reason { get; init; }
    public string BlastRadius { get; init; } = "api";
    /// <summary>Revert this deploy commit instead of pinning a digest.</summary>
    public string? RevertCommit { get; init; }
    /// <summary>Explicit target digest; absent means the last-known-good.</summary>
    public string? ToRef { get; init; }
    /// <summary>Show the diff; push nothing.</summary>
    public bool DryRun { get; init; }
    /// <summary>Push straight to the deploy branch (needs gitops.allow_direct_push).</summary>
    public bool DirectPush { get; init; }
    public GitCredential? Credential { get; init; }
    /// <summary>Stored receipts, for the verified last-known-good.</summary>
    public IEnumerable<RollbackReceipt>? Receipts { get; init; }
}

/// <summary>
/// Runbook step 2: a rollback branch from the deploy branch's tip, a revert or a digest pin,
/// pushed (never forced) with a PR. Commits are built in the object database from the tip's tree,
/// so the work tree, HEAD and local branches are never touched: a failure leaves the clone as it was.
/// Idempotency: a remote branch starting with ops/rollback-api- whose tip carries the same
/// Incident: trailer is this incident's rollback; a rerun returns it (and its PR).
/// </summary>
public sealed class GitOpsRollback
{
    private readonly GitOpsConfig _config;
    private readonly IClock _clock;
    private readonly string? _cacheRoot;
    private readonly Func<PullRequestConfig, Uri?, IPullRequestProvider> _providers;

    public GitOpsRollback(GitOpsConfig config, IClock? clock = null, string? cacheRoot = null, Func<PullRequestConfig, Uri?, IPullRequestProvider>? providers = null)
    {
        _config = config;
        _clock = clock ?? SystemClock.Instance;
        _cacheRoot = cacheRoot;
        _providers = providers ?? ((pr, url) => PullRequestProviders.For(pr, url));
    }

    public RollbackResult Run(GitOpsRollbackRequest request) => RunAsync(request, CancellationToken.None).GetAwaiter().GetResult();

    public async Task<RollbackResult> RunAsync(GitOpsRollbackRequest request, CancellationToken cancellationToken)
    {
        var started = _clock.UtcNow;
        if (request.ToRef is not null && !ImageRefs.IsDigest(request.ToRef))
            throw new KfmException(GitOpsErrorIds.DigestRequired, KfmErrorKind.Ambiguous,
                $"-ToRef '{request.ToRef}' is not an image digest; a tag can move. Pass -ToRef sha256:<64 hex>.", request.ToRef);
        if (request.DirectPush && !_config.AllowDirectPush && !request.DryRun)
            throw new KfmException(GitOpsErrorIds.DirectPushNotAllowed, KfmErrorKind.PermissionDenied,
                "Direct pushes to the deploy branch are off (gitops.allow_direct_push is false). Drop -DirectPush to go through a pull request.");
        using var repository = GitOpsRepository.Open(_config, request.Credential, _cacheRoot);
        if (_config.Path is not null && repository.Repo.RetrieveStatus(new StatusOptions { IncludeUntracked = false }).IsDirty)
            throw new KfmException(GitOpsErrorIds.WorkingTreeDirty, KfmErrorKind.InvalidOperation,
                $"The GitOps clone at {_config.Path} has uncommitted changes. Commit or stash them first; a rollback must not carry unrelated edits.", _config.Path);

        var report = new GitOpsRefReader(request.Environment, _config).Read(repository, request.Receipts, historyLimit: 2);
        var current = report.Ref;
        var tip = repository.DeployTip();
        string? url = repository.Repo.Network.Remotes[GitOpsRepository.RemoteName]?.Url;
        var provider = _providers(_config.Pr, url is not null && Uri.TryCreate(url, UriKind.Absolute, out var u) ? u : null);

        RollbackResult Result(RollbackOutcome outcome, string? target, string? branch = null, string? commit = null, string? pr = null, string? change = null, string? detail = null) => new()
        {
            Environment = request.Environment,
            IncidentId = request.IncidentId,
            Method = RollbackMethod.GitOps,
            Outcome = outcome,
            CurrentRef = current.CurrentRef ?? current.CurrentImage,
            RollbackTargetRef = target,
            StartedAt = started,
            CompletedAt = _clock.UtcNow,
            Branch = branch,
            Commit = commit,
            PullRequestUrl = pr,
            Changes = change is null ? Array.Empty<PlannedChange>() : new[] { new PlannedChange("image", $"git {_config.File}", "diff", change) },
            Detail = detail,
            Reason = request.Reason,
        };

        if (!request.DirectPush && FindExisting(repository, request.IncidentId) is { } existing)
        {
            string? target = RollbackMessage.Trailer(existing.Tip.Message, "Last-Good-Ref");
            string branch = existing.FriendlyName[(GitOpsRepository.RemoteName.Length + 1)..];
            if (request.DryRun)
                return Result(RollbackOutcome.Planned, target, branch, existing.Tip.Sha, detail: "A rollback branch for this incident already exists; a run would reuse it.");
            var draft = Draft(request, branch, target ?? "", current.CurrentRef ?? current.CurrentImage);
            var found = await OpenPullRequest(provider, draft, cancellationToken).ConfigureAwait(false);
            return Result(RollbackOutcome.PendingMerge, target, branch, existing.Tip.Sha, found.Url, detail: found.Detail ?? "Reused the rollback branch already pushed for this incident.");
        }

        var (tree, targetRef, what) = request.RevertCommit is { } sha ? Revert(repository.Repo, tip, sha) : Pin(repository.Repo, tip, request.ToRef ?? current.LastKnownGoodRef);
        if (tree.Id == tip.Tree.Id)
            return Result(RollbackOutcome.NoOp, targetRef, detail: $"The deploy branch already has {targetRef}; nothing to change.");
        string diff = repository.Repo.Diff.Compare<Patch>(tip.Tree, tree).Content;
        string branchName = request.DirectPush ? _config.Branch : FreeBranchName(repository);
        if (request.DryRun)
            return Result(RollbackOutcome.Planned, targetRef, branchName, change: diff, detail: "Dry run: nothing was committed or pushed.");

        var signature = Signature(repository.Repo);
        string message = RollbackMessage.Commit(request.IncidentId, what, targetRef, request.Reason, request.BlastRadius);
        var commit = repository.Repo.ObjectDatabase.CreateCommit(signature, signature, message, tree, new[] { tip }, prettifyMessage: false);
        repository.Push(commit, branchName);
        if (request.DirectPush)
            return Result(RollbackOutcome.Succeeded, targetRef, branchName, commit.Sha, change: diff, detail: "Pushed to the deploy branch; the reconciler deploys it.");
        var pr = await OpenPullRequest(provider, Draft(request, branchName, targetRef, current.CurrentRef ?? current.CurrentImage), cancellationToken).ConfigureAwait(false);
        return Result(pr.Failed ? RollbackOutcome.Failed : RollbackOutcome.PendingMerge, targetRef, branchName, commit.Sha, pr.Url, diff, pr.Detail);
    }

    private (Tree Tree, string Target, string What) Pin(Repository repo, Commit tip, string? target)
    {
        if (target is null)
            throw new KfmException(GitOpsErrorIds.LastKnownGoodUnknown, KfmErrorKind.Ambiguous,
                $"No last-known-good digest: {_config.File} on '{_config.Branch}' has no earlier digest and no verified receipt names one. Pass -ToRef sha256:… or -Revert <sha>.");
        if (!ImageRefs.IsDigest(target))
            throw new KfmException(GitOpsErrorIds.DigestRequired, KfmErrorKind.Ambiguous,
                $"The last-known-good '{target}' is not a digest. Pass -ToRef sha256:….", target);
        var file = YamlText.Parse(_config.File, GitOpsRepository.ReadFile(tip, _config.File)!);
        var pin = ImagePinLocator.For(_config).Locate(file);
        if (pin.Digest == target)
            return (tip.Tree, target, "already pinned");
        string text = ImagePinEditor.SetDigest(file, pin, target);
        var blob = repo.ObjectDatabase.CreateBlob(new MemoryStream(file.Encode(text)));
        var definition = TreeDefinition.From(tip.Tree).Add(_config.File, blob, Mode.NonExecutableFile);
        return (repo.ObjectDatabase.CreateTree(definition), target, $"pin image to {target[..19]}");
    }

    private (Tree Tree, string Target, string What) Revert(Repository repo, Commit tip, string sha)
    {
        var bad = LookupCommit(repo, sha) ?? throw new KfmException(GitOpsErrorIds.CommitNotFound, KfmErrorKind.ObjectNotFound,
            $"Commit {sha} is not in the GitOps repository. Pass a commit from Get-KfmApiRef -Source GitOps history.", sha);
        var result = repo.ObjectDatabase.RevertCommit(bad, tip, bad.Parents.Count() > 1 ? 1 : 0, new MergeTreeOptions { FailOnConflict = false });
        if (result.Status != MergeTreeStatus.Succeeded)
            throw new KfmException(GitOpsErrorIds.RevertConflict, KfmErrorKind.InvalidOperation,
                $"Reverting {bad.Sha[..12]} onto '{_config.Branch}' conflicts ({string.Join(", ", result.Conflicts.Select(c => c.Ours?.Path ?? c.Theirs?.Path ?? c.Ancestor?.Path).Distinct())}); nothing was changed or pushed. Pin a digest instead (-ToRef) or revert by hand.", sha);
        var file = result.Tree[_config.File]?.Target as Blob;
        string target = bad.Sha;
        if (file is not null)
        {
            var parsed = YamlText.Parse(_config.File, ReadAll(file));
            try
            {
                target = ImagePinLocator.For(_config).Locate(parsed).Digest ?? bad.Sha;
            }
            catch (KfmException)
            {
                target = bad.Sha; // a revert may not touch the image at all: the reverted commit is the ref then
            }
        }
        return (result.Tree, target, $"revert {bad.Sha[..12]}");
    }

    private static Commit? LookupCommit(Repository repo, string sha)
    {
        if (sha.Length < 7 || !sha.All(Uri.IsHexDigit))
            return null;
        try
        {
            return repo.Lookup<Commit>(sha);
        }
        catch (LibGit2SharpException)
        {
            return null; // ambiguous or malformed abbreviation: treat as not found
        }
    }

    private static byte[] ReadAll(Blob blob)
    {
        using var stream = blob.GetContentStream();
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }

    private static Branch? FindExisting(GitOpsRepository repository, string incidentId)
    {
        var candidates = repository.HasRemote
            ? repository.RemoteBranches(RollbackMessage.BranchPrefix)
            : repository.Repo.Branches.Where(b => !b.IsRemote && b.FriendlyName.StartsWith(RollbackMessage.BranchPrefix, StringComparison.Ordinal));
        return candidates.FirstOrDefault(b => RollbackMessage.Trailer(b.Tip.Message, "Incident") == incidentId);
    }

    /// <summary>The timestamped name, with -2, -3 … when another incident used the same minute.</summary>
    private string FreeBranchName(GitOpsRepository repository)
    {
        string name = RollbackMessage.BranchName(_clock.UtcNow);
        string candidate = name;
        for (int n = 2; repository.Repo.Branches[$"{GitOpsRepository.RemoteName}/{candidate}"] is not null || repository.Repo.Branches[candidate] is not null; n++)
            candidate = $"{name}-{n}";
        return candidate;
    }

    private Signature Signature(Repository repo)
    {
        var now = _clock.UtcNow;
        var defaults = new GitAuthor();
        bool configured = _config.Author.Name != defaults.Name || _config.Author.Email != defaults.Email;
        if (!configured && repo.Config.BuildSignature(now) is { } fromGit)
            return fromGit;
        return new Signature(_config.Author.Name, _config.Author.Email, now);
    }

    private PullRequestDraft Draft(GitOpsRollbackRequest request, string branch, string target, string current) =>
        new(branch, _config.Branch, RollbackMessage.Title(request.IncidentId, $"roll back to {target}"),
            RollbackMessage.PullRequestBody(request.IncidentId, target, current, request.Reason, request.BlastRadius));

    private static async Task<(string? Url, bool Failed, string? Detail)> OpenPullRequest(IPullRequestProvider provider, PullRequestDraft draft, CancellationToken cancellationToken)
    {
        try
        {
            var pr = await provider.FindOrCreateAsync(draft, cancellationToken).ConfigureAwait(false);
            if (pr is not null)
                return (pr.Url, false, pr.Created ? "Pull request opened." : "Reused the open pull request for this branch.");
            return (provider.CompareUrl(draft), false, $"Branch {draft.Head} pushed; open a pull request into {draft.Base}.");
        }
        catch (KfmException e)
        {
            // The branch is pushed already: report it so the cmdlet records it, and a rerun retries the PR.
            return (provider.CompareUrl(draft), true, e.Message);
        }
    }
}
