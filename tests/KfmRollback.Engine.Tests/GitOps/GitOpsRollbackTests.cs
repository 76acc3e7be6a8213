using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Tests.Receipts;
using LibGit2Sharp;

namespace KfmRollback.Engine.Tests.GitOps;

public class GitOpsRollbackTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 11, 28, 9, 5, 0, TimeSpan.Zero);
    private readonly GitTestRepo _repo = new();
    private readonly FixedClock _clock = new(Now);

    private GitOpsRollbackRequest Request(string incident = "INC-42") => new() { Environment = "prod", IncidentId = incident, Reason = "5xx spike after 1.2", BlastRadius = "api only" };

    [Fact]
    public void PinsLastKnownGoodOnATimestampedBranchAndPushes()
    {
        var config = _repo.Config();
        string headBefore = Git.Run(config.Path!, "rev-parse", "HEAD");

        var result = new GitOpsRollbackRun(config, _clock).Run(Request());

        Assert.Equal(RollbackOutcome.PendingMerge, result.Outcome);
        Assert.Equal(RollbackMethod.GitOps, result.Method);
        Assert.Equal(GitTestRepo.D3, result.CurrentRef);
        Assert.Equal(GitTestRepo.D2, result.RollbackTargetRef);
        Assert.Equal("ops/rollback-api-20261128-0905", result.Branch);
        Assert.Equal(result.Commit, _repo.RemoteBranchTip(result.Branch!));
        string content = Git.Run(_repo.Root, "--git-dir", _repo.Bare, "show", $"{result.Branch}:{GitTestRepo.File}");
        Assert.Equal(GitTestRepo.Kustomization(GitTestRepo.D2).TrimEnd(), content);
        string message = Git.Run(_repo.Root, "--git-dir", _repo.Bare, "log", "-1", "--format=%B", result.Branch!);
        Assert.Contains("Incident: INC-42", message);
        Assert.Contains($"Last-Good-Ref: {GitTestRepo.D2}", message);
        Assert.Contains("Reason: 5xx spike after 1.2", message);
        Assert.Contains("Blast-Radius: api only", message);
        Assert.Contains($"-    digest: {GitTestRepo.D3} # pinned", result.Change);
        Assert.Contains($"+    digest: {GitTestRepo.D2} # pinned", result.Change);
        // The local clone is untouched: same HEAD, same checked-out branch, clean tree.
        Assert.Equal(headBefore, Git.Run(config.Path!, "rev-parse", "HEAD"));
        Assert.Equal("main", Git.Run(config.Path!, "rev-parse", "--abbrev-ref", "HEAD"));
        Assert.Equal("", Git.Run(config.Path!, "status", "--porcelain"));
    }

    [Fact]
    public void RerunForTheSameIncidentReusesTheBranch()
    {
        var config = _repo.Config();
        var first = new GitOpsRollbackRun(config, _clock).Run(Request());
        _clock.UtcNow = Now.AddMinutes(7);
        var second = new GitOpsRollbackRun(config, _clock).Run(Request());
        Assert.Equal(first.Branch, second.Branch);
        Assert.Equal(first.Commit, second.Commit);
        Assert.Single(_repo.RemoteBranches(), b => b.StartsWith("ops/", StringComparison.Ordinal));
        var other = new GitOpsRollbackRun(config, _clock).Run(Request("INC-43"));
        Assert.Equal("ops/rollback-api-20261128-0912", other.Branch);
    }

    [Fact]
    public void DryRunReturnsTheDiffAndPushesNothing()
    {
        var result = new GitOpsRollbackRun(_repo.Config(), _clock).Run(Request() with { DryRun = true });
        Assert.Equal(RollbackOutcome.Planned, result.Outcome);
        Assert.StartsWith("diff --git a/apps/api/kustomization.yaml b/apps/api/kustomization.yaml", result.Change);
        Assert.Equal(new[] { "main" }, _repo.RemoteBranches());
    }

    [Fact]
    public void ExplicitToRefEqualToCurrentIsNoOp()
    {
        var result = new GitOpsRollbackRun(_repo.Config(), _clock).Run(Request() with { ToRef = GitTestRepo.D3 });
        Assert.Equal(RollbackOutcome.NoOp, result.Outcome);
        Assert.Equal(new[] { "main" }, _repo.RemoteBranches());
    }

    [Fact]
    public void TagToRefIsRefusedWithTheParameterThatResolvesIt()
    {
        var e = Assert.Throws<KfmException>(() => new GitOpsRollbackRun(_repo.Config(), _clock).Run(Request() with { ToRef = "1.1.0" }));
        Assert.Equal("RollbackTargetNotDigest", e.ErrorId); // one digest rule for every mechanism
        Assert.Equal(KfmErrorKind.Ambiguous, e.Kind);
        Assert.Contains("-ToRef", e.Message);
    }

    [Fact]
    public void RevertOfTheBadDeployCommit()
    {
        string bad = Git.Run(_repo.Seed, "log", "--format=%H", "--grep", "^deploy api 1.2");
        var result = new GitOpsRollbackRun(_repo.Config(), _clock).Run(Request() with { RevertCommit = bad });
        Assert.Equal(RollbackOutcome.PendingMerge, result.Outcome);
        Assert.Equal(GitTestRepo.D2, result.RollbackTargetRef);
        Assert.Contains($"+    digest: {GitTestRepo.D2} # pinned", result.Change);
    }

    [Fact]
    public void RevertConflictAbortsCleanly()
    {
        string bad = Git.Run(_repo.Seed, "log", "--format=%H", "--grep", "^deploy api 1.1");
        var config = _repo.Config();
        string head = Git.Run(config.Path!, "rev-parse", "HEAD");
        var e = Assert.Throws<KfmException>(() => new GitOpsRollbackRun(config, _clock).Run(Request() with { RevertCommit = bad }));
        Assert.Equal(GitOpsErrorIds.RevertConflict, e.ErrorId);
        Assert.Contains(GitTestRepo.File, e.Message);
        Assert.Equal(new[] { "main" }, _repo.RemoteBranches());
        Assert.Equal(head, Git.Run(config.Path!, "rev-parse", "HEAD"));
        Assert.Equal("", Git.Run(config.Path!, "status", "--porcelain"));
        Assert.Equal("", Git.Run(config.Path!, "branch", "--list", "ops/*"));
    }

    [Fact]
    public void DirtyWorkingTreeIsRefused()
    {
        var config = _repo.Config();
        File.AppendAllText(Path.Combine(config.Path!, GitTestRepo.File), "# local edit\n");
        var e = Assert.Throws<KfmException>(() => new GitOpsRollbackRun(config, _clock).Run(Request()));
        Assert.Equal(GitOpsErrorIds.WorkingTreeDirty, e.ErrorId);
    }

    [Fact]
    public void DirectPushNeedsPermission()
    {
        var e = Assert.Throws<KfmException>(() => new GitOpsRollbackRun(_repo.Config(), _clock).Run(Request() with { DirectPush = true }));
        Assert.Equal(GitOpsErrorIds.DirectPushNotAllowed, e.ErrorId);
        var result = new GitOpsRollbackRun(_repo.Config(allowDirectPush: true), _clock).Run(Request() with { DirectPush = true });
        Assert.Equal(RollbackOutcome.Succeeded, result.Outcome);
        Assert.Equal(result.Commit, _repo.RemoteBranchTip("main"));
    }

    [Fact]
    public void NonFastForwardPushIsRejectedNotForced()
    {
        var config = _repo.Config();
        using var repository = GitOpsRepository.Open(config);
        var stale = repository.DeployTip().Parents.First();
        string tipBefore = _repo.RemoteBranchTip("main");
        var e = Assert.Throws<KfmException>(() => repository.Push(stale, "main"));
        Assert.Equal(GitOpsErrorIds.PushRejected, e.ErrorId);
        Assert.Equal(tipBefore, _repo.RemoteBranchTip("main"));
    }

    [Fact]
    public void LastKnownGoodUnknownFailsClosed()
    {
        using var single = new GitTestRepo(seed: false);
        single.Write(GitTestRepo.File, GitTestRepo.Kustomization(GitTestRepo.D1));
        single.Commit("first deploy");
        single.Push();
        var e = Assert.Throws<KfmException>(() => new GitOpsRollbackRun(single.Config(), _clock).Run(Request()));
        Assert.Equal(GitOpsErrorIds.LastKnownGoodUnknown, e.ErrorId);
        Assert.Equal(KfmErrorKind.Ambiguous, e.Kind);
        Assert.Contains("-ToRef", e.Message);
    }

    [Fact]
    public void TwoMatchingImagesFailClosed()
    {
        _repo.Write(GitTestRepo.File, GitTestRepo.Kustomization(GitTestRepo.D3) + "  - name: kfm-api\n    digest: " + GitTestRepo.D1 + "\n");
        _repo.Commit("duplicate entry");
        _repo.Push();
        var e = Assert.Throws<KfmException>(() => new GitOpsRollbackRun(_repo.Config(), _clock).Run(Request()));
        Assert.Equal(GitOpsErrorIds.ImageAmbiguous, e.ErrorId);
        Assert.Equal(KfmErrorKind.Ambiguous, e.Kind);
        Assert.Contains("gitops.image_name", e.Message);
    }

    [Fact]
    public void UnsupportedTransportsSayWhatToUse()
    {
        foreach (var url in new[] { "git@example.test:kfm/infra.git", "ssh://git@example.test/kfm/infra.git", "http://example.test/infra.git", "git://example.test/infra.git" })
        {
            var e = Assert.Throws<KfmException>(() => GitOpsRemote.EnsureSupported(url));
            Assert.Equal(GitOpsErrorIds.UnsupportedTransport, e.ErrorId);
            Assert.Contains("https://", e.Message);
        }
        GitOpsRemote.EnsureSupported("http://127.0.0.1:8080/infra.git");
        GitOpsRemote.EnsureSupported("https://example.test/infra.git");
        GitOpsRemote.EnsureSupported("file:///srv/infra.git");
    }

    [Fact]
    public void FileUrlIsClonedIntoTheCache()
    {
        using var cache = new TempDir();
        var config = _repo.Config(url: new Uri(_repo.Bare));
        var result = new GitOpsRollbackRun(config, _clock, cache.Path).Run(Request());
        Assert.Equal(RollbackOutcome.PendingMerge, result.Outcome);
        Assert.True(Repository.IsValid(GitOpsRepository.CacheDirectory(new Uri(_repo.Bare).OriginalString, cache.Path)));
    }

    public void Dispose() => _repo.Dispose();
}
