using KfmRollback.Engine.Tests.Support;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Freeze;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Rollback.Cluster;
using KfmRollback.Engine.Rollback.Surfaces;
using Xunit;

namespace KfmRollback.Engine.Tests.Rollback;

/// <summary>The cluster mechanism through the engine, on an in-process lab: plan, apply exactly the plan, await.</summary>
public sealed class ClusterMechanismTests
{
    /// <summary>The lab with a second environment kfm-api-eu on the same cluster (its own Deployment).</summary>
    internal static readonly LabSetup EuFleet = new() { Environment = c => c.Responder().Fleet("kfm-api-eu") };

    private static RollbackRequest Request(EngineLab lab, RollbackSurfaces surfaces = RollbackSurfaces.Image, bool wait = false) => new()
    {
        Environment = lab.Environment,
        Method = RollbackMethod.Cluster,
        IncidentId = "INC-T",
        Actor = "tester",
        Reason = "test",
        Surfaces = surfaces,
        Wait = wait,
        Timeout = TimeSpan.FromSeconds(60),
    };


    // What the apiserver stored: the preflight's dry runs (audited with dryRun=All) change nothing.
    private static IReadOnlyList<JsonObject> Writes(EngineLab lab) =>
        lab.Host.Audit.Events.Where(e => e["objectRef"]!["resource"]!.GetValue<string>() != "leases" && e["responseStatus"]!["code"]!.GetValue<int>() < 300
            && !e["requestURI"]!.GetValue<string>().Contains("dryRun=All")).ToList();

    [Fact]
    public async Task Plan_sends_nothing_and_apply_sends_exactly_the_planned_patch()
    {
        await using var lab = await EngineLab.StartAsync();
        var mechanism = new ClusterRollbackMechanism(lab.Client, Array.Empty<IFreezeMechanism>());
        var request = Request(lab);
        int before = lab.Host.Audit.Events.Count;

        MechanismPlan plan = await mechanism.PlanAsync(request, RollbackReporter.Silent, CancellationToken.None);
        Assert.Equal(before, lab.Host.Audit.Events.Count);
        PlannedChange change = Assert.Single(plan.Changes);
        Assert.Equal(("image", "deployment kfm/kfm-api", "json-patch"), (change.Surface, change.Object, change.Action));

        RollbackResult result = await mechanism.ApplyAsync(request, plan, RollbackReporter.Silent, CancellationToken.None);
        Assert.Equal(RollbackOutcome.Succeeded, result.Outcome);
        JsonObject sent = Assert.Single(Writes(lab), e => e["verb"]!.GetValue<string>() == "patch");
        // What people see is the patch sent, through the one redaction (env values hashed); what is sent keeps the real template.
        // The resourceVersion precondition is left out: a status write between plan and apply moves it (Apply re-reads under the lease).
        static JsonNode? Ops(JsonNode? patch) => new JsonArray(patch!.AsArray().Where(op => op!["op"]!.GetValue<string>() != "test").Select(op => op!.DeepClone()).ToArray());
        Assert.True(JsonNode.DeepEquals(Ops(JsonNode.Parse(change.Content)), Ops(KfmRollback.Engine.Configuration.Redactors.For(request.Environment).Json(sent["requestObject"]))), "the patch sent is the patch planned");
        Assert.Equal(plan.Changes.Select(c => (c.Surface, c.Object, c.Action, Ops(JsonNode.Parse(c.Content))!.ToJsonString())),
            result.Changes.Select(c => (c.Surface, c.Object, c.Action, Ops(JsonNode.Parse(c.Content))!.ToJsonString())));
        Assert.Equal(plan.TargetRef, result.RollbackTargetRef);
    }

    [Fact]
    public async Task Apply_refuses_and_sends_nothing_when_the_deployment_moved_after_planning()
    {
        await using var lab = await EngineLab.StartAsync();
        var mechanism = new ClusterRollbackMechanism(lab.Client, Array.Empty<IFreezeMechanism>());
        var request = Request(lab);
        MechanismPlan plan = await mechanism.PlanAsync(request, RollbackReporter.Silent, CancellationToken.None);

        // Someone deploys another build between the plan an operator approved and the apply.
        string other = lab.Host.Images.Get("good-1.4.0").Image;
        await lab.SetImageAsync(other);
        int writes = Writes(lab).Count;

        RollbackResult result = await mechanism.ApplyAsync(request, plan, RollbackReporter.Silent, CancellationToken.None);
        Assert.Equal(RollbackOutcome.Failed, result.Outcome);
        Assert.Equal("RollbackPlanChanged", result.Error!.ErrorId);
        Assert.Equal(KfmErrorKind.ResourceBusy, result.Error.Kind);
        Assert.Empty(result.Changes);
        Assert.Equal(writes, Writes(lab).Count);
    }

