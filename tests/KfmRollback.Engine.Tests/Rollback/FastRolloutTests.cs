using KfmRollback.Engine.Tests.Support;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Freeze;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Rollback.Cluster;
using KfmRollback.Engine.Rollback.Preflight;
using Xunit;

namespace KfmRollback.Engine.Tests.Rollback;

/// <summary>-Fast on the lab: the raise planned and sent with the rollback, the quota check, the restore, and a strategy changed behind its back.</summary>
public sealed class FastRolloutTests
{
    private static RollbackRequest Request(EngineLab lab, bool fast = true) => new()
    {
        Environment = lab.Environment,
        Method = RollbackMethod.Cluster,
        IncidentId = "INC-F",
        Actor = "tester",
        Reason = "bad build",
        Wait = true,
        Fast = fast,
        Timeout = TimeSpan.FromSeconds(60),
    };

    private sealed class Seen
    {
        public List<string> Warnings { get; } = new();
        public List<string> Timeline { get; } = new();
        public RollbackReporter Reporter => new()
        {
            Warning = w => { lock (Warnings) Warnings.Add(w); },
            Timeline = (role, text) => { lock (Timeline) Timeline.Add($"{role} {text}"); },
        };
    }

    /// <summary>A lab whose Argo CD is frozen, as the runbook's step 1 leaves it: self-heal would otherwise revert the rollback mid-test.</summary>
    private static async Task<EngineLab> FrozenLabAsync()
    {
        EngineLab lab = await EngineLab.StartAsync();
        await lab.FreezeAsync("INC-F");
        return lab;
    }

    private static ClusterRollbackMechanism Mechanism(EngineLab lab) => new(lab.Client, Array.Empty<IFreezeMechanism>());

    private static async Task<V1Deployment> Read(EngineLab lab) => await lab.Client.AppsV1.ReadNamespacedDeploymentAsync("kfm-api", "kfm");

    private static string? Strategy(V1Deployment d, string field) =>
        JsonNode.Parse(KubernetesJson.Serialize(d.Spec.Strategy))!["rollingUpdate"]?[field]?.ToJsonString();

    private static async Task QuotaAsync(EngineLab lab, Dictionary<string, string> hard)
    {
        await lab.Client.CoreV1.CreateNamespacedResourceQuotaAsync(new V1ResourceQuota
        {
            Metadata = new V1ObjectMeta { Name = "compute", NamespaceProperty = "kfm" },
            Spec = new V1ResourceQuotaSpec { Hard = hard.ToDictionary(h => h.Key, h => new ResourceQuantity(h.Value)) },
        }, "kfm");
        for (int i = 0; i < 400; i++)
        {
            V1ResourceQuota q = await lab.Client.CoreV1.ReadNamespacedResourceQuotaAsync("compute", "kfm");
            if (q.Status?.Used?.Count == hard.Count)
            {
                return;
            }
            await Task.Delay(25);
        }
        Assert.Fail("the lab's quota controller never reported usage");
    }

    [Fact]
    public async Task Plan_puts_the_raise_in_the_rollback_patch_and_plans_the_restore_sending_nothing()
    {
        await using var lab = await FrozenLabAsync();
        int before = lab.Host.Audit.Events.Count(e => !e["requestURI"]!.GetValue<string>().Contains("dryRun=All") && e["verb"]!.GetValue<string>() is "patch" or "create" or "update");

        var plan = (ClusterMechanismPlan)await Mechanism(lab).PlanAsync(Request(lab), RollbackReporter.Silent, CancellationToken.None);

        JsonArray patch = plan.Patch!;
        Assert.Contains(patch, op => (string?)op!["path"] == "/spec/strategy/rollingUpdate/maxSurge" && op["value"]!.ToJsonString() == "\"100%\"");
        // maxUnavailable 25% of 3 pods rounds down to 0 already: only maxSurge changes.
        Assert.DoesNotContain(patch, op => (string?)op!["path"] == "/spec/strategy/rollingUpdate/maxUnavailable");
        Assert.Contains(patch, op => (string?)op!["path"] == "/metadata/annotations/kfm.dev~1fast-rollout");
        Assert.Equal(new[] { "image", "rollout" }, plan.Changes.Select(c => c.Surface));
        Assert.Contains("\"25%\"", plan.Changes[1].Content);
        Assert.Equal(PreflightVerdict.Passed, plan.Fast!.Check.Verdict);
        Assert.Contains("maxSurge 25% → 100%", plan.Summary);
        IReadOnlyList<PreflightCheck> checks = await Mechanism(lab).DryRunAsync(Request(lab), plan, CancellationToken.None);
        Assert.All(checks, c => Assert.NotEqual(PreflightVerdict.Failed, c.Verdict));
        Assert.Contains(checks, c => c.Check == FastRollout.CheckName);
        Assert.Equal(before, lab.Host.Audit.Events.Count(e => !e["requestURI"]!.GetValue<string>().Contains("dryRun=All") && e["verb"]!.GetValue<string>() is "patch" or "create" or "update"));
        Assert.False((await Read(lab)).Metadata.Annotations.ContainsKey(FastRollout.Annotation));
    }

