using KfmRollback.Engine.Refs;
using KfmRollback.Engine.Adapters.PullRequests;
using KfmRollback.Engine.Adapters.GitOpsFiles;
using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Adapters.Kubernetes;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using LibGit2Sharp;

namespace KfmRollback.Engine.Rollback.GitOps;

/// <summary>What the GitOps mechanism will push: a commit of <see cref="TreeSha"/> on <see cref="TipSha"/>, or this incident's branch reused.</summary>
public sealed record GitOpsMechanismPlan : MechanismPlan
{
    public required string TipSha { get; init; }
    public string? TreeSha { get; init; }
    public required string Branch { get; init; }
    /// <summary>The commit of an existing rollback branch for this incident, reused instead of a new commit.</summary>
    public string? ExistingCommit { get; init; }
    public string? CommitSubject { get; init; }

    public override RollbackResult Decorate(RollbackResult result) => result with { Branch = Branch, Commit = result.Commit ?? ExistingCommit };
}

/// <summary>
/// Runbook step 2, the preferred rollback: a rollback branch from the deploy branch's tip, a revert
/// or a digest pin, pushed (never forced) with a pull request. Commits are built in the object
/// database from the tip's tree, so the work tree, HEAD and local branches are never touched: a
/// failure leaves the clone as it was. Plan builds the tree and the diff; Apply commits exactly
/// that tree on exactly that tip (refusing if the deploy branch moved) and pushes.
/// Idempotency: a remote branch starting with ops/rollback-api- whose tip carries the same
/// Incident: trailer is this incident's rollback; a rerun returns it (and its PR).
/// </summary>
public sealed partial class GitOpsRollbackMechanism : IRollbackMechanism
{
    private readonly GitOpsConfig _config;
    private readonly IClock _clock;
    private readonly string? _cacheRoot;
    private readonly Func<PullRequestConfig, Uri?, IPullRequestProvider> _providers;
    private readonly Func<EnvironmentConfig, k8s.IKubernetes>? _cluster;

    /// <param name="cluster">The environment's cluster, for -Wait's controlled thaw and rollout; null: -Wait cannot follow the PR past its merge.</param>
    public GitOpsRollbackMechanism(GitOpsConfig config, IClock? clock = null, string? cacheRoot = null,
        Func<PullRequestConfig, Uri?, IPullRequestProvider>? providers = null,
        Func<EnvironmentConfig, k8s.IKubernetes>? cluster = null)
    {
        _config = config;
        _clock = clock ?? SystemClock.Instance;
        _cacheRoot = cacheRoot;
        _providers = providers ?? ((pr, url) => PullRequestProviders.For(pr, url));
        _cluster = cluster;
    }

    public RollbackMethod Method => RollbackMethod.GitOps;

    public IReadOnlyList<AccessRequirement> Requirements(RollbackRequest request) => Array.Empty<AccessRequirement>();