    [Fact]
    public async Task Await_watches_the_rollout_to_the_target_replica_set()
    {
        await using var lab = await EngineLab.StartAsync();
        var engine = lab.RollbackEngine();
        // Argo CD self-heals in the lab: the engine refuses until it is frozen, and then the rollback stays.
        await Assert.ThrowsAsync<KfmException>(() => engine.PlanAsync(Request(lab), RollbackReporter.Silent, CancellationToken.None));
        await lab.FreezeAsync("INC-T");
        var request = Request(lab, wait: true);
        MechanismPlan plan = await engine.PlanAsync(request, RollbackReporter.Silent, CancellationToken.None);
        RollbackResult result = await engine.RunAsync(request, plan, RollbackReporter.Silent, CancellationToken.None);
        Assert.Equal(RollbackOutcome.Succeeded, result.Outcome);
        V1Deployment deployment = await lab.Client.AppsV1.ReadNamespacedDeploymentAsync("kfm-api", "kfm");
        Assert.Equal(deployment.Spec.Replicas, deployment.Status.UpdatedReplicas);
        Assert.Equal(plan.TargetRef, ImageRefs.DigestOf(KfmRollback.Engine.Adapters.Kubernetes.PodTemplates.ContainerImage(deployment.Spec.Template, "api", "kfm-api")));
    }

    [Fact]
    public async Task A_fleet_asks_each_permission_of_a_namespace_once_and_every_environment_is_still_checked()
    {
        await using var lab = await EngineLab.StartAsync(EuFleet);
        await FleetWaveTests.DeployTwiceAsync(lab, "kfm-api-eu");
        int writes = Writes(lab).Count;
        var reviews = new CountReviews();
        k8s.IKubernetes client = lab.NewClient("lab", reviews);
        var engine = new RollbackEngine(new RollbackMechanisms(_ => client, lab.Freezes()));
        var requests = new[]
        {
            Request(lab, wait: true) with { Force = true, ForceReason = "drill" },
            Request(lab, wait: true) with { Environment = lab.Config.GetEnvironment("kfm-api-eu"), Force = true, ForceReason = "drill" },
        };
        IReadOnlyList<FleetPlan> plans = await engine.PlanManyAsync(requests, 4, _ => RollbackReporter.Silent, CancellationToken.None);
        Assert.All(plans, p => Assert.True(p.Plan is not null, p.Error?.Message));
        // Both environments are in namespace kfm with one client: each permission is asked once, not once per environment.
        int distinct = new ClusterRollbackMechanism(lab.Client, Array.Empty<IFreezeMechanism>()).Requirements(requests[0]).Distinct().Count();
        Assert.Equal(distinct, reviews.Count);

        // A denied permission refuses every environment of the fleet, the shared answer included.
        var denied = new CountReviews(deny: "leases");
        k8s.IKubernetes refused = lab.NewClient("lab", denied);
        var refusing = new RollbackEngine(new RollbackMechanisms(_ => refused, lab.Freezes()));
        plans = await refusing.PlanManyAsync(requests, 4, _ => RollbackReporter.Silent, CancellationToken.None);
        Assert.All(plans, p => Assert.Equal("RollbackAccessDenied", p.Error?.ErrorId));
        Assert.Equal(writes, Writes(lab).Count);
    }

    /// <summary>Counts the access reviews sent; with <c>deny</c>, answers "not allowed" for that resource as the apiserver would.</summary>
    private sealed class CountReviews(string? deny = null) : DelegatingHandler
    {
        private int _count;
        public int Count => _count;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (!request.RequestUri!.AbsolutePath.EndsWith("/selfsubjectaccessreviews", StringComparison.Ordinal))
            {
                return await base.SendAsync(request, cancellationToken);
            }
            Interlocked.Increment(ref _count);
            HttpResponseMessage response = await base.SendAsync(request, cancellationToken);
            if (deny is null || !(await request.Content!.ReadAsStringAsync(cancellationToken)).Contains($"\"resource\":\"{deny}\"", StringComparison.Ordinal))
            {
                return response;
            }
            JsonObject review = JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken))!.AsObject();
            review["status"] = new JsonObject { ["allowed"] = false, ["reason"] = "denied by the test" };
            response.Content = new StringContent(review.ToJsonString(), System.Text.Encoding.UTF8, "application/json");
            return response;
        }
    }

    [Fact]
    public async Task A_fleet_is_refused_whole_when_one_environment_cannot_be_planned()
    {
        await using var lab = await EngineLab.StartAsync(EuFleet);
        // Argo CD is not frozen in the lab: every environment's plan refuses unless forced.
        var engine = lab.RollbackEngine();
        var requests = new[]
        {
            Request(lab) with { Force = true, ForceReason = "drill" },
            Request(lab) with { Environment = lab.Config.GetEnvironment("kfm-api-eu") },
        };
        IReadOnlyList<FleetPlan> plans = await engine.PlanManyAsync(requests, 4, _ => RollbackReporter.Silent, CancellationToken.None);
        Assert.NotNull(plans[0].Plan);
        Assert.Equal("RollbackGitOpsNotFrozen", plans[1].Error?.ErrorId ?? "");
        Assert.Empty(Writes(lab));
    }
}