    [Fact]
    public async Task Fast_rollout_surges_every_pod_at_once_then_restores_the_deployments_own_strategy_on_the_record()
    {
        await using var lab = await FrozenLabAsync();
        var seen = new Seen();
        var mechanism = Mechanism(lab);
        RollbackRequest request = Request(lab);
        var plan = (ClusterMechanismPlan)await mechanism.PlanAsync(request, seen.Reporter, CancellationToken.None);
        RollbackResult applied = await mechanism.ApplyAsync(request, plan, seen.Reporter, CancellationToken.None);
        V1Deployment raised = await Read(lab);
        Assert.Equal("\"100%\"", Strategy(raised, "maxSurge"));
        Assert.Equal("\"25%\"", Strategy(raised, "maxUnavailable"));
        Assert.Contains("\"run\"", raised.Metadata.Annotations[FastRollout.Annotation]);

        RollbackResult done = await mechanism.AwaitAsync(request, applied, seen.Reporter, CancellationToken.None);

        Assert.Equal(RollbackOutcome.Succeeded, done.Outcome);
        V1Deployment after = await Read(lab);
        Assert.Equal("\"25%\"", Strategy(after, "maxSurge"));
        Assert.Equal("\"25%\"", Strategy(after, "maxUnavailable"));
        Assert.False(after.Metadata.Annotations.ContainsKey(FastRollout.Annotation));
        Assert.Equal(after.Spec.Replicas, after.Status.UpdatedReplicas);
        // The whole target set was started in one step (the default 25% surge starts one pod of three).
        var events = await lab.Client.CoreV1.ListNamespacedEventAsync("kfm");
        Assert.Contains(events.Items, e => e.Reason == "ScalingReplicaSet" && e.Message == $"Scaled up replica set {applied.RolloutTarget} from 0 to 3");
        Assert.Contains(seen.Timeline, t => t.StartsWith("OPS -Fast: raised maxSurge 25% → 100% on deployment kfm/kfm-api for this rollback, restored once it converges (a pod of the target was admitted", StringComparison.Ordinal) && t.EndsWith("by tester: bad build", StringComparison.Ordinal));
        Assert.Contains(seen.Timeline, t => t.Contains("Restored the rollout strategy of kfm/kfm-api") && t.Contains("maxSurge 100% → 25%") && t.Contains("by tester"));
        Assert.Equal("json-patch (strategy restore)", done.Changes.Last().Action);
        Assert.Equal("rollout", done.Changes.Last().Surface);
        Assert.Empty(seen.Warnings);
    }

    [Fact]
    public async Task A_quota_without_room_for_the_surge_falls_back_to_the_own_strategy_with_a_warning_and_is_never_exceeded()
    {
        await using var lab = await FrozenLabAsync();
        await QuotaAsync(lab, new() { ["pods"] = "4" });
        var seen = new Seen();
        var mechanism = Mechanism(lab);
        RollbackRequest request = Request(lab);

        var plan = (ClusterMechanismPlan)await mechanism.PlanAsync(request, seen.Reporter, CancellationToken.None);

        Assert.False(plan.Fast!.Raises);
        Assert.Equal(PreflightVerdict.Skipped, plan.Fast.Check.Verdict);
        Assert.DoesNotContain(plan.Patch!, op => ((string?)op!["path"] ?? "").StartsWith("/spec/strategy", StringComparison.Ordinal));
        Assert.Single(plan.Changes);
        string warning = Assert.Single(seen.Warnings);
        Assert.Contains("-Fast falls back", warning);
        Assert.Contains("quota compute has room for 1 more pods", warning);

        RollbackResult done = await mechanism.AwaitAsync(request, await mechanism.ApplyAsync(request, plan, seen.Reporter, CancellationToken.None), seen.Reporter, CancellationToken.None);
        Assert.Equal(RollbackOutcome.Succeeded, done.Outcome);
        V1Deployment after = await Read(lab);
        Assert.Equal("\"25%\"", Strategy(after, "maxSurge"));
        // The own strategy's one-pod surge fits (a pod still terminating may hold the quota a moment: the ReplicaSet retries, as on a real cluster);
        // nothing ever wrote a raised strategy, and the apiserver kept the namespace within its quota.
        Assert.DoesNotContain(lab.Host.Audit.Events, e => e["objectRef"]!["resource"]!.GetValue<string>() == "deployments" && (e["requestObject"]?.ToJsonString() ?? "").Contains("strategy"));
        Assert.True(lab.Host.Store.List(KfmRollback.Lab.Api.Resources.Pods, "kfm").Count <= 4);
    }

