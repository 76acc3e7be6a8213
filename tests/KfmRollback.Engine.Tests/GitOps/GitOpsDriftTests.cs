using KfmRollback.Engine.Refs;

namespace KfmRollback.Engine.Tests.GitOps;

public class GitOpsDriftTests
{
    private const string A = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    private const string B = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    private const string Repo = "registry.example.test/kfm/api";

    private static ApiRef Git(string image, string? digest) => new() { Environment = "prod", Source = RefSource.GitOps, CurrentImage = image, CurrentRef = digest };

    private static ApiRef Live(string image, params string[] running) => new()
    {
        Environment = "prod", Source = RefSource.Cluster, CurrentImage = image, CurrentRef = running.FirstOrDefault(), RunningDigests = running,
    };

    [Fact]
    public void SameDigestIsNoDrift() => Assert.Empty(GitOpsDrift.Compare(Git($"{Repo}@{A}", A), Live($"{Repo}@{A}", A)));

    [Fact]
    public void DifferentDigestAfterEmergencyRollbackIsDrift()
    {
        var item = Assert.Single(GitOpsDrift.Compare(Git($"{Repo}@{B}", B), Live($"{Repo}@{A}", A)));
        Assert.Equal("image-digest", item.Field);
        Assert.Equal(B, item.Desired);
        Assert.Equal(A, item.Live);
        // Piped to Invoke-KfmRollback -Method GitOps, the live digest is the one target that binds.
        Assert.Equal(A, item.ToRef);
        Assert.Equal("image-digest", item.Drift);
        Assert.Contains("Re-align Git with production", item.Reason);
    }

    [Fact]
    public void OnlyADigestDifferenceCarriesATarget()
    {
        var items = GitOpsDrift.Compare(Git($"{Repo}@{A}", A), Live($"registry.example.test/other@{A}", A, B))
            .Concat(GitOpsDrift.Compare(Git($"{Repo}:1.2.0", null), Live($"{Repo}@{A}", A))).ToList();
        Assert.Equal(new[] { "image-repository", "rollout", "git-ref-kind" }, items.Select(i => i.Field));
        Assert.All(items, i => Assert.Null(i.ToRef));
        Assert.All(items, i => Assert.Null(i.Reason));
    }

    [Fact]
    public void TagInGitIsReported()
    {
        var items = GitOpsDrift.Compare(Git($"{Repo}:1.2.0", null), Live($"{Repo}@{A}", A));
        Assert.Equal(new[] { "git-ref-kind" }, items.Select(i => i.Field));
    }

    [Fact]
    public void RepositoryMismatchAndRolloutInFlight()
    {
        var items = GitOpsDrift.Compare(Git($"{Repo}@{A}", A), Live($"registry.example.test/other@{A}", A, B));
        Assert.Contains(items, i => i.Field == "image-repository");
        Assert.Contains(items, i => i.Field == "rollout");
    }

    [Fact]
    public void UnknownLiveDigestIsReported()
    {
        var live = new ApiRef { Environment = "prod", Source = RefSource.Cluster, CurrentImage = $"{Repo}:1.2.0" };
        Assert.Equal(new[] { "live-digest" }, GitOpsDrift.Compare(Git($"{Repo}@{A}", A), live).Select(i => i.Field));
    }
}
