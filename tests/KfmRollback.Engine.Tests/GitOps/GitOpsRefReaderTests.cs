using System.Diagnostics;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.GitOps;
using KfmRollback.Engine.Receipts;
using KfmRollback.Engine.Refs;
using KfmRollback.Engine.Tests.Receipts;

namespace KfmRollback.Engine.Tests.GitOps;

public class GitOpsRefReaderTests : IDisposable
{
    private readonly GitTestRepo _repo = new();

    [Fact]
    public void ReadsCurrentRefLastKnownGoodAndHistory()
    {
        var config = _repo.Config();
        using var repository = GitOpsRepository.Open(config);
        var report = new GitOpsRefReader("prod", config).Read(repository);

        Assert.Equal(RefSource.GitOps, report.Ref.Source);
        Assert.Equal(Git.Run(config.Path!, "rev-parse", "origin/main"), report.Ref.Commit);
        Assert.Equal($"registry.example.test/kfm/api@{GitTestRepo.D3}", report.Ref.CurrentImage);
        Assert.Equal(GitTestRepo.D3, report.Ref.CurrentRef);
        Assert.Equal(GitTestRepo.D2, report.Ref.LastKnownGoodRef);
        Assert.Equal(GitOpsRefReader.SourceGitHistory, report.Ref.LastKnownGoodSource);
        // Only the three deploy commits changed the file; the docs commits between them are skipped.
        Assert.Equal(new[] { GitTestRepo.D3, GitTestRepo.D2, GitTestRepo.D1 }, report.History.Select(h => h.Digest));
        Assert.Equal(new[] { "deploy api 1.2", "deploy api 1.1", "deploy api 1.0" }, report.History.Select(h => h.Summary));
        Assert.All(report.History, h => Assert.Equal("Dev", h.Author));
    }

    [Fact]
    public void VerifiedReceiptIsPreferredAsLastKnownGood()
    {
        var config = _repo.Config();
        using var repository = GitOpsRepository.Open(config);
        var receipts = new[]
        {
            Receipt(GitTestRepo.D1, "pass", "2026-11-20T10:00:00Z"),
            Receipt(GitTestRepo.D2, "fail", "2026-11-21T10:00:00Z"),
            Receipt("sha256:" + new string('9', 64), "pass", "2026-11-19T10:00:00Z"),
        };
        var report = new GitOpsRefReader("prod", config).Read(repository, receipts);
        Assert.Equal(GitTestRepo.D1, report.Ref.LastKnownGoodRef);
        Assert.Equal(GitOpsRefReader.SourceReceiptStore, report.Ref.LastKnownGoodSource);
    }

    // Speed against `git log` is a benchmark (bench/), never a timed assertion; this checks the
    // answer on the same 20,000-commit history.
    [Fact]
    public void LastKnownGoodOnATwentyThousandCommitHistory()
    {
        using var dir = new TempDir();
        string path = dir.Sub("bench");
        GitOpsBenchRepository.Create(path, 20_000, 20);
        var config = new GitOpsConfig { Path = path, File = GitOpsBenchRepository.FilePath, Kind = GitOpsKind.Kustomize, ImageName = GitOpsBenchRepository.ImageName };

        string log = Git.Run(path, "log", "--format=%H", "--", GitOpsBenchRepository.FilePath);
        Assert.Equal(1001, log.Split('\n').Length);
        LookUp(config);
    }

    private static void LookUp(GitOpsConfig config)
    {
        using var repository = GitOpsRepository.Open(config);
        var report = new GitOpsRefReader("prod", config).Read(repository, historyLimit: 2);
        Assert.Equal(GitOpsBenchRepository.DigestAt(20_000), report.Ref.CurrentRef);
        Assert.Equal(GitOpsBenchRepository.DigestAt(19_980), report.Ref.LastKnownGoodRef);
    }

    [Fact]
    public void FullHistoryWalkFindsEveryChange()
    {
        using var dir = new TempDir();
        string path = dir.Sub("bench");
        GitOpsBenchRepository.Create(path, 2_000, 20);
        var config = new GitOpsConfig { Path = path, File = GitOpsBenchRepository.FilePath, Kind = GitOpsKind.Kustomize, ImageName = GitOpsBenchRepository.ImageName };
        using var repository = GitOpsRepository.Open(config);
        var history = new GitOpsRefReader("prod", config).History(repository.Repo, repository.DeployTip(), int.MaxValue);
        Assert.Equal(101, history.Count);
        Assert.Equal(GitOpsBenchRepository.DigestAt(1), history[^1].Digest);
    }

    private static RollbackReceipt Receipt(string target, string verdict, string completedAt) => new()
    {
        IncidentId = "INC-1", RequestedBy = "a", ApprovedBy = "b", StartedAt = completedAt, CompletedAt = completedAt,
        Environment = "prod", Reason = "r", CurrentRef = GitTestRepo.D3, RollbackTargetRef = target, ChangedSurfaces = new[] { "api" },
        Verification = new ReceiptVerification { Health = "pass", PolicyInvariants = verdict, ContractSmoke = "pass" },
        KfmIntegrity = null!,
    };

    public void Dispose() => _repo.Dispose();
}