    [Fact]
    public async Task A_pod_the_quota_admission_refuses_in_the_dry_run_falls_back_with_the_apiservers_words()
    {
        await using var lab = await FrozenLabAsync();
        await QuotaAsync(lab, new() { ["requests.cpu"] = "4" });
        var seen = new Seen();

        var plan = (ClusterMechanismPlan)await Mechanism(lab).PlanAsync(Request(lab), seen.Reporter, CancellationToken.None);

        Assert.False(plan.Fast!.Raises);
        Assert.Contains("failed quota: compute: must specify requests.cpu", plan.Fast.Why);
        Assert.Contains("must specify requests.cpu", Assert.Single(seen.Warnings));
    }

    [Fact]
    public async Task Restore_puts_back_only_what_the_module_changed_when_someone_changed_the_strategy_meanwhile()
    {
        await using var lab = await FrozenLabAsync();
        var seen = new Seen();
        var mechanism = Mechanism(lab);
        RollbackRequest request = Request(lab);
        // The Deployment's own strategy lets one pod be unavailable: -Fast raises both fields.
        await lab.Client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch("{\"spec\":{\"strategy\":{\"rollingUpdate\":{\"maxUnavailable\":1}}}}", V1Patch.PatchType.MergePatch), "kfm-api", "kfm");
        var plan = (ClusterMechanismPlan)await mechanism.PlanAsync(request, seen.Reporter, CancellationToken.None);
        Assert.Contains("maxUnavailable 1 → 0", plan.Summary);
        RollbackResult applied = await mechanism.ApplyAsync(request, plan, seen.Reporter, CancellationToken.None);
        Assert.Equal("0", Strategy(await Read(lab), "maxUnavailable"));

        // Someone sets maxSurge to their own value while the rollout runs.
        await lab.Client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch("{\"spec\":{\"strategy\":{\"rollingUpdate\":{\"maxSurge\":2}}}}", V1Patch.PatchType.MergePatch), "kfm-api", "kfm");

        RollbackResult done = await mechanism.AwaitAsync(request, applied, seen.Reporter, CancellationToken.None);

        Assert.Equal(RollbackOutcome.Succeeded, done.Outcome);
        V1Deployment after = await Read(lab);
        Assert.Equal("2", Strategy(after, "maxSurge"));
        Assert.Equal("1", Strategy(after, "maxUnavailable"));
        Assert.False(after.Metadata.Annotations.ContainsKey(FastRollout.Annotation));
        string warning = Assert.Single(seen.Warnings);
        Assert.Contains("maxSurge is 2, changed since the module set maxSurge 100%; left as it is", warning);
        Assert.Contains(seen.Timeline, t => t.Contains("Restored the rollout strategy") && t.Contains("maxUnavailable 0 → 1") && !t.Contains("maxSurge 100%"));
    }

    [Fact]
    public async Task A_raise_left_by_a_killed_run_is_restored_by_the_next_await_even_without_Fast()
    {
        await using var lab = await FrozenLabAsync();
        var mechanism = Mechanism(lab);
        var plan = (ClusterMechanismPlan)await mechanism.PlanAsync(Request(lab), RollbackReporter.Silent, CancellationToken.None);
        RollbackResult applied = await mechanism.ApplyAsync(Request(lab), plan, RollbackReporter.Silent, CancellationToken.None);
        // The process dies here: the raise and its record are on the Deployment. A later run awaits the same rollout.
        var seen = new Seen();
        RollbackResult done = await new ClusterRollbackMechanism(lab.Client, Array.Empty<IFreezeMechanism>()).AwaitAsync(Request(lab, fast: false), applied, seen.Reporter, CancellationToken.None);

        Assert.Equal(RollbackOutcome.Succeeded, done.Outcome);
        V1Deployment after = await Read(lab);
        Assert.Equal("\"25%\"", Strategy(after, "maxSurge"));
        Assert.False(after.Metadata.Annotations.ContainsKey(FastRollout.Annotation));
    }
}
