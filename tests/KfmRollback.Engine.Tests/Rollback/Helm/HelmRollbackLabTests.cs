using KfmRollback.Engine.Tests.Support;
using KfmRollback.Engine.Adapters.Helm;
using System.Text;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Refs;
using KfmRollback.Engine.Rollback;
using KfmRollback.Lab;
using Xunit;

namespace KfmRollback.Engine.Tests.Rollback.Helm;

/// <summary>
/// Helm rollbacks against the lab, checked against what helm v3 writes (pkg/action/rollback.go
/// prepareRollback/performRollback, pkg/storage/storage.go Create/removeLeastRecent,
/// pkg/storage/driver/secrets.go Create/Update labels).
/// </summary>
public sealed class HelmRollbackLabTests
{
    private static readonly string[] SystemLabels = ["name", "owner", "status", "version"];

    [Fact]
    public async Task ReadsCurrentLastKnownGoodAndHistoryFromTheSeededReleases()
    {
        await using EngineLab lab = await HelmLab.StartAsync();
        var history = await lab.Store().HistoryAsync("kfm-api", CancellationToken.None);

        ApiRef reference = HelmReleaseRefs.Ref(history, lab.Environment, null);
        Assert.Equal(RefSource.Helm, reference.Source);
        Assert.Equal(lab.Digest(Seeder.Current), reference.CurrentRef);
        Assert.Equal(4, reference.Revision);
        Assert.Equal(lab.Digest("good-1.5.0"), reference.LastKnownGoodRef);
        Assert.Equal(3, reference.LastKnownGoodRevision);
        Assert.Equal("previous-release", reference.LastKnownGoodSource);

        var revisions = HelmReleaseRefs.History(history, lab.Environment, null);
        Assert.Equal(new long[] { 1, 2, 3, 4 }, revisions.Select(r => r.Revision));
        Assert.Equal(new[] { "superseded", "superseded", "superseded", "deployed" }, revisions.Select(r => r.Status));
        Assert.Equal(new[] { "Install complete", "Upgrade complete", "Upgrade complete", "Upgrade complete" }, revisions.Select(r => r.Description));
        Assert.Equal(lab.Digest("good-1.4.0"), revisions[0].Digest); // revision 1 is stored uncompressed
        Assert.Equal("kfm-api-1.4.0", revisions[0].Chart);
        Assert.Equal("1.5.1", revisions[3].AppVersion);
        Assert.True(revisions[3].IsCurrent);
        Assert.All(revisions, r => Assert.NotNull(r.UpdatedAt));
    }

    [Fact]
    public async Task PreviousRevisionWritesWhatHelmRollbackWrites()
    {
        await using EngineLab lab = await HelmLab.StartAsync();
        await lab.FreezeAsync("INC-1");
        var before = await lab.ReleasesAsync();

        RollbackResult result = await lab.RollBackAsync();

        Assert.True(result.Outcome == RollbackOutcome.Succeeded, result.Detail);
        Assert.Equal(lab.Digest("good-1.5.0"), result.RollbackTargetRef);
        Assert.Equal(4, result.FromRevision);
        Assert.Equal(3, result.ToRevision);
        var after = await lab.ReleasesAsync();
        HelmRelease v5 = after[5].Release;
        Assert.Equal("deployed", v5.Status);
        Assert.Equal("Rollback to 3", v5.Description);
        Assert.Equal(5, v5.Version);
        Assert.Equal("kfm", v5.Namespace);
        Assert.Equal(before[3].Release.Manifest, v5.Manifest);
        Assert.Equal(before[3].Release.ConfigHash, v5.ConfigHash);
        Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(before[3].Release.Json["chart"], v5.Json["chart"]));
        Assert.Equal(before[4].Release.FirstDeployed, v5.FirstDeployed); // first_deployed comes from the current release
        Assert.Equal("superseded", after[4].Status);
        Assert.Equal(new[] { "superseded", "superseded", "superseded" }, new[] { 1, 2, 3 }.Select(v => after[v].Status));

        // secrets.go: Create adds createdAt, but rollback's final Update rebuilds labels from the
        // release's own (custom) labels plus modifiedAt, so the new revision ends without createdAt.
        var v5Secret = await lab.SecretAsync(5);
        Assert.Equal("helm.sh/release.v1", v5Secret.Type);
        Assert.Equal(new[] { "modifiedAt", "name", "owner", "status", "version" }, v5Secret.Metadata.Labels.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("deployed", v5Secret.Metadata.Labels["status"]);
        Assert.Equal("5", v5Secret.Metadata.Labels["version"]);
        Assert.True(HelmReleaseCodec.IsCompressed(Encoding.ASCII.GetString(v5Secret.Data["release"])));
        // The superseded one was read by Query (all labels) and updated: it keeps createdAt and gains modifiedAt.
        var v4Secret = await lab.SecretAsync(4);
        Assert.Equal("superseded", v4Secret.Metadata.Labels["status"]);
        Assert.Contains("modifiedAt", v4Secret.Metadata.Labels.Keys);

        Assert.Equal(lab.Host.Images.Get("good-1.5.0").Image, await lab.DeploymentImageAsync());
        Assert.Empty(lab.Host.LoopErrors);
    }