    public Task<MechanismPlan> PlanAsync(RollbackRequest request, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        if (request.DirectPush && !_config.AllowDirectPush)
            throw new KfmException(GitOpsErrorIds.DirectPushNotAllowed, KfmErrorKind.PermissionDenied,
                "Direct pushes to the deploy branch are off (gitops.allow_direct_push is false). Drop -DirectPush to go through a pull request.");
        RefuseMergeUnlessAllowed(request);
        using var repository = Open(request, cancellationToken);
        var report = GitOpsRefSource.Read(request.Environment.Name, _config, repository, request.Trust, historyLimit: 2);
        var tip = repository.DeployTip();
        // A short digest copied from a table names the one digest of the pin's history it starts (a full
        // digest is pinned as given: re-aligning Git may pin a digest Git never had).
        string? wanted = request.Target.Digest is { } given && !ImageRefs.IsDigest(given)
            ? ImageRefs.ResolvePrefix(given, GitOpsRefSource.History(_config, repository.Repo, tip, int.MaxValue).Select(c => c.Digest).Append(report.Ref.LastKnownGoodRef),
                $"the history of {_config.File} on '{_config.Branch}'")
            : request.Target.Digest;
        string? current = report.Ref.CurrentRef ?? report.Ref.CurrentImage;
        GitOpsMechanismPlan Plan(string? target, string branch, IReadOnlyList<PlannedChange> changes, string summary) => new()
        {
            Method = RollbackMethod.GitOps,
            Environment = request.Environment.Name,
            CurrentRef = current,
            TargetRef = target,
            TargetImage = report.Ref.CurrentImage is { Length: > 0 } image && target is not null ? $"{ImageRefs.Repository(image)}@{target}" : null,
            PlannedAt = _clock.UtcNow,
            TipSha = tip.Sha,
            Branch = branch,
            Changes = changes,
            Summary = summary,
            Quarantine = report.Ref.Quarantined,
        };

        if (!request.DirectPush && FindExisting(repository, request.IncidentId!) is { } existing)
        {
            string? target = RollbackMessage.Trailer(existing.Tip.Message, "Last-Good-Ref");
            if (wanted is not null && target is not null && wanted != target)
                throw new KfmException("GitOpsRollbackBranchMismatch", KfmErrorKind.Ambiguous,
                    $"Incident {request.IncidentId} already has rollback branch {BranchOf(existing)} targeting {target}, not {wanted}. " +
                    "Close that pull request and delete the branch to target another ref, or use another -IncidentId.", wanted);
            string branch = BranchOf(existing);
            EnsureOnlyThePlannedChange(repository, existing, branch, tip, target);
            return Task.FromResult<MechanismPlan>(Plan(target, branch, new[] { PullRequestChange(branch) },
                $"a rollback branch for this incident already exists ({branch}); a run reuses it and opens or finds its pull request") with { ExistingCommit = existing.Tip.Sha });
        }

        var (tree, targetRef, what) = request.Target.RevertCommit is { } sha ? Revert(repository.Repo, tip, sha) : Pin(repository.Repo, tip, wanted ?? report.Ref.LastKnownGoodRef);
        if (tree.Id == tip.Tree.Id)
            return Task.FromResult<MechanismPlan>(Plan(targetRef, _config.Branch, Array.Empty<PlannedChange>(), $"the deploy branch already has {targetRef}; nothing to change"));
        string diff = repository.Repo.Diff.Compare<Patch>(tip.Tree, tree).Content;
        string branchName = request.DirectPush ? _config.Branch : FreeBranchName(repository);
        string surface = request.Target.RevertCommit is null ? "image" : string.Join("+", SurfacesOf(request));
        var changes = new List<PlannedChange>
        {
            new(surface, $"git {_config.File}", "diff", Configuration.Redactors.For(request.Environment).Text(diff)),
            new(surface, $"git branch {branchName}", "push", $"commit '{what}' on {tip.Sha[..12]} ({_config.Branch}), pushed without force"),
        };
        if (!request.DirectPush)
            changes.Add(PullRequestChange(branchName));
        return Task.FromResult<MechanismPlan>(Plan(targetRef, branchName, changes,
            request.DirectPush ? $"would push '{what}' to {_config.Branch}" : $"would push '{what}' on {branchName} and open a pull request into {_config.Branch}")
            with { TreeSha = tree.Sha, CommitSubject = what });
    }

