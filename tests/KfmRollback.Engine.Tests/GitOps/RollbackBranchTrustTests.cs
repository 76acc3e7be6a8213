using KfmRollback.Engine.Refs;
using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Tests.Receipts;

namespace KfmRollback.Engine.Tests.GitOps;

/// <summary>
/// Issue 17, item 4: a reused ops/rollback-api-* branch is this incident's rollback only when it holds
/// exactly the planned change. Anyone who can push can put the incident's trailer on a branch.
/// </summary>
public sealed class RollbackBranchTrustTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 11, 28, 9, 5, 0, TimeSpan.Zero);
    private readonly GitTestRepo _repo = new();
    private readonly FixedClock _clock = new(Now);

    private static GitOpsRollbackRequest Request => new() { Environment = "prod", IncidentId = "INC-42", Reason = "5xx spike after 1.2" };

    private static string Message(string what) =>
        RollbackMessage.Commit("INC-42", what, GitTestRepo.D2, "5xx spike after 1.2", "api");

    [Fact]
    public void ABranchWithThePinPlusAnotherChangeStopsTheRun()
    {
        // A forged branch: the incident's trailers, the planned pin, and a file nobody planned.
        Git.Run(_repo.Seed, "checkout", "-q", "-b", "ops/rollback-api-20261128-0900");
        _repo.Write(GitTestRepo.File, GitTestRepo.Kustomization(GitTestRepo.D2));
        _repo.Write("apps/api/extra-rbac.yaml", "kind: ClusterRoleBinding\n");
        Git.Run(_repo.Seed, "add", "-A");
        Git.Run(_repo.Seed, "commit", "-q", "-m", Message($"pin image to {GitTestRepo.D2[..19]}"));
        Git.Run(_repo.Seed, "push", "-q", "origin", "ops/rollback-api-20261128-0900");
        string forged = _repo.RemoteBranchTip("ops/rollback-api-20261128-0900");

        var e = Assert.Throws<KfmException>(() => new GitOpsRollbackRun(_repo.Config(), _clock).Run(Request));

        Assert.Equal(GitOpsErrorIds.RollbackBranchTampered, e.ErrorId);
        Assert.Equal(KfmErrorKind.SecurityError, e.Kind);
        Assert.Contains("apps/api/extra-rbac.yaml", e.Message);
        Assert.Equal(forged, _repo.RemoteBranchTip("ops/rollback-api-20261128-0900"));
    }

    [Fact]
    public void ACommitPushedOnTopOfTheModulesBranchStopsTheRerun()
    {
        var config = _repo.Config();
        RollbackResult first = new GitOpsRollbackRun(config, _clock).Run(Request);
        Assert.Equal(RollbackOutcome.PendingMerge, first.Outcome);

        // Someone adds a commit carrying the same trailers to the module's branch.
        Git.Run(_repo.Seed, "fetch", "-q", "origin");
        Git.Run(_repo.Seed, "checkout", "-q", "-b", "tamper", "origin/" + first.Branch);
        _repo.Write("apps/api/patch.yaml", "replicas: 0\n");
        Git.Run(_repo.Seed, "add", "-A");
        Git.Run(_repo.Seed, "commit", "-q", "-m", Message("tweak"));
        Git.Run(_repo.Seed, "push", "-q", "origin", "tamper:" + first.Branch);

        _clock.UtcNow = Now.AddMinutes(3);
        var e = Assert.Throws<KfmException>(() => new GitOpsRollbackRun(config, _clock).Run(Request));
        Assert.Equal(GitOpsErrorIds.RollbackBranchTampered, e.ErrorId);
    }

    [Fact]
    public void TheModulesOwnBranchIsStillReused()
    {
        var config = _repo.Config();
        RollbackResult first = new GitOpsRollbackRun(config, _clock).Run(Request);
        // The deploy branch moves on meanwhile: the branch's parent is still on it.
        _repo.Write("README.md", "docs moved on");
        _repo.Commit("docs: later");
        _repo.Push();
        _clock.UtcNow = Now.AddMinutes(3);
        RollbackResult second = new GitOpsRollbackRun(config, _clock).Run(Request);
        Assert.Equal(first.Commit, second.Commit);
        Assert.Equal(RollbackOutcome.PendingMerge, second.Outcome);
    }

    public void Dispose() => _repo.Dispose();
}
