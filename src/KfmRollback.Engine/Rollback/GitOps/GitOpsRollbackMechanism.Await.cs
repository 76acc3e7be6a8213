using KfmRollback.Engine.Refs;
using KfmRollback.Engine.Adapters.PullRequests;
using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Adapters.GitOpsControllers;
using KfmRollback.Engine.Adapters.Kubernetes;
using KfmRollback.Engine.Core;
using LibGit2Sharp;

namespace KfmRollback.Engine.Rollback.GitOps;

/// <summary>
/// -Wait / Wait-KfmRollback for the preferred path (issue 11): wait for the pull request to merge
/// (or merge it with -MergeWith where gitops.pr.auto_merge allows), a controlled thaw that deploys
/// exactly the merge commit (<see cref="IDeployingController.DeployOnceAsync"/>), the controller reporting that revision,
/// then the Deployment's rollout. Each phase goes to the timeline and into the result.
/// </summary>
public sealed partial class GitOpsRollbackMechanism
{
    public async Task<RollbackResult> AwaitAsync(RollbackRequest request, RollbackResult applied, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        if (applied.Commit is null || applied.Branch is null)
            throw new KfmException(GitOpsErrorIds.NothingToAwait, KfmErrorKind.InvalidArgument,
                $"The GitOps result for {applied.Environment} names no rollback commit and branch, so there is nothing to follow. Pipe in the result of Invoke-KfmRollback -Method GitOps.");
        RefuseMergeUnlessAllowed(request);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(request.Timeout);
        var phases = new List<RollbackPhase>();
        RollbackResult result = applied with { Error = null };
        string phase = "merge";
        async Task<T> Phase<T>(string name, Func<Task<(T Value, string Detail)>> run)
        {
            phase = name;
            var started = _clock.UtcNow;
            var (value, detail) = await run().ConfigureAwait(false);
            phases.Add(new RollbackPhase(name, started, _clock.UtcNow, detail));
            reporter.Record("OPS", $"GitOps rollback of {request.Environment.Name}: {detail}");
            return value;
        }
        try
        {
            string merge = applied.Branch == _config.Branch
                ? applied.Commit // -DirectPush: the commit is on the deploy branch already
                : await Phase("merge", async () =>
                {
                    string sha = await AwaitMergeAsync(request, applied, reporter, deadline.Token).ConfigureAwait(false);
                    return (sha, $"pull request merged as {sha[..12]}");
                }).ConfigureAwait(false);
            result = result with { MergeCommit = merge, MergedAt = _clock.UtcNow };

            var client = _cluster?.Invoke(request.Environment);
            // The controlled thaw: each controller deploys exactly the merge and stays frozen (issue 11).
            var controllers = client is null ? Array.Empty<IDeployingController>() : GitOpsControllerKinds.Deploying(client, request.Environment);
            var deployOnce = new DeployOnce(merge, request.Actor, $"KfmRollback {request.IncidentId}: deploy the merged rollback",
                reported => IsAncestor(request, reported, merge), line => reporter.Record("OPS", line), reporter.Progress, _clock);
            string? reconciled = null;
            foreach (var controller in controllers)
            {
                reconciled = await Phase("reconcile", async () =>
                {
                    string revision = await controller.DeployOnceAsync(deployOnce, deadline.Token).ConfigureAwait(false);
                    return (revision, $"{controller.Object} reconciled {revision}");
                }).ConfigureAwait(false);
            }
            result = result with { ReconciledRevision = reconciled, ReconciledAt = reconciled is null ? null : _clock.UtcNow };
            if (client is null)
            {
                phases.Add(new RollbackPhase("reconcile", _clock.UtcNow, _clock.UtcNow, "no cluster to follow: the merge is deployed by the reconciler"));
                return Done(RollbackOutcome.Succeeded, $"Merged as {merge[..12]}; nothing here follows the cluster.", null);
            }
            var status = await Phase("rollout", async () =>
            {
                var cluster = request.Environment.Cluster;
                var s = await new RolloutWatcher(client, cluster.Namespace, cluster.Deployment, st => reporter.Progress?.Invoke(st.Message, 60 + st.PercentComplete * 3 / 10))
                    .WaitAsync(null, request.Timeout, deadline.Token).ConfigureAwait(false);
                return (s, $"deployment {cluster.Namespace}/{cluster.Deployment}: {s.Message}");
            }).ConfigureAwait(false);
            if (status.Phase != RolloutPhase.Complete)
                return Done(RollbackOutcome.Failed, status.Message, new KfmException("RolloutFailed", KfmErrorKind.InvalidOperation,
                    $"The merged rollback reached the cluster but its rollout failed: {status.Message}. Fail closed if the API is unsafe (Enable-KfmFailClosed).", request.Environment.Cluster.Deployment));
            foreach (var controller in controllers)
                await Phase("healthy", async () =>
                {
                    await controller.AwaitHealthyAsync(merge, deadline.Token).ConfigureAwait(false);
                    return (true, $"{controller.Object} reports {merge[..12]} healthy");
                }).ConfigureAwait(false);
            return Done(RollbackOutcome.Succeeded, $"Merged as {merge[..12]}, reconciled and rolled out; the incident stays frozen.", null);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Done(RollbackOutcome.Failed, $"timed out waiting for the {phase}", Timeout(request, phase));
        }
        catch (KfmException e) when (e.ErrorId == "RolloutWaitTimeout")
        {
            return Done(RollbackOutcome.Failed, $"timed out waiting for the {phase}", Timeout(request, phase));
        }
        catch (KfmException e)
        {
            return Done(RollbackOutcome.Failed, e.Message, e);
        }

        RollbackResult Done(RollbackOutcome outcome, string detail, KfmException? error)
        {
            var final = result with { Outcome = outcome, Detail = detail, CompletedAt = _clock.UtcNow, Phases = phases, Error = error };
            reporter.Record("OPS", $"GitOps rollback of {request.Environment.Name}: {outcome}{(error is null ? "" : ": " + error.ErrorId)}");
            return final;
        }
    }

