using KfmRollback.Bench;
using KfmRollback.Engine.Adapters.Git;
using System.Diagnostics;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Refs;
using KfmRollback.Engine.Tests.Receipts;

namespace KfmRollback.Engine.Tests.GitOps;

public class GitOpsRefSourceTests : IDisposable
{
    private readonly GitTestRepo _repo = new();

    [Fact]
    public void ReadsCurrentRefLastKnownGoodAndHistory()
    {
        var config = _repo.Config();
        using var repository = GitOpsRepository.Open(config);
        var report = GitOpsRefSource.Read("prod", config, repository);

        Assert.Equal(RefSource.GitOps, report.Ref.Source);
        Assert.Equal(Git.Run(config.Path!, "rev-parse", "origin/main"), report.Ref.Commit);
        Assert.Equal($"registry.example.test/kfm/api@{GitTestRepo.D3}", report.Ref.CurrentImage);
        Assert.Equal(GitTestRepo.D3, report.Ref.CurrentRef);
        Assert.Equal(GitTestRepo.D2, report.Ref.LastKnownGoodRef);
        Assert.Equal(GitOpsRefSource.SourceGitHistory, report.Ref.LastKnownGoodSource);
        // Only the three deploy commits changed the file; the docs commits between them are skipped.
        Assert.Equal(new[] { GitTestRepo.D3, GitTestRepo.D2, GitTestRepo.D1 }, report.History.Select(h => h.Digest));
        Assert.Equal(new[] { "deploy api 1.2", "deploy api 1.1", "deploy api 1.0" }, report.History.Select(h => h.Summary));
        Assert.All(report.History, h => Assert.Equal("Dev", h.Author));
    }

    [Fact]
    public void HistoryComesFirstAndAVerifiedTargetOnlyWhenHistoryHasNoneUsable()
    {
        var config = _repo.Config();
        using var repository = GitOpsRepository.Open(config);
        // One authority for every source: the newest older pin not quarantined, whatever a receipt says.
        var trust = new EnvironmentTrust("prod", Array.Empty<QuarantineEntry>(), new[] { new EstablishedTarget(GitTestRepo.D1, LastKnownGoodSources.ReceiptStore, "INC-1", null) });
        var report = GitOpsRefSource.Read("prod", config, repository, trust);
        Assert.Equal(GitTestRepo.D2, report.Ref.LastKnownGoodRef);
        Assert.Equal(GitOpsRefSource.SourceGitHistory, report.Ref.LastKnownGoodSource);
        // D2 quarantined (a rollback moved away from it elsewhere): skipped, D1 from history.
        var quarantined = new EnvironmentTrust("prod", new[] { new QuarantineEntry { Digest = GitTestRepo.D2, Source = QuarantineSources.Journal, IncidentId = "INC-0" } }, Array.Empty<EstablishedTarget>());
        var skip = GitOpsRefSource.Read("prod", config, repository, quarantined);
        Assert.Equal(GitTestRepo.D1, skip.Ref.LastKnownGoodRef);
        Assert.Contains("INC-0", skip.Ref.LastKnownGoodReason);
        Assert.Contains(skip.Ref.Quarantined, q => q.Digest == GitTestRepo.D2);
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
        var report = GitOpsRefSource.Read("prod", config, repository, historyLimit: 2);
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
        var history = GitOpsRefSource.History(config, repository.Repo, repository.DeployTip(), int.MaxValue);
        Assert.Equal(101, history.Count);
        Assert.Equal(GitOpsBenchRepository.DigestAt(1), history[^1].Digest);
    }

    /// <summary>A fresh repository whose file went through <paramref name="revisions"/> (oldest first), each its own commit.</summary>
    private static (GitTestRepo Repo, GitOpsConfig Config) History(GitOpsKind kind, string file, params (string Text, string Message)[] revisions)
    {
        var repo = new GitTestRepo(seed: false);
        foreach (var (text, message) in revisions)
        {
            repo.Write(file, text);
            repo.Commit(message);
        }
        repo.Push();
        var config = new GitOpsConfig { Path = repo.Clone(), File = file, Kind = kind, ImageName = "kfm-api" };
        return (repo, config);
    }

    [Theory]
    [InlineData("no-images", "# before the first deploy\nresources: [deployment.yaml]\n")]
    [InlineData("invalid-yaml", "images:\n  - name: kfm-api\n    digest: [unclosed\n")]
    [InlineData("two-entries", "images:\n  - name: kfm-api\n    digest: sha256:1111111111111111111111111111111111111111111111111111111111111111\n  - name: kfm-api\n    digest: sha256:1111111111111111111111111111111111111111111111111111111111111111\n")]
    public void UnreadableOlderKustomizationRevisionsAreListedAndSkipped(string name, string oldest)
    {
        var (repo, config) = History(GitOpsKind.Kustomize, GitTestRepo.File,
            (oldest, "oldest: " + name), (GitTestRepo.Kustomization(GitTestRepo.D2), "deploy 1.1"), (GitTestRepo.Kustomization(GitTestRepo.D3), "deploy 1.2"));
        using (repo)
        {
            using var repository = GitOpsRepository.Open(config);
            var report = GitOpsRefSource.Read("prod", config, repository);
            Assert.Equal(GitTestRepo.D3, report.Ref.CurrentRef);
            Assert.Equal(GitTestRepo.D2, report.Ref.LastKnownGoodRef);
            var skipped = Assert.Single(report.History, h => h.Unreadable is not null);
            Assert.Equal("oldest: " + name, skipped.Summary);
            Assert.Null(skipped.Digest);
            // Test-KfmDrift reads the same way: the whole walk does not fail either.
            var all = GitOpsRefSource.Read("prod", config, repository, historyLimit: 50);
            Assert.Equal(3, all.History.Count);
        }
    }