/// <summary>Fleets in waves on the lab: a failed verification stops the fleet before the next wave.</summary>
public sealed class FleetWaveTests
{
    [Fact]
    public async Task A_wave_that_fails_verification_stops_the_fleet_before_the_next_wave()
    {
        await using var lab = await EngineLab.StartAsync(ClusterMechanismTests.EuFleet);
        await DeployTwiceAsync(lab, "kfm-api-eu");
        var engine = lab.RollbackEngine();
        RollbackRequest Request(string environment) => new()
        {
            Environment = lab.Config.GetEnvironment(environment), Method = RollbackMethod.Cluster, Actor = "tester", IncidentId = "INC-W",
            Force = true, ForceReason = "lab: waves test", Wait = true, Timeout = TimeSpan.FromSeconds(60),
        };
        var plans = await engine.PlanManyAsync(new[] { Request("lab"), Request("kfm-api-eu") }, 2, _ => RollbackReporter.Silent, CancellationToken.None);
        var results = new List<RollbackResult>();
        var verified = new List<string>();
        int euWrites = EuPatches(lab);

        var e = await Assert.ThrowsAsync<KfmException>(() => engine.RunWavesAsync(new[] { new[] { plans[0] }, new[] { plans[1] } }, 2, TimeSpan.FromMilliseconds(50),
            (environment, _) => { verified.Add(environment.Name); return Task.FromResult<string?>("A.error-ratio fail"); },
            _ => RollbackReporter.Silent, results.Add, _ => { }, CancellationToken.None));

        Assert.Equal("FleetVerificationFailed", e.ErrorId);
        Assert.Contains("Wave 1 failed verification in lab: A.error-ratio fail", e.Message);
        Assert.Contains("Waves 2-2 were not started", e.Message);
        Assert.Equal(new[] { "lab" }, results.Select(r => r.Environment));
        Assert.Equal(new[] { "lab" }, verified);
        Assert.Equal(euWrites, EuPatches(lab));
    }

    private static int EuPatches(EngineLab lab) =>
        lab.Host.Audit.Events.Count(a => a["verb"]!.GetValue<string>() == "patch" && a["objectRef"]!["name"]!.GetValue<string>() == "kfm-api-eu"
            && !a["requestURI"]!.GetValue<string>().Contains("dryRun=All"));

    [Fact]
    public async Task Waves_run_in_order_when_every_wave_verifies()
    {
        await using var lab = await EngineLab.StartAsync(ClusterMechanismTests.EuFleet);
        await DeployTwiceAsync(lab, "kfm-api-eu");
        var engine = lab.RollbackEngine();
        RollbackRequest Request(string environment) => new()
        {
            Environment = lab.Config.GetEnvironment(environment), Method = RollbackMethod.Cluster, Actor = "tester",
            Force = true, ForceReason = "lab: waves test", Wait = true, Timeout = TimeSpan.FromSeconds(60),
        };
        var plans = await engine.PlanManyAsync(new[] { Request("lab"), Request("kfm-api-eu") }, 2, _ => RollbackReporter.Silent, CancellationToken.None);
        var order = new List<string>();
        await engine.RunWavesAsync(new[] { new[] { plans[1] }, new[] { plans[0] } }, 2, TimeSpan.Zero,
            (environment, _) => { order.Add("verified " + environment.Name); return Task.FromResult<string?>(null); },
            _ => RollbackReporter.Silent, r => order.Add($"{r.Outcome} {r.Environment}"), _ => { }, CancellationToken.None);
        Assert.Equal(new[] { "Succeeded kfm-api-eu", "verified kfm-api-eu", "Succeeded lab", "verified lab" }, order);
    }

    /// <summary>A second API Deployment with two revisions, which no controller manages.</summary>
    internal static async Task DeployTwiceAsync(EngineLab lab, string name)
    {
        foreach (string build in new[] { "good-1.4.0", "good-1.4.1" })
        {
            string image = lab.Host.Images.Get(build).Image;
            var deployment = new V1Deployment
            {
                Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "kfm" },
                Spec = new V1DeploymentSpec
                {
                    Replicas = 1,
                    Selector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["app"] = name } },
                    Template = new V1PodTemplateSpec
                    {
                        Metadata = new V1ObjectMeta { Labels = new Dictionary<string, string> { ["app"] = name } },
                        Spec = new V1PodSpec { Containers = new List<V1Container> { new() { Name = "api", Image = image } } },
                    },
                },
            };
            if (build == "good-1.4.0")
            {
                await lab.Client.AppsV1.CreateNamespacedDeploymentAsync(deployment, "kfm");
            }
            else
            {
                await lab.SetImageAsync(image, name);
            }
            await new KfmRollback.Engine.Adapters.Kubernetes.RolloutWatcher(lab.Client, "kfm", name).WaitAsync(null, TimeSpan.FromSeconds(60), CancellationToken.None);
        }
    }
}

