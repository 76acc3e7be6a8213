using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Freeze;
using KfmRollback.Engine.Refs;

namespace KfmRollback.Engine.Tests.Freeze;

/// <summary>Issue 20 item 4: a thaw never lets the controller redeploy a build a rollback moved away from.</summary>
public sealed class ThawGuardTests
{
    private const string Bad = "sha256:d49d44c11309c8cb5510b62176d4c4728e165f6da40a30658b99945aba54f83f";
    private const string Good = "sha256:6bee652533e43e0d317f1a5f53cac50d332e849db092c96211dab3400af29daa";
    private const string Commit = "9b894641b9af0123456789abcdef0123456789ab";

    private static EnvironmentConfig Environment(GitOpsConfig? gitops) =>
        EnvironmentConfig.Create("prod", new ClusterConfig { Namespace = "kfm", Deployment = "kfm-api" }, gitops!);

    private static GitOpsConfig Gitops() => new() { Path = "/srv/infra", File = "overlays/prod/kustomization.yaml", Kind = GitOpsKind.Kustomize, ImageName = "kfm-api" };

    private static ApiRef Pinning(string digest, params QuarantineEntry[] quarantined) => new()
    {
        Environment = "prod",
        Source = RefSource.GitOps,
        Commit = Commit,
        CurrentImage = "registry.kfm.local/kfm-api@" + digest,
        CurrentRef = digest,
        Quarantined = quarantined,
    };

    private static QuarantineEntry QuarantineOfBad() => new()
    {
        Digest = Bad, Source = QuarantineSources.Journal, IncidentId = "INC-7", RunId = "INC-7/prod/cluster#1", At = DateTimeOffset.Parse("2026-12-07T02:00:00Z"),
    };

    [Fact]
    public void A_pin_of_a_quarantined_digest_is_refused_naming_the_digest_the_commit_and_the_override()
    {
        var timeline = new List<string>();
        var e = Assert.Throws<KfmException>(() => ThawGuard.Check(Environment(Gitops()), () => Pinning(Bad, QuarantineOfBad()), null, (_, text) => timeline.Add(text)));
        Assert.Equal(ThawGuard.RefusedErrorId, e.ErrorId);
        Assert.Equal(KfmErrorKind.InvalidOperation, e.Kind);
        Assert.Contains(Bad, e.Message, StringComparison.Ordinal);
        Assert.Contains(Commit[..12], e.Message, StringComparison.Ordinal);
        Assert.Contains("INC-7", e.Message, StringComparison.Ordinal);
        Assert.Contains("-Force -Reason", e.Message, StringComparison.Ordinal);
        Assert.Empty(timeline);
    }

    [Fact]
    public void An_override_with_a_reason_goes_ahead_and_is_recorded()
    {
        var timeline = new List<string>();
        ThawDesiredState? state = ThawGuard.Check(Environment(Gitops()), () => Pinning(Bad, QuarantineOfBad()), "PR merging by hand", (_, text) => timeline.Add(text));
        Assert.NotNull(state?.Quarantine);
        string entry = Assert.Single(timeline);
        Assert.StartsWith("FORCED thaw of prod although Git pins " + Bad, entry, StringComparison.Ordinal);
        Assert.EndsWith("PR merging by hand", entry, StringComparison.Ordinal);
    }

    [Fact]
    public void A_pin_of_a_good_build_thaws_silently_even_when_another_digest_is_quarantined()
    {
        var timeline = new List<string>();
        ThawDesiredState? state = ThawGuard.Check(Environment(Gitops()), () => Pinning(Good, QuarantineOfBad()), null, (_, text) => timeline.Add(text));
        Assert.Equal(Good, state?.Digest);
        Assert.Null(state?.Quarantine);
        Assert.Null(state?.NotChecked);
        Assert.Empty(timeline);
    }

    [Fact]
    public void Without_a_GitOps_repository_nothing_is_read()
    {
        bool read = false;
        Assert.Null(ThawGuard.Check(Environment(null), () => { read = true; return Pinning(Bad); }, null, (_, _) => { }));
        Assert.False(read);
    }

    [Fact]
    public void Git_that_cannot_be_read_is_said_and_recorded_never_silent()
    {
        var timeline = new List<string>();
        ThawDesiredState? state = ThawGuard.Check(Environment(Gitops()),
            () => throw new KfmException("GitOpsRepositoryUnavailable", KfmErrorKind.ConnectionError, "Git fetch with https://git.example.test/infra.git failed: timeout"),
            null, (_, text) => timeline.Add(text));
        Assert.NotNull(state?.NotChecked);
        Assert.Contains("GitOpsRepositoryUnavailable", state!.NotChecked, StringComparison.Ordinal);
        Assert.Equal(state.NotChecked, Assert.Single(timeline));
    }
}