    [Fact]
    public async Task ExplicitRevisionLikeHelmRollbackN()
    {
        await using EngineLab lab = await HelmLab.StartAsync();
        await lab.FreezeAsync("INC-1");

        RollbackResult result = await lab.RollBackAsync(new RollbackTarget(2, null));

        Assert.True(result.Outcome == RollbackOutcome.Succeeded, result.Detail);
        var after = await lab.ReleasesAsync();
        Assert.Equal("Rollback to 2", after[5].Release.Description);
        Assert.Equal("deployed", after[5].Status);
        Assert.Equal("superseded", after[4].Status);
        Assert.Equal(lab.Host.Images.Get("good-1.4.1").Image, await lab.DeploymentImageAsync());
    }

    [Fact]
    public async Task RepeatedRollbackGoesBackToTheRevisionBeforeAsHelmDoes()
    {
        await using EngineLab lab = await HelmLab.StartAsync();
        await lab.FreezeAsync("INC-1");

        Assert.Equal(RollbackOutcome.Succeeded, (await lab.RollBackAsync()).Outcome);
        // helm: previous = current.Version - 1, so a second rollback returns to revision 4's content.
        RollbackResult second = await lab.RollBackAsync();

        Assert.True(second.Outcome == RollbackOutcome.Succeeded, second.Detail);
        var after = await lab.ReleasesAsync();
        Assert.Equal("Rollback to 4", after[6].Release.Description);
        Assert.Equal("deployed", after[6].Status);
        Assert.Equal("superseded", after[5].Status);
        Assert.Single(after.Values, r => r.Status == "deployed");
        Assert.Equal(lab.Host.Images.Get(Seeder.Current).Image, await lab.DeploymentImageAsync());
    }

    [Fact]
    public async Task FailedRolloutMarksTheNewRevisionFailedAndKeepsTheCurrentDeployed()
    {
        await using EngineLab lab = await HelmLab.StartAsync();
        await lab.FreezeAsync("INC-1");
        lab.Host.Images.Mark(lab.Digest("good-1.5.0"), PodFailure.CrashLoopBackOff);

        RollbackResult result = await lab.RollBackAsync();

        Assert.Equal(RollbackOutcome.Failed, result.Outcome);
        Assert.Equal("RollbackRolloutFailed", result.Error?.ErrorId);
        var after = await lab.ReleasesAsync();
        // rollback.go: on a wait failure targetRelease.SetStatus(failed, "Release %q failed: %s").
        Assert.Equal("failed", after[5].Status);
        Assert.StartsWith("Release \"kfm-api\" failed: ", after[5].Release.Description);
        Assert.Equal("failed", (await lab.SecretAsync(5)).Metadata.Labels["status"]);
        Assert.Equal("deployed", after[4].Status);
        Assert.DoesNotContain(after.Values, r => HelmStatus.IsPending(r.Status));
    }

    [Fact]
    public async Task HistoryMaxPrunesTheOldestRevisionsBeforeWritingAsHelmDoes()
    {
        await using EngineLab lab = await HelmLab.StartAsync(historyMax: 3);
        await lab.FreezeAsync("INC-1");

        RollbackResult result = await lab.RollBackAsync(wait: false);

        Assert.True(result.Outcome == RollbackOutcome.Succeeded, result.Detail);
        var after = await lab.ReleasesAsync();
        // removeLeastRecent(name, 3-1) before Create: v1 and v2 go, v3 (the target) and v4 (deployed) stay.
        Assert.Equal(new[] { 3, 4, 5 }, after.Keys.Order());
        Assert.Equal("deployed", after[5].Status);
        Assert.Equal("superseded", after[4].Status);
        Assert.Equal(2, result.Changes.Count(c => c.Action == "delete"));
    }

    [Fact]
    public async Task RollsBackToAnUncompressedHelm30Revision()
    {
        await using EngineLab lab = await HelmLab.StartAsync();
        await lab.FreezeAsync("INC-1");
        Assert.False(HelmReleaseCodec.IsCompressed(Encoding.ASCII.GetString((await lab.SecretAsync(1)).Data["release"])));

        RollbackResult result = await lab.RollBackAsync(new RollbackTarget(1, null));

        Assert.True(result.Outcome == RollbackOutcome.Succeeded, result.Detail);
        var after = await lab.ReleasesAsync();
        Assert.Equal("Rollback to 1", after[5].Release.Description);
        Assert.Equal(after[1].Release.Manifest, after[5].Release.Manifest);
        Assert.True(HelmReleaseCodec.IsCompressed(Encoding.ASCII.GetString((await lab.SecretAsync(5)).Data["release"])));
        Assert.Equal(lab.Host.Images.Get("good-1.4.0").Image, await lab.DeploymentImageAsync());
    }