/// <summary>Checklist services that read the cluster take the client, so they run against the in-process lab.</summary>
public sealed class ClusterCheckTests
{
    [Fact]
    public async Task Deployment_stability_passes_for_a_settled_build_and_fails_for_a_crash_loop()
    {
        await using var lab = await EngineLab.StartAsync();
        await new KfmRollback.Engine.Adapters.Kubernetes.RolloutWatcher(lab.Client, "kfm", "kfm-api").WaitAsync(null, TimeSpan.FromSeconds(60), CancellationToken.None);
        var settled = await KfmRollback.Engine.Verification.HealthChecks.DeploymentStableAsync(lab.Environment, lab.Client, CancellationToken.None);
        Assert.Equal(KfmRollback.Engine.Verification.Verdict.Pass, settled.Verdict);
        // The count read is carried typed, for a wait's next round to compare with (the evidence text is for people).
        Assert.Equal(0, settled.Reading?.Restarts);

        // Freeze Argo CD first, or its self-heal would put the good build back within seconds.
        await lab.FreezeAsync("INC-T");
        string crash = lab.Host.Images.Get("bad-crashloop").Image;
        await lab.SetImageAsync(crash);
        await Task.Delay(TimeSpan.FromSeconds(1));
        var crashing = await KfmRollback.Engine.Verification.HealthChecks.DeploymentStableAsync(lab.Environment, lab.Client, CancellationToken.None);
        Assert.NotEqual(KfmRollback.Engine.Verification.Verdict.Pass, crashing.Verdict);
    }

    [Fact]
    public async Task A_pod_deleted_between_the_list_and_its_log_read_is_skipped_and_named_not_a_failed_scan()
    {
        await using var lab = await EngineLab.StartAsync();
        await new KfmRollback.Engine.Adapters.Kubernetes.RolloutWatcher(lab.Client, "kfm", "kfm-api").WaitAsync(null, TimeSpan.FromSeconds(60), CancellationToken.None);
        // The race a rollout makes, made certain: the first log read finds its pod deleted a moment before.
        var deleting = new DeleteBeforeFirstLogRead(lab.Client);
        using var client = lab.NewClient("lab", deleting);

        var results = await KfmRollback.Engine.Verification.LogChecks.RunAsync(client, lab.Environment, new[] { "burial_sites" }, CancellationToken.None);

        Assert.NotNull(deleting.Deleted);
        var present = Assert.Single(results, r => r.Check == "D.logs-present");
        Assert.Equal(KfmRollback.Engine.Verification.Verdict.Pass, present.Verdict);
        Assert.Equal("1", present.Evidence["pods_gone"]);
        Assert.Contains($"1 deleted before their logs were read: {deleting.Deleted}", present.Summary);
        Assert.Equal(KfmRollback.Engine.Verification.Verdict.Pass, Assert.Single(results, r => r.Check == "D.no-sensitive-payloads").Verdict);
    }

    /// <summary>Deletes the pod of the first log request (through another client) just before sending it.</summary>
    private sealed class DeleteBeforeFirstLogRead(k8s.IKubernetes admin) : DelegatingHandler
    {
        public string? Deleted { get; private set; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            string[] segments = request.RequestUri!.AbsolutePath.Split('/');
            if (Deleted is null && segments.Length >= 2 && segments[^1] == "log")
            {
                Deleted = segments[^2];
                await admin.CoreV1.DeleteNamespacedPodAsync(Deleted, "kfm", gracePeriodSeconds: 0, cancellationToken: cancellationToken);
            }
            return await base.SendAsync(request, cancellationToken);
        }
    }

    [Fact]
    public async Task The_log_scan_reads_the_lab_pods_through_the_given_client()
    {
        await using var lab = await EngineLab.StartAsync();
        await new KfmRollback.Engine.Adapters.Kubernetes.RolloutWatcher(lab.Client, "kfm", "kfm-api").WaitAsync(null, TimeSpan.FromSeconds(60), CancellationToken.None);
        var results = await KfmRollback.Engine.Verification.LogChecks.RunAsync(lab.Client, lab.Environment, new[] { "burial_sites" }, CancellationToken.None);
        Assert.NotEmpty(results);
        Assert.All(results, r => Assert.StartsWith("D.", r.Check));
    }
}
