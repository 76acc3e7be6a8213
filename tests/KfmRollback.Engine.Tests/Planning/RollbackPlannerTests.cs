using KfmRollback.Engine.Receipts;
using k8s;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Planning;
using KfmRollback.Engine.Refs;

namespace KfmRollback.Engine.Tests.Planning;

/// <summary>The runbook's decision tree against the lab: each branch, and each way it must refuse.</summary>
public sealed class RollbackPlannerTests
{
    private const string PolicyInConfigMap = "configmap: kfm-api-config\nkey: policy_bundle";

    private static async Task<KfmException> Refused(Task plan, string errorId)
    {
        var ex = await Assert.ThrowsAsync<KfmException>(() => plan);
        Assert.True(ex.ErrorId == errorId, $"expected {errorId}, got {ex.ErrorId}: {ex.Message}");
        return ex;
    }

    private static PlanEvidence Only(RollbackDecision plan, string surface, string itemStart) =>
        Assert.Single(plan.Evidence, e => e.Surface == surface && e.Item.StartsWith(itemStart, StringComparison.Ordinal));

    [Fact]
    public async Task Image_only_deploy_plans_an_image_rollback_to_the_previous_revision()
    {
        await using var lab = await PlanningLab.StartFrozenAsync(PolicyInConfigMap);
        var environment = lab.Environment;
        await lab.DeployAsync("bad-5xx");

        var gitDown = new KfmException("GitOpsRepositoryUnavailable", KfmErrorKind.ObjectNotFound, "gitops.path is not a git repository.");
        RollbackDecision plan = await lab.Planner(environment, _ => Task.FromException<ApiRef>(gitDown)).PlanAsync(lab.Request(), CancellationToken.None);

        Assert.Equal(new[] { "Image" }, plan.Surface);
        Assert.Equal(lab.Digest("bad-5xx"), plan.CurrentRef);
        Assert.Equal(lab.Digest("good-1.5.1"), plan.RollbackTargetRef);
        Assert.Null(plan.ToRef); // Cluster targets the revision, so the plan binds into one parameter set
        Assert.Equal(4, plan.ToRevision);
        Assert.Equal(5, plan.CurrentRevision);
        Assert.Equal("previous-revision", plan.LastKnownGoodSource);
        Assert.True(plan.MostRecentDeploySuspect);
        Assert.False(plan.DeployAfterIncidentStart);
        Assert.Equal("Cluster", plan.Method);
        Assert.Contains("not a git repository", plan.MethodReason);
        Assert.False(Only(plan, "Config", "configmap kfm/kfm-api-config").Changed);
        Assert.False(Only(plan, "Policy", "policy bundle ref").Changed);
        Assert.Equal("INC-PLAN", plan.IncidentId);

        // A deploy after the incident began is not its cause: reported, not refused.
        var late = lab.Request() with { IncidentStartedAt = plan.LastDeployAt.AddMinutes(-1) };
        RollbackDecision after = await lab.Planner(environment).PlanAsync(late, CancellationToken.None);
        Assert.True(after.DeployAfterIncidentStart);
        Assert.False(after.MostRecentDeploySuspect);
        Assert.Contains("not the cause", after.Summary);

        // Revision 3 never ran under a freeze: what its configuration held is unknown.
        var ex = await Refused(lab.Planner(environment).PlanAsync(lab.Request() with { ToRevision = 3 }, CancellationToken.None), RollbackPlanErrorIds.SnapshotMissing);
        Assert.Contains("configmap kfm/kfm-api-config", ex.Message);
        Assert.Contains("Start-KfmFreeze", ex.Message);

        await Refused(lab.Planner(environment).PlanAsync(lab.Request() with { IncidentStartedAt = null }, CancellationToken.None), RollbackPlanErrorIds.IncidentStartUnknown);
    }