    private static KfmException Timeout(RollbackRequest request, string phase) =>
        new(GitOpsErrorIds.WaitTimeout, KfmErrorKind.OperationTimeout,
            $"Timed out after {request.Timeout} waiting for the {phase} of the GitOps rollback of {request.Environment.Name}. The incident stays frozen (nothing was thawed for longer than one reconcile). " +
            "Pipe the result to Wait-KfmRollback to keep waiting, or roll back through the cluster (-Method Cluster) if the API is unsafe.", phase);

    private void RefuseMergeUnlessAllowed(RollbackRequest request)
    {
        if (request.MergeWith is not null && !_config.Pr.AutoMerge)
            throw new KfmException(GitOpsErrorIds.AutoMergeNotAllowed, KfmErrorKind.PermissionDenied,
                $"Environment '{request.Environment.Name}' does not let the module merge its rollback pull requests (gitops.pr.auto_merge is false). Drop -MergeWith and have a reviewer merge the PR; -Wait follows it.");
    }

    private IPullRequestProvider Provider(GitOpsRepository repository)
    {
        string? url = repository.Repo.Network.Remotes[GitOpsRepository.RemoteName]?.Url;
        return _providers(_config.Pr, url is not null && Uri.TryCreate(url, UriKind.Absolute, out var u) ? u : null);
    }