    [Fact]
    public async Task DigestTargetPicksTheNewestRevisionRunningIt()
    {
        await using EngineLab lab = await HelmLab.StartAsync();
        await lab.FreezeAsync("INC-1");

        RollbackResult result = await lab.RollBackAsync(new RollbackTarget(null, lab.Digest("good-1.4.1")), wait: false);

        Assert.True(result.Outcome == RollbackOutcome.Succeeded, result.Detail);
        Assert.Equal("Rollback to 2", (await lab.ReleasesAsync())[5].Release.Description);
    }

    [Fact]
    public async Task AChangeOutsideThePodTemplateIsRefusedAndNothingIsWritten()
    {
        await using EngineLab lab = await HelmLab.StartAsync();
        await lab.FreezeAsync("INC-1");
        await lab.UpgradeAsync("good-1.5.1", replicas: 5); // v5: same image, replicas 5
        var before = await lab.ReleasesAsync();

        var error = await Assert.ThrowsAsync<KfmException>(() => lab.Mechanism().PlanAsync(lab.Request(), RollbackReporter.Silent, CancellationToken.None));

        Assert.Equal("HelmRollbackUnsupportedChange", error.ErrorId);
        Assert.Equal(KfmErrorKind.InvalidOperation, error.Kind);
        Assert.Contains("Deployment kfm-api (outside its pod template)", error.Message);
        Assert.Contains("helm rollback kfm-api 4 --wait", error.Message);
        Assert.Equal(before.Keys, (await lab.ReleasesAsync()).Keys);
    }

    [Fact]
    public async Task UnfrozenArgoCdIsRefused()
    {
        await using EngineLab lab = await HelmLab.StartAsync();

        var error = await Assert.ThrowsAsync<KfmException>(() => lab.Mechanism().PlanAsync(lab.Request(), RollbackReporter.Silent, CancellationToken.None));

        Assert.Equal("RollbackGitOpsNotFrozen", error.ErrorId);
        Assert.Equal(4, (await lab.ReleasesAsync()).Count);
    }

    [Fact]
    public async Task ARevisionWrittenAfterPlanningMakesApplyRefuse()
    {
        await using EngineLab lab = await HelmLab.StartAsync();
        await lab.FreezeAsync("INC-1");
        var mechanism = lab.Mechanism();
        var request = lab.Request(wait: false);
        MechanismPlan plan = await mechanism.PlanAsync(request, RollbackReporter.Silent, CancellationToken.None);
        await lab.UpgradeAsync("good-1.4.0"); // someone runs helm upgrade in between

        RollbackResult result = await mechanism.ApplyAsync(request, plan, RollbackReporter.Silent, CancellationToken.None);

        Assert.Equal(RollbackOutcome.Failed, result.Outcome);
        Assert.Equal("RollbackPlanChanged", result.Error?.ErrorId);
        Assert.Equal(KfmErrorKind.ResourceBusy, result.Error?.Kind);
        Assert.Empty(result.Changes);
        Assert.Equal(5, (await lab.ReleasesAsync()).Count);
    }

    [Fact]
    public async Task ConfigValuesNeverAppearInPlanResultOrErrors()
    {
        await using EngineLab lab = await HelmLab.StartAsync();
        await lab.FreezeAsync("INC-1");
        var mechanism = lab.Mechanism();
        var request = lab.Request();
        MechanismPlan plan = await mechanism.PlanAsync(request, RollbackReporter.Silent, CancellationToken.None);
        var said = new List<string>();
        var reporter = new RollbackReporter { Verbose = said.Add, Timeline = (role, text) => said.Add(text), Progress = (text, _) => said.Add(text) };
        RollbackResult applied = await mechanism.ApplyAsync(request, plan, reporter, CancellationToken.None);
        RollbackResult result = await mechanism.AwaitAsync(request, applied, reporter, CancellationToken.None);
        await lab.UpgradeAsync("good-1.5.1", replicas: 5);
        var refused = await Assert.ThrowsAsync<KfmException>(() => lab.Mechanism().PlanAsync(lab.Request(), RollbackReporter.Silent, CancellationToken.None));

        string everything = string.Join("\n", plan.Changes.Select(c => c.ToString()).Concat(result.Changes.Select(c => c.ToString()))
            .Concat(said).Append(plan.Summary).Append(result.Detail ?? "").Append(refused.Message));
        Assert.Contains("config: sha256:", everything); // the values are described, by hash
        Assert.DoesNotContain(HelmSeed.CanaryValue, everything);
        // ...and yet copied faithfully into the new revision.
        Assert.Equal(HelmSeed.CanaryValue, (await lab.ReleasesAsync())[5].Release.Json["config"]!["auth"]!["apiKey"]!.GetValue<string>());
    }
}
