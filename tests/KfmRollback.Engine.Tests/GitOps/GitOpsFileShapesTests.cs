using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Tests.Receipts;

namespace KfmRollback.Engine.Tests.GitOps;

/// <summary>
/// Rollbacks of GitOps files as teams write them (issue 19 item 5), through the GitOps mechanism on a
/// real repository: the rollback branch's file is the revision that pinned the target, byte for byte,
/// and differs from the deploy branch's on one line only.
/// </summary>
public sealed class GitOpsFileShapesTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 12, 7, 6, 40, 0, TimeSpan.Zero);
    private readonly GitTestRepo _repo = new(seed: false);

    private const string RenovateTag = "11.5.0-debian-9-r0@sha256:4762726f1471ef048dd807afdc0e19265e95ffdcc7cb4a34891f680290022809";

    private static GitOpsRollbackRequest Request() => new() { Environment = "prod", IncidentId = "INC-19", Reason = "5xx after the Renovate bump" };

    private GitOpsConfig Config(string file, HelmValuePaths helm) => new()
    {
        Path = _repo.Clone(), File = file, Kind = GitOpsKind.Helm, HelmValues = helm,
    };

    /// <summary>Commits each text as a deploy of <paramref name="file"/>, in order, and pushes.</summary>
    private void Deploy(string file, params string[] texts)
    {
        for (int i = 0; i < texts.Length; i++)
        {
            _repo.Write(file, texts[i]);
            _repo.Commit($"deploy {i + 1}");
        }
        _repo.Push();
    }

    private string OnBranch(string branch, string file) => Git.Run(_repo.Root, "--git-dir", _repo.Bare, "show", $"{branch}:{file}") + "\n";

    private static IReadOnlyList<int> ChangedLines(string before, string after)
    {
        string[] a = before.Split('\n'), b = after.Split('\n');
        Assert.Equal(a.Length, b.Length);
        return Enumerable.Range(0, a.Length).Where(i => a[i] != b[i]).Select(i => i + 1).ToList();
    }

    [Fact]
    public void A_renovate_tag_at_digest_gets_its_old_tag_back_with_its_old_digest()
    {
        const string file = "charts/postgres/values.yaml";
        string old = FormatCorpusReal.RenovateNestedValues.Replace(RenovateTag, "11.4.0-debian-9-r1@" + GitTestRepo.D1);
        string bad = FormatCorpusReal.RenovateNestedValues;
        Deploy(file, old, bad);

        RollbackResult result = new GitOpsRollbackRun(Config(file, FormatCorpusReal.RenovatePaths), new FixedClock(Now)).Run(Request());

        Assert.Equal(RollbackOutcome.PendingMerge, result.Outcome);
        Assert.Equal(GitTestRepo.D1, result.RollbackTargetRef);
        string rolledBack = OnBranch(result.Branch!, file);
        Assert.Equal(old, rolledBack);
        Assert.Equal(new[] { 22 }, ChangedLines(bad, rolledBack));
        Assert.Contains($"+      tag: 11.4.0-debian-9-r1@{GitTestRepo.D1}", result.Change);
    }

    [Fact]
    public void An_argo_application_with_its_values_as_a_string_is_rolled_back_on_one_line_of_the_string()
    {
        const string file = "apps/kfm-api.yaml";
        string good = FormatCorpusReal.ArgoHelmValuesBlock(GitTestRepo.D1) + "\n";
        string bad = FormatCorpusReal.ArgoHelmValuesBlock(GitTestRepo.D2) + "\n";
        Deploy(file, good, bad);

        RollbackResult result = new GitOpsRollbackRun(Config(file, FormatCorpusReal.ArgoValuesBlock), new FixedClock(Now)).Run(Request());

        Assert.Equal((GitTestRepo.D2, GitTestRepo.D1), (result.CurrentRef, result.RollbackTargetRef));
        string rolledBack = OnBranch(result.Branch!, file);
        Assert.Equal(good, rolledBack);
        Assert.Equal(new[] { 30 }, ChangedLines(bad, rolledBack));
    }

    [Fact]
    public void An_init_container_on_the_api_image_is_rolled_back_with_it_two_lines()
    {
        const string file = "apps/kfm-api/deployment.yaml";
        string layout = FormatCorpus.All().Single(c => c.Name == "raw-one-image-two-containers").Text + "\n";
        string good = layout.Replace(FormatCorpus.Old, GitTestRepo.D1);
        string bad = layout.Replace(FormatCorpus.Old, GitTestRepo.D2);
        Deploy(file, good, bad);
        var config = new GitOpsConfig { Path = _repo.Clone(), File = file, Kind = GitOpsKind.Raw, ImageName = "kfm/api", Container = ["migrate", "api"] };

        RollbackResult result = new GitOpsRollbackRun(config, new FixedClock(Now)).Run(Request());

        Assert.Equal((GitTestRepo.D2, GitTestRepo.D1), (result.CurrentRef, result.RollbackTargetRef));
        string rolledBack = OnBranch(result.Branch!, file);
        Assert.Equal(good, rolledBack);
        Assert.Equal(new[] { 9, 13 }, ChangedLines(bad, rolledBack));
    }

    [Fact]
    public void A_file_out_of_reach_is_named_and_revert_is_offered()
    {
        Deploy("apps/kfm-api.yaml", FormatCorpusReal.ArgoHelmValuesBlock(GitTestRepo.D1) + "\n");

        var e = Assert.Throws<KfmRollback.Engine.Core.KfmException>(() =>
            new GitOpsRollbackRun(Config("apps/kfm-api-moved.yaml", FormatCorpusReal.ArgoValuesBlock), new FixedClock(Now)).Run(Request() with { ToRef = GitTestRepo.D2 }));

        Assert.Equal(KfmRollback.Engine.Adapters.Git.GitOpsErrorIds.FileNotFound, e.ErrorId);
        Assert.Contains("apps/kfm-api-moved.yaml", e.Message);
        Assert.Contains("-Revert <sha>", e.Message);
    }

    public void Dispose() => _repo.Dispose();
}