    /// <summary>Polls the provider (or Git, for provider none) until the PR merged; merges it with -MergeWith once approved.</summary>
    private async Task<string> AwaitMergeAsync(RollbackRequest request, RollbackResult applied, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        bool asked = false;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            PullRequestStatus status;
            using (var repository = Open(request, cancellationToken))
            {
                var provider = Provider(repository);
                status = await provider.GetStatusAsync(applied.Branch!, _config.Branch, applied.Commit!, cancellationToken).ConfigureAwait(false) ?? GitStatus(repository, applied);
                // The PR must hold exactly the commit the module pushed (and planned): a merge of anything
                // else would deploy what nobody planned, whoever merges it.
                if (status.HeadMovedFrom(applied.Commit!))
                    throw PullRequestProviders.HeadMoved(Configuration.Binding.ConfigSchema.YamlName(_config.Pr.Provider), applied.Branch!, applied.Commit!, status.HeadSha!);
                if (status.State == PullRequestState.Open && request.MergeWith is { } strategy && status.Approvals >= _config.Pr.RequiredApprovals)
                {
                    if (!asked)
                        reporter.Record("OPS", $"GitOps rollback of {request.Environment.Name}: merging {applied.Branch} at {applied.Commit![..12]} ({strategy}, {status.Approvals} approval(s) on that commit)");
                    asked = true;
                    status = await provider.MergeAsync(applied.Branch!, _config.Branch, applied.Commit!, strategy, cancellationToken).ConfigureAwait(false) ?? GitMerge(repository, applied);
                }
            }
            switch (status.State)
            {
                case PullRequestState.Merged when status.MergeCommit is { } sha:
                    return sha;
                case PullRequestState.Closed or PullRequestState.NotFound:
                    throw new KfmException(GitOpsErrorIds.PullRequestClosed, KfmErrorKind.InvalidOperation,
                        $"The rollback pull request from {applied.Branch} was closed without merging{(status.Url is null ? "" : $" ({status.Url})")}, so nothing was deployed and the incident stays frozen. Open it again or roll back another way (-Method Cluster).", applied.Branch);
            }
            string waiting = request.MergeWith is not null && status.Approvals < _config.Pr.RequiredApprovals
                ? $"waiting for approvals of commit {applied.Commit![..12]} on {applied.PullRequestUrl ?? applied.Branch} ({status.Approvals} of {_config.Pr.RequiredApprovals})"
                : $"waiting for {applied.PullRequestUrl ?? applied.Branch} to merge";
            reporter.Progress?.Invoke(waiting, 10);
            reporter.Say(waiting);
            await Task.Delay(_config.Pr.PollInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Provider none: the rollback commit reachable from the deploy branch is merged (the merge point is
    /// the oldest first-parent commit that reaches it); a commit carrying the same Incident and
    /// Last-Good-Ref trailers since the branch point is a squash; a deleted branch otherwise is closed.
    /// </summary>
    private PullRequestStatus GitStatus(GitOpsRepository repository, RollbackResult applied)
    {
        var repo = repository.Repo;
        var tip = repository.DeployTip();
        var rollback = repo.Lookup<Commit>(applied.Commit);
        if (rollback is null)
            return new PullRequestStatus(PullRequestState.NotFound, null, 0, null);
        if (Reaches(repo, tip, rollback))
        {
            Commit merge = tip;
            foreach (var c in FirstParents(tip).Skip(1))
            {
                if (!Reaches(repo, c, rollback)) break;
                merge = c;
            }
            return new PullRequestStatus(PullRequestState.Merged, merge.Sha, 0, null);
        }
        var basePoint = rollback.Parents.FirstOrDefault()?.Sha;
        string? incident = RollbackMessage.Trailer(rollback.Message, "Incident"), lastGood = RollbackMessage.Trailer(rollback.Message, "Last-Good-Ref");
        foreach (var c in FirstParents(tip).TakeWhile(c => c.Sha != basePoint).Take(500))
            if (RollbackMessage.Trailer(c.Message, "Incident") == incident && RollbackMessage.Trailer(c.Message, "Last-Good-Ref") == lastGood)
                return new PullRequestStatus(PullRequestState.Merged, c.Sha, 0, null);
        var branch = repository.HasRemote ? repo.Branches[$"{GitOpsRepository.RemoteName}/{applied.Branch}"] : repo.Branches[applied.Branch];
        return new PullRequestStatus(branch is not null ? PullRequestState.Open : PullRequestState.Closed, null, 0, null, branch?.Tip?.Sha);
    }

    /// <summary>
    /// Provider none with -MergeWith: no PR API counts approvals, so only required_approvals 0 allows it,
    /// and only as a fast-forward, non-forced push (the server's own protection still refuses what it must).
    /// </summary>
    private PullRequestStatus GitMerge(GitOpsRepository repository, RollbackResult applied)
    {
        if (_config.Pr.RequiredApprovals > 0)
            throw PullRequestProviders.Refused("Git (provider none)", $"no pull request API counts approvals, and gitops.pr.required_approvals is {_config.Pr.RequiredApprovals}; set it to 0 for this environment or merge by hand");
        var rollback = repository.Repo.Lookup<Commit>(applied.Commit)!;
        var tip = repository.DeployTip();
        if (rollback.Parents.FirstOrDefault()?.Sha != tip.Sha)
            throw PullRequestProviders.Refused("Git (provider none)", $"'{_config.Branch}' moved to {tip.Sha[..12]} since the rollback branch was cut, so it is not a fast-forward; merge it by hand");
        repository.Push(rollback, _config.Branch);
        return new PullRequestStatus(PullRequestState.Merged, rollback.Sha, 0, null);
    }

    private bool IsAncestor(RollbackRequest request, string older, string newer)
    {
        using var repository = Open(request, CancellationToken.None);
        var a = LookupCommit(repository.Repo, older);
        var b = LookupCommit(repository.Repo, newer);
        return a is not null && b is not null && a.Sha != b.Sha && Reaches(repository.Repo, b, a);
    }

    private static bool Reaches(Repository repo, Commit from, Commit target) =>
        from.Sha == target.Sha || repo.ObjectDatabase.FindMergeBase(from, target)?.Sha == target.Sha;

    private static IEnumerable<Commit> FirstParents(Commit tip)
    {
        for (Commit? c = tip; c is not null; c = c.Parents.FirstOrDefault())
            yield return c;
    }
}