    [Fact]
    public async Task Reused_config_name_with_new_content_is_a_config_change_shown_by_hash_only()
    {
        await using var lab = await PlanningLab.StartFrozenAsync(PolicyInConfigMap);
        var environment = lab.Environment;
        await lab.SetConfigAsync("log_level", "trace-canary-value");
        await lab.RestartAsync();

        RollbackDecision plan = await lab.Planner(environment, _ => Task.FromResult(new ApiRef { Environment = "lab", Source = RefSource.GitOps, CurrentImage = "x", CurrentRef = lab.Digest("good-1.5.1") }))
            .PlanAsync(lab.Request(), CancellationToken.None);

        Assert.Equal(new[] { "Config" }, plan.Surface);
        Assert.Null(plan.ToRef);
        Assert.Equal(4, plan.ToRevision);
        Assert.Equal("Cluster", plan.Method);
        Assert.Contains("-Revert", plan.MethodReason); // Git rolls config back only by reverting its commit
        PlanEvidence config = Only(plan, "Config", "configmap kfm/kfm-api-config");
        Assert.True(config.Changed);
        Assert.StartsWith("sha256:", config.Current);
        Assert.StartsWith("sha256:", config.LastKnownGood);
        Assert.False(Only(plan, "Image", "image digest").Changed);
        Assert.DoesNotContain(plan.Evidence, e => $"{e.Current}{e.LastKnownGood}{e.Source}".Contains("trace-canary-value"));
    }

    [Fact]
    public async Task Hash_suffixed_config_name_referenced_by_the_new_template_is_a_config_change()
    {
        await using var lab = await PlanningLab.StartFrozenAsync(null);
        var environment = lab.Environment;
        await lab.Client.CoreV1.CreateNamespacedConfigMapAsync(new k8s.Models.V1ConfigMap
        {
            Metadata = new k8s.Models.V1ObjectMeta { Name = "kfm-api-config-7f8d9", NamespaceProperty = "kfm" },
            Data = new Dictionary<string, string> { ["log_level"] = "debug" },
        }, "kfm");
        await lab.PatchDeploymentAsync("{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"api\",\"envFrom\":[{\"configMapRef\":{\"name\":\"kfm-api-config-7f8d9\"}}]}]}}}}");

        RollbackDecision plan = await lab.Planner(environment).PlanAsync(lab.Request(), CancellationToken.None);

        Assert.Equal(new[] { "Config" }, plan.Surface);
        PlanEvidence added = Only(plan, "Config", "configmap kfm/kfm-api-config-7f8d9");
        Assert.True(added.Changed);
        Assert.Null(added.LastKnownGood);
        Assert.Contains("new reference", added.Source);
        Assert.False(Assert.Single(plan.Evidence, e => e.Item == "configmap kfm/kfm-api-config").Changed);
        Assert.Equal("not compared: policy_surface is not configured", Only(plan, "Policy", "policy bundle ref").Source);
    }

    [Fact]
    public async Task Policy_bundle_change_and_OPA_wiring_drift_are_policy_changes()
    {
        await using var lab = await PlanningLab.StartAsync();
        var environment = lab.PlanningEnvironment(PolicyInConfigMap + $"\nopa_status_url: {lab.Host.KfmApiUrl}/v1/status");
        using var http = new HttpClient();
        await lab.FreezeSnapshotAsync(environment);
        string next = "kfm-policy@sha256-" + new string('b', 64);
        await lab.SetConfigAsync("policy_bundle", next);
        await lab.RestartAsync();

        RollbackDecision plan = await lab.Planner(environment, http: http).PlanAsync(lab.Request(), CancellationToken.None);

        Assert.Equal(new[] { "Policy" }, plan.Surface);
        PlanEvidence reference = Only(plan, "Policy", "policy bundle ref");
        Assert.Equal(next, reference.Current);
        Assert.Equal("kfm-policy@sha256-" + new string('a', 64), reference.LastKnownGood);
        PlanEvidence opa = Only(plan, "Policy", "OPA bundle kfm-policy active_revision");
        Assert.Equal("sha256:" + new string('b', 64), opa.Current);
        Assert.True(opa.Changed);
        Assert.False(Only(plan, "Config", "configmap kfm/kfm-api-config").Changed);

        // Back to the good bundle in the cluster, but OPA still serves another one: OPA wiring.
        await lab.SetConfigAsync("policy_bundle", "kfm-policy@sha256-" + new string('a', 64));
        lab.Host.KfmApi.SetOpaRevision("sha256:" + new string('c', 64));
        RollbackDecision wiring = await lab.Planner(environment, http: http).PlanAsync(lab.Request(), CancellationToken.None);
        Assert.Equal(new[] { "Policy" }, wiring.Surface);
        Assert.False(Only(wiring, "Policy", "policy bundle ref").Changed);
        Assert.True(Only(wiring, "Policy", "OPA bundle").Changed);

        lab.Host.KfmApi.SetOpaRevision(null);
        var unreachable = lab.PlanningEnvironment(PolicyInConfigMap + "\nopa_status_url: http://127.0.0.1:9/v1/status");
        await Refused(lab.Planner(unreachable, http: http).PlanAsync(lab.Request(), CancellationToken.None), RollbackPlanErrorIds.PolicyStatusUnavailable);
    }