    /// <summary>A GitOps rollback writes to Git only; the controller applies the merged commit, so no Kubernetes write is planned to dry-run.</summary>
    public Task<IReadOnlyList<Preflight.PreflightCheck>> DryRunAsync(RollbackRequest request, MechanismPlan plan, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<Preflight.PreflightCheck>>(new[]
        {
            new Preflight.PreflightCheck
            {
                Environment = request.Environment.Name, Check = Preflight.ServerDryRun.CheckName, Target = $"git {_config.File}",
                Verdict = Preflight.PreflightVerdict.Skipped, Saw = "the GitOps method writes to Git only; the controller applies the merged commit",
            },
        });

    /// <summary>No lock: the push is never forced, so a second rollback's push is refused, not lost.</summary>
    public Task<IRollbackLock> LockAsync(RollbackRequest request, RollbackReporter reporter, CancellationToken cancellationToken) =>
        Task.FromResult<IRollbackLock>(NoLock.Instance);

    /// <summary>What the deploy branch pins now.</summary>
    public Task<string?> CurrentRefAsync(RollbackRequest request, CancellationToken cancellationToken)
    {
        using var repository = Open(request, cancellationToken);
        var report = GitOpsRefSource.Read(request.Environment.Name, _config, repository, null, historyLimit: 2);
        return Task.FromResult(report.Ref.CurrentRef ?? report.Ref.CurrentImage);
    }

    public async Task<RollbackResult> ApplyAsync(RollbackRequest request, MechanismPlan plan, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        var approved = (GitOpsMechanismPlan)plan;
        using var repository = Open(request, cancellationToken);
        var tip = repository.DeployTip();
        var provider = Provider(repository);
        var draft = Draft(request, approved.Branch, approved.TargetRef ?? "", approved.CurrentRef ?? "");
        RollbackResult Result(RollbackOutcome outcome, string detail, IReadOnlyList<PlannedChange> sent, string? commit, string? pr = null) =>
            approved.ToResult(request, outcome, _clock.UtcNow, detail, sent) with { Commit = commit, PullRequestUrl = pr, RolloutTarget = commit };

        if (approved.ExistingCommit is { } existing)
        {
            // Under the plan's eyes the branch held exactly the planned change; it must still be that commit.
            string? now = FindExisting(repository, request.IncidentId!)?.Tip.Sha;
            if (now != existing)
            {
                var moved = new KfmException("RollbackPlanChanged", KfmErrorKind.ResourceBusy,
                    $"Rollback branch {approved.Branch} moved from {existing[..12]} to {(now is null ? "nothing (deleted)" : now[..12])} after the rollback was planned. Nothing was opened or merged. Look at the new plan with -WhatIf, then run again.", approved.Branch);
                return Record(request, reporter, Result(RollbackOutcome.Failed, moved.Message, Array.Empty<PlannedChange>(), null), moved);
            }
            var found = await OpenPullRequest(provider, draft, cancellationToken).ConfigureAwait(false);
            return Record(request, reporter, Result(found.Failed ? RollbackOutcome.Failed : RollbackOutcome.PendingMerge,
                found.Detail ?? "Reused the rollback branch already pushed for this incident.", approved.Changes, existing, found.Url), found.Error);
        }
        if (tip.Sha != approved.TipSha)
        {
            var error = new KfmException("RollbackPlanChanged", KfmErrorKind.ResourceBusy,
                $"'{_config.Branch}' moved from {approved.TipSha[..12]} to {tip.Sha[..12]} after the rollback was planned, so the approved diff may no longer be right. Nothing was pushed. Look at the new plan with -WhatIf, then run again.", _config.Branch);
            return Record(request, reporter, Result(RollbackOutcome.Failed, error.Message, Array.Empty<PlannedChange>(), null), error);
        }

        var tree = repository.Repo.Lookup<Tree>(approved.TreeSha);
        var signature = Signature(repository.Repo);
        string message = RollbackMessage.Commit(request.IncidentId!, approved.CommitSubject!, approved.TargetRef ?? "", request.Reason ?? "incident response", request.BlastRadius);
        var commit = repository.Repo.ObjectDatabase.CreateCommit(signature, signature, message, tree, new[] { tip }, prettifyMessage: false);
        repository.Push(commit, approved.Branch);
        if (request.DirectPush)
            return Record(request, reporter, Result(RollbackOutcome.Succeeded, "Pushed to the deploy branch; the reconciler deploys it.", approved.Changes, commit.Sha), null);
        var pr = await OpenPullRequest(provider, draft, cancellationToken).ConfigureAwait(false);
        // The branch is pushed even when the PR failed: the result says so, and a rerun retries the PR.
        var sent = pr.Failed ? approved.Changes.Where(c => c.Action != "pull-request").ToList() : approved.Changes;
        return Record(request, reporter, Result(pr.Failed ? RollbackOutcome.Failed : RollbackOutcome.PendingMerge, pr.Detail!, sent, commit.Sha, pr.Url), pr.Error);
    }

    private RollbackResult Record(RollbackRequest request, RollbackReporter reporter, RollbackResult result, KfmException? error)
    {
        reporter.Record("OPS", result.Outcome switch
        {
            RollbackOutcome.PendingMerge => $"GitOps rollback of {request.Environment.Name}: branch {result.Branch} pushed, pull request {result.PullRequestUrl ?? "(none)"}",
            RollbackOutcome.Succeeded => $"GitOps rollback of {request.Environment.Name}: pushed {result.Commit} to {_config.Branch}",
            _ => $"GitOps rollback of {request.Environment.Name}: {result.Outcome}: {error?.ErrorId ?? result.Detail}",
        });
        return error is null ? result : result with { Error = error };
    }

    private GitOpsRepository Open(RollbackRequest request, CancellationToken cancellationToken)
    {
        var repository = GitOpsRepository.Open(_config, request.GitCredential, _cacheRoot, cancellationToken);
        if (_config.Path is not null && repository.Repo.RetrieveStatus(new StatusOptions { IncludeUntracked = false }).IsDirty)
        {
            repository.Dispose();
            throw new KfmException(GitOpsErrorIds.WorkingTreeDirty, KfmErrorKind.InvalidOperation,
                $"The GitOps clone at {_config.Path} has uncommitted changes. Commit or stash them first; a rollback must not carry unrelated edits.", _config.Path);
        }
        return repository;
    }

    /// <summary>
    /// A reused ops/rollback-api-* branch is trusted only when it holds exactly the change this module
    /// would make: one commit on a commit of the deploy branch, whose tree is that commit's tree with the
    /// pin (or revert) its message names applied, and nothing else. Anyone can push a branch carrying
    /// the incident's trailer; merging it would deploy what nobody planned.
    /// </summary>
    private void EnsureOnlyThePlannedChange(GitOpsRepository repository, Branch existing, string branch, Commit deployTip, string? lastGoodRef)
    {
        Commit commit = existing.Tip;
        var parents = commit.Parents.ToList();
        string? why = null;
        if (parents.Count != 1)
            why = $"its tip {commit.Sha[..12]} has {parents.Count} parents, not one";
        else if (!Reaches(repository.Repo, deployTip, parents[0]))
            why = $"its tip's parent {parents[0].Sha[..12]} is not on '{_config.Branch}'";
        else
        {
            Tree? expected = null;
            string subject = commit.MessageShort;
            int colon = subject.IndexOf("): ", StringComparison.Ordinal);
            string what = colon < 0 ? "" : subject[(colon + 3)..];
            try
            {
                if (what.StartsWith("revert ", StringComparison.Ordinal) && LookupCommit(repository.Repo, what["revert ".Length..].Trim()) is { } reverted)
                    expected = Revert(repository.Repo, parents[0], reverted.Sha).Tree;
                else if (what.StartsWith("pin image to ", StringComparison.Ordinal) || what == "already pinned")
                    expected = Pin(repository.Repo, parents[0], lastGoodRef).Tree;
            }
            catch (KfmException e)
            {
                why = $"its change cannot be made again on its parent ({e.ErrorId})";
            }
            if (why is null && expected is null)
                why = $"its commit '{subject}' is neither a pin nor a revert this module makes";
            else if (why is null && expected!.Sha != commit.Tree.Sha)
                why = $"its tree differs from the planned {what} on {parents[0].Sha[..12]}: " +
                      string.Join(", ", repository.Repo.Diff.Compare<TreeChanges>(expected, commit.Tree).Select(c => c.Path).Take(5));
        }
        if (why is not null)
            throw new KfmException(GitOpsErrorIds.RollbackBranchTampered, KfmErrorKind.SecurityError,
                $"Rollback branch {branch} carries incident {RollbackMessage.Trailer(commit.Message, "Incident")}'s trailer, but {why}. " +
                "It does not hold exactly the planned change, so the run stops and nothing is opened or merged. Find out who pushed it; then close its pull request, delete the branch and run again.", branch);
    }

    private static IEnumerable<string> SurfacesOf(RollbackRequest request) => Surfaces.SurfaceNames.Of(request.Surfaces).Split('+');

    private PlannedChange PullRequestChange(string branch) =>
        new("image", $"pull request {branch} -> {_config.Branch}", "pull-request", $"open (or find the open) pull request from {branch} into {_config.Branch} via {_config.Pr.Provider}");

    private (Tree Tree, string Target, string What) Pin(Repository repo, Commit tip, string? target)
    {
        if (target is null)
            throw new KfmException(GitOpsErrorIds.LastKnownGoodUnknown, KfmErrorKind.Ambiguous,
                $"No last-known-good digest: {_config.File} on '{_config.Branch}' has no earlier digest and no verified receipt names one. Pass -ToRef sha256:… or -Revert <sha>.");
        if (!ImageRefs.IsDigest(target))
            throw new KfmException(GitOpsErrorIds.DigestRequired, KfmErrorKind.Ambiguous,
                $"The last-known-good '{target}' is not a digest. Pass -ToRef sha256:….", target);
        var file = YamlText.Parse(_config.File, GitOpsRepository.ReadFile(tip, _config.File) ?? throw new KfmException(GitOpsErrorIds.FileNotFound, KfmErrorKind.ObjectNotFound,
            $"The module cannot read {_config.File} on '{_config.Branch}' at {tip.Sha[..12]}: it does not exist there, so there is no pin to write. Check gitops.file, or roll back with -Revert <sha> (a git revert of the bad deploy commit).", _config.File));
        var pin = ImagePinLocator.For(_config).Locate(file);
        if (pin.Digest == target)
            return (tip.Tree, target, "already pinned");
        string text = ImagePinEditor.SetDigest(file, pin, target, PinHistory.ValueWhenPinned(repo, tip, _config, target));
        var blob = repo.ObjectDatabase.CreateBlob(new MemoryStream(file.Encode(text)));
        var definition = TreeDefinition.From(tip.Tree).Add(_config.File, blob, Mode.NonExecutableFile);
        return (repo.ObjectDatabase.CreateTree(definition), target, $"pin image to {ImageRefs.Short(target)}");
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

    private static string BranchOf(Branch remoteOrLocal) =>
        remoteOrLocal.IsRemote ? remoteOrLocal.FriendlyName[(GitOpsRepository.RemoteName.Length + 1)..] : remoteOrLocal.FriendlyName;

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

    private PullRequestDraft Draft(RollbackRequest request, string branch, string target, string current) =>
        new(branch, _config.Branch, RollbackMessage.Title(request.IncidentId!, $"roll back to {target}"),
            RollbackMessage.PullRequestBody(request.IncidentId!, target, current, request.Reason ?? "incident response", request.BlastRadius));

    private static async Task<(string? Url, bool Failed, string? Detail, KfmException? Error)> OpenPullRequest(IPullRequestProvider provider, PullRequestDraft draft, CancellationToken cancellationToken)
    {
        try
        {
            var pr = await provider.FindOrCreateAsync(draft, cancellationToken).ConfigureAwait(false);
            if (pr is not null)
                return (pr.Url, false, pr.Created ? "Pull request opened." : "Reused the open pull request for this branch.", null);
            return (provider.CompareUrl(draft), false, $"Branch {draft.Head} pushed; open a pull request into {draft.Base}.", null);
        }
        catch (KfmException e)
        {
            // The branch is pushed already: report it so it is recorded, and a rerun retries the PR.
            return (provider.CompareUrl(draft), true, e.Message, e);
        }
    }
}

/// <summary>A lock that holds nothing, for mechanisms whose writes are already exclusive.</summary>
public sealed class NoLock : IRollbackLock
{
    public static NoLock Instance { get; } = new();
    public string Description => "no lock (Git refuses a second non-forced push)";
    public string? PreviousHolder => null;
    public LeaseTakeover Takeover => LeaseTakeover.Free;
    public string? LostTo => null;
    public Task EnsureHeldAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
