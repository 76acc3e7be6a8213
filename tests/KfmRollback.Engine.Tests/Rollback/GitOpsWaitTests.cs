using KfmRollback.Engine.Tests.Support;
using KfmRollback.Engine.Adapters.GitOpsControllers;
using KfmRollback.Engine.Adapters.PullRequests;
using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Adapters.Kubernetes;
using System.Text.Json.Nodes;
using k8s;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Freeze;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Tests.GitOps;
using KfmRollback.Lab;

namespace KfmRollback.Engine.Tests.Rollback;

/// <summary>
/// The preferred path end to end on the lab (issue 11): Argo CD deploys from a real bare repository,
/// a bad commit is deployed, the incident freezes, the GitOps rollback PR (provider none) is merged,
/// one pinned sync deploys exactly the merge, the rollout completes, and the freeze is still on.
/// </summary>
public sealed class GitOpsWaitTests : IAsyncLifetime
{
    private const string File = "apps/api/kustomization.yaml";
    private static readonly ImageCatalogue Images = new();
    private readonly GitTestRepo _repo = new(seed: false);
    private EngineLab _lab = null!;
    private readonly List<string> _timeline = new();

    private static string Digest(string name) => Images.Get(name).Digest;

    private static string Kustomization(string digest) => GitTestRepo.Kustomization(digest).Replace("registry.example.test/kfm/api", ImageCatalogue.KfmRepo);