    [Fact]
    public void AnOldRevisionWithTwoContainersOfTheSameImageIsSkippedNotFatal()
    {
        static string Manifest(string containers) => $"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: kfm-api}}\nspec:\n  template:\n    spec:\n      containers:\n{containers}";
        string one(string d) => $"        - name: api\n          image: registry.example.test/kfm-api@{d}\n";
        var (repo, config) = History(GitOpsKind.Raw, "apps/api/deployment.yaml",
            (Manifest(one(GitTestRepo.D1) + one(GitTestRepo.D1).Replace("name: api", "name: worker")), "api and worker on one image"),
            (Manifest(one(GitTestRepo.D2)), "deploy 1.1"), (Manifest(one(GitTestRepo.D3)), "deploy 1.2"));
        using (repo)
        {
            using var repository = GitOpsRepository.Open(config);
            var report = GitOpsRefSource.Read("prod", config, repository, historyLimit: 10);
            Assert.Equal(GitTestRepo.D2, report.Ref.LastKnownGoodRef);
            Assert.Contains(GitOpsErrorIds.ImageAmbiguous, Assert.Single(report.History, h => h.Unreadable is not null).Unreadable);
        }
    }

    [Fact]
    public void LastKnownGoodIsNeverTheDigestARollbackMovedAwayFrom()
    {
        // D1, D2 good; D3 bad; the merged rollback PR pins D2 again with its trailers.
        var (repo, config) = History(GitOpsKind.Kustomize, GitTestRepo.File,
            (GitTestRepo.Kustomization(GitTestRepo.D1), "deploy 1.0"), (GitTestRepo.Kustomization(GitTestRepo.D2), "deploy 1.1"),
            (GitTestRepo.Kustomization(GitTestRepo.D3), "deploy 1.2"));
        using (repo)
        {
            repo.Write(GitTestRepo.File, GitTestRepo.Kustomization(GitTestRepo.D2));
            Git.Run(repo.Seed, "add", "-A");
            Git.Run(repo.Seed, "commit", "-q", "-m", RollbackMessage.Commit("INC-7", "pin image to D2", GitTestRepo.D2, "5xx", "api"));
            repo.Push();
            using var repository = GitOpsRepository.Open(config);
            foreach (int limit in new[] { 2, 10 })
            {
                var report = GitOpsRefSource.Read("prod", config, repository, historyLimit: limit);
                Assert.Equal(GitTestRepo.D2, report.Ref.CurrentRef);
                // The rollback commit put D2 there: it is the last-known-good, never D3, and a rerun pins nothing further back.
                Assert.Equal(GitTestRepo.D2, report.Ref.LastKnownGoodRef);
                Assert.Equal(LastKnownGoodSources.RollbackTarget, report.Ref.LastKnownGoodSource);
                Assert.Contains(report.Ref.Quarantined, q => q.Digest == GitTestRepo.D3 && q.IncidentId == "INC-7" && q.Source == QuarantineSources.GitHistory);
            }
            // A later deploy of D3 again: D3 is quarantined, so the last-known-good is D2, not the D3 just before it.
            repo.Write(GitTestRepo.File, GitTestRepo.Kustomization(GitTestRepo.D3));
            repo.Commit("deploy 1.2 again");
            repo.Push();
            using var again = GitOpsRepository.Open(config);
            Assert.Equal(GitTestRepo.D2, GitOpsRefSource.Read("prod", config, again, historyLimit: 2).Ref.LastKnownGoodRef);
        }
    }

    [Fact]
    public void AHelmTagCarryingADigestIsReadAsThatDigestNotAMutableTag()
    {
        var (repo, config) = History(GitOpsKind.Helm, "charts/api/values.yaml",
            ($"image:\n  repository: registry.example.test/kfm-api\n  tag: \"1.1.0@{GitTestRepo.D2}\"\n", "deploy 1.1"),
            ($"image:\n  repository: registry.example.test/kfm-api\n  tag: \"1.2.0@{GitTestRepo.D3}\" # renovate\n", "deploy 1.2"));
        using (repo)
        {
            using var repository = GitOpsRepository.Open(config);
            var report = GitOpsRefSource.Read("prod", config, repository);
            Assert.True(report.Ref.CurrentIsDigest);
            Assert.Equal(GitTestRepo.D3, report.Ref.CurrentRef);
            Assert.Equal($"registry.example.test/kfm-api:1.2.0@{GitTestRepo.D3}", report.Ref.CurrentImage);
            Assert.Equal(GitTestRepo.D2, report.Ref.LastKnownGoodRef);
        }
    }

    public void Dispose() => _repo.Dispose();
}