    [Fact]
    public async Task Image_and_config_changed_together_plans_both()
    {
        await using var lab = await PlanningLab.StartFrozenAsync(PolicyInConfigMap);
        var environment = lab.Environment;
        await lab.SetConfigAsync("log_level", "warn");
        await lab.DeployAsync("bad-latency");

        RollbackDecision plan = await lab.Planner(environment).PlanAsync(lab.Request(), CancellationToken.None);

        Assert.Equal(new[] { "Image", "Config" }, plan.Surface);
        Assert.Equal(lab.Digest("good-1.5.1"), plan.RollbackTargetRef);
    }

    [Fact]
    public async Task Data_only_change_stops_with_the_dataset_and_catalog_runbooks()
    {
        await using var lab = await PlanningLab.StartFrozenAsync(PolicyInConfigMap);
        var environment = lab.Environment;
        // The API has run for hours before a new dataset version is published.
        lab.Host.Clock.Advance(TimeSpan.FromHours(3));
        string before = Lab.KfmApi.VersionId(Lab.KfmApi.Datasets[0]);
        string after = lab.Host.KfmApi.PublishDataset("kansas_counties", "2026-03");
        Assert.NotEqual(before, after);
        using var http = new HttpClient();
        http.DefaultRequestHeaders.Authorization = new("Bearer", lab.Host.PublicToken);
        Assert.Contains(after, await http.GetStringAsync($"{lab.Host.KfmApiUrl}/api/v1/datasets/kansas_counties"));

        var ex = await Refused(lab.Planner(environment).PlanAsync(lab.Request(), CancellationToken.None), RollbackPlanErrorIds.ApiUnchanged);

        Assert.Equal(KfmErrorKind.InvalidOperation, ex.Kind);
        Assert.Contains("did not change", ex.Message);
        Assert.Contains("data/catalog", ex.Message);
        Assert.Contains("docs/runbooks/data/rb-dataset-rollback.md", ex.Message);
        Assert.Contains("docs/runbooks/catalog/rb-catalog-recover.md", ex.Message);

        // Without a policy surface, "unchanged" cannot be concluded.
        await Refused(lab.Planner(lab.PlanningEnvironment()).PlanAsync(lab.Request(), CancellationToken.None), RollbackPlanErrorIds.Undetermined);
    }

    [Fact]
    public async Task No_last_known_good_is_refused()
    {
        await using var lab = await PlanningLab.StartAsync();
        var environment = lab.PlanningEnvironment(PolicyInConfigMap);
        await lab.PatchDeploymentAsync("{\"spec\":{\"revisionHistoryLimit\":0}}");
        DateTime until = DateTime.UtcNow.AddSeconds(30);
        while ((await lab.Client.AppsV1.ListNamespacedReplicaSetAsync("kfm")).Items.Count > 1 && DateTime.UtcNow < until)
        {
            await Task.Delay(50);
        }

        var ex = await Refused(lab.Planner(environment).PlanAsync(lab.Request(), CancellationToken.None), RollbackPlanErrorIds.NoLastKnownGood);

        Assert.Equal(KfmErrorKind.Ambiguous, ex.Kind);
        Assert.Contains("-ToRef", ex.Message);
        await Refused(lab.Planner(environment).PlanAsync(lab.Request() with { ToRef = lab.Digest("good-1.4.0") }, CancellationToken.None), RollbackPlanErrorIds.Undetermined);
    }
}