    public async Task InitializeAsync()
    {
        _repo.Write(File, Kustomization(Digest("good-1.5.1")));
        _repo.Commit("deploy api 1.5.1");
        _repo.Write(File, Kustomization(Digest("bad-5xx")));
        _repo.Commit("deploy api 1.6.0");
        _repo.Push();
        string gitops = $"{{ path: {_repo.Clone()}, branch: main, file: {File}, kind: kustomize, image_name: kfm-api, pr: {{ provider: none, auto_merge: true, required_approvals: 0, poll_interval: 100ms }} }}";
        _lab = await EngineLab.StartAsync(new LabSetup { Environment = c => c.Responder(gitops: gitops) });
        await Patch(new JsonObject { ["spec"] = new JsonObject { ["source"] = new JsonObject { ["repoURL"] = _repo.Bare, ["path"] = "apps/api", ["targetRevision"] = "main" } } });
        await Until(async () => await Image() == Images.Get("bad-5xx").Image, "Argo deploys the bad commit from Git");
        await new ControllerFreeze(new ArgoCdApplication(_lab.Client, "argocd", "kfm-api"), "lab").FreezeAsync(new FreezeRequest("INC-11", "alice", "5xx after deploy", DateTimeOffset.UtcNow), false, CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _lab.DisposeAsync();
        _repo.Dispose();
    }

    private Task Patch(JsonObject patch) => LabCustomObjects.PatchAsync(_lab.Client, CustomObjectRef.Application("argocd", "kfm-api"), patch);

    private Task<JsonObject> App() => LabCustomObjects.GetAsync(_lab.Client, CustomObjectRef.Application("argocd", "kfm-api"));

    private async Task<string?> Image() => (await _lab.Client.AppsV1.ReadNamespacedDeploymentAsync("kfm-api", "kfm")).Spec.Template.Spec.Containers[0].Image;

    private static async Task Until(Func<Task<bool>> condition, string what)
    {
        var end = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < end, "timed out: " + what);
            await Task.Delay(100);
        }
    }

    private RollbackEngine Engine() => _lab.RollbackEngine();

    private RollbackReporter Reporter => new() { Timeline = (role, text) => { lock (_timeline) _timeline.Add($"{role} {text}"); } };

    private RollbackRequest Request(bool wait, MergeStrategy? merge = null, int timeoutSeconds = 60) => new()
    {
        Environment = _lab.Environment,
        Method = RollbackMethod.GitOps,
        IncidentId = "INC-11",
        Actor = "alice",
        Reason = "5xx after deploy",
        Wait = wait,
        MergeWith = merge,
        Timeout = TimeSpan.FromSeconds(timeoutSeconds),
    };

    private async Task<RollbackResult> Invoke(RollbackRequest request)
    {
        var engine = Engine();
        var plan = await engine.PlanAsync(request, Reporter, CancellationToken.None);
        return await engine.RunAsync(request, plan, Reporter, CancellationToken.None);
    }

    private async Task AssertFrozen()
    {
        var app = await App();
        Assert.Null(app["spec"]?["syncPolicy"]?["automated"]);
        Assert.True((await new ControllerFreeze(new ArgoCdApplication(_lab.Client, "argocd", "kfm-api"), "lab").GetAsync(CancellationToken.None)).Frozen);
    }

    [Fact]
    public async Task MergedRollbackIsDeployedByOnePinnedSync_AfterATimeoutLeftTheIncidentFrozen()
    {
        var pending = await Invoke(Request(wait: false));
        Assert.Equal(RollbackOutcome.PendingMerge, pending.Outcome);

        // Nobody merges: the wait times out with a clear error, nothing was deployed, still frozen.
        var timedOut = await Engine().AwaitAsync(Request(wait: true, timeoutSeconds: 1), pending, Reporter, CancellationToken.None);
        Assert.Equal(RollbackOutcome.Failed, timedOut.Outcome);
        Assert.Equal(GitOpsErrorIds.WaitTimeout, timedOut.Error!.ErrorId);
        Assert.Contains("stays frozen", timedOut.Error.Message);
        Assert.Equal(Images.Get("bad-5xx").Image, await Image());
        await AssertFrozen();

        // Wait-KfmRollback -MergeWith Squash: merged (fast-forward), one sync pinned to it, rolled out.
        var done = await Engine().AwaitAsync(Request(wait: true, MergeStrategy.Squash), pending, Reporter, CancellationToken.None);
        Assert.True(done.Outcome == RollbackOutcome.Succeeded, done.Error?.Message ?? done.Detail);
        Assert.Equal(pending.Commit, done.MergeCommit);
        Assert.Equal(_repo.RemoteBranchTip("main"), done.MergeCommit);
        Assert.Equal(done.MergeCommit, done.ReconciledRevision);
        Assert.Equal(Images.Get("good-1.5.1").Image, await Image());
        Assert.Equal(new[] { "merge", "reconcile", "rollout", "healthy" }, done.Phases.Select(p => p.Name));
        Assert.NotNull(done.MergedAt);
        Assert.NotNull(done.ReconciledAt);
        var app = await App();
        Assert.Equal(done.MergeCommit, app["status"]!["operationState"]!["syncResult"]!["revision"]!.GetValue<string>());
        Assert.Equal("alice", app["status"]!["operationState"]!["operation"]!["initiatedBy"]!["username"]!.GetValue<string>());
        await AssertFrozen();
        Assert.Contains(_timeline, l => l.Contains("one sync operation pinned to " + done.MergeCommit![..12]));
        Assert.Contains(_timeline, l => l.Contains("pull request merged as"));
    }

    [Fact]
    public async Task InvokeWaitFailsWhenTheControllerDeploysAnotherRevision()
    {
        var pending = await Invoke(Request(wait: false));
        // A reviewer merges by hand, then someone pushes another deploy on top and auto-sync is back on.
        Git.Run(_repo.Bare, "update-ref", "refs/heads/main", pending.Commit!);
        Git.Run(_repo.Seed, "pull", "-q", "origin", "main");
        _repo.Write(File, Kustomization(Digest("bad-latency")));
        _repo.Commit("deploy api 1.6.0-slow");
        _repo.Push();
        await new ControllerFreeze(new ArgoCdApplication(_lab.Client, "argocd", "kfm-api"), "lab").ThawAsync(new FreezeRequest("INC-11", "alice", "thaw", DateTimeOffset.UtcNow), false, CancellationToken.None);

        var result = await Engine().AwaitAsync(Request(wait: true), pending, Reporter, CancellationToken.None);
        Assert.Equal(RollbackOutcome.Failed, result.Outcome);
        Assert.Equal(GitOpsErrorIds.ReconciledOtherRevision, result.Error!.ErrorId);
        Assert.Equal(pending.Commit, result.MergeCommit);
    }

    [Fact]
    public async Task PullRequestClosedUnmergedFails()
    {
        var pending = await Invoke(Request(wait: false));
        Git.Run(_repo.Bare, "branch", "-D", pending.Branch!);
        var result = await Engine().AwaitAsync(Request(wait: true), pending, Reporter, CancellationToken.None);
        Assert.Equal(RollbackOutcome.Failed, result.Outcome);
        Assert.Equal(GitOpsErrorIds.PullRequestClosed, result.Error!.ErrorId);
        Assert.Null(result.MergeCommit);
        await AssertFrozen();
    }

    [Fact]
    public async Task MergeWithNeedsAutoMergeAndWait()
    {
        var noWait = Assert.Throws<KfmException>(() => RollbackRules.Validate(Request(wait: false, MergeStrategy.Merge), new PolicySafeText()));
        Assert.Equal("RollbackMergeNeedsWait", noWait.ErrorId);
        var cluster = Assert.Throws<KfmException>(() => RollbackRules.Validate(Request(wait: true, MergeStrategy.Merge) with { Method = RollbackMethod.Cluster }, new PolicySafeText()));
        Assert.Equal("RollbackMergeNeedsGitOps", cluster.ErrorId);
        await Task.CompletedTask;
    }
}
