using System.Text.Json.Nodes;
using KfmRollback.Lab.Api;
using KfmRollback.Lab.Controllers;
using Xunit;

namespace KfmRollback.Lab.Tests;

/// <summary>
/// The workload controllers are event-driven like kube-controller-manager's: a store change queues the keys it
/// concerns, a queued key is synced once, no two workers sync one key at once, syncs that wait for the simulated
/// clock run when it gets there, and a failed sync is retried. These tests drive the controllers on the test's
/// thread (<see cref="Workloads.RunQueued"/>) against a store of their own, on a clock that moves only when told.
/// </summary>
public class WorkloadQueueTests
{
    [Fact]
    public void A_key_is_queued_once_and_never_handed_out_while_it_is_synced()
    {
        var clock = new SimClock(1);
        var q = new WorkQueue<string>(() => clock.Now);
        q.Add("a"); q.Add("a"); q.Add("b"); q.Add("a");
        Assert.Equal(2, q.Count);

        Assert.True(q.TryGet(out var first));
        Assert.Equal("a", first);
        q.Add("a");                                  // changed while a worker syncs it
        Assert.True(q.TryGet(out var second));
        Assert.Equal("b", second);
        Assert.False(q.TryGet(out _));               // "a" is not handed to a second worker
        Assert.False(q.TryClaim("a"));               // nor to a synchronous pass
        q.Done("a");
        Assert.True(q.TryGet(out var again));        // the change made during the sync is synced after it
        Assert.Equal("a", again);
        q.Done("a"); q.Done("b");
        Assert.False(q.TryGet(out _));

        // A key a synchronous pass claimed while it was queued is not handed out until that pass is done.
        q.Add("c");
        Assert.True(q.TryClaim("c"));
        Assert.False(q.TryGet(out _));
        q.Done("c");
        Assert.True(q.TryGet(out var c));
        Assert.Equal("c", c);
    }

    [Fact]
    public void A_delayed_key_is_queued_when_the_simulated_clock_reaches_it_and_retries_double()
    {
        var clock = new SimClock(1);
        var q = new WorkQueue<string>(() => clock.Now) { BaseRetryDelaySeconds = 1, MaxRetryDelaySeconds = 4 };
        q.AddAt("later", clock.Now.AddSeconds(30));
        q.PromoteDue();
        Assert.False(q.TryGet(out _));
        clock.Advance(TimeSpan.FromSeconds(31));
        q.PromoteDue();
        Assert.True(q.TryGet(out var k));
        Assert.Equal("later", k);
        q.Done(k);

        // Failures: 1 s, 2 s, 4 s, then capped at 4 s; Forget starts again at 1 s.
        var waits = new List<double>();
        for (var i = 0; i < 4; i++)
        {
            q.AddRateLimited("bad");
            var waited = 0.0;
            while (true)
            {
                q.PromoteDue();
                if (q.TryGet(out var got)) { q.Done(got); break; }
                clock.Advance(TimeSpan.FromSeconds(0.5)); waited += 0.5;
                Assert.True(waited < 60, "a rate-limited key was never queued again");
            }
            waits.Add(waited);
        }
        Assert.Equal(4, q.Failures("bad"));
        Assert.True(waits[0] >= 0.5 && waits[0] <= 1.5, string.Join(",", waits));
        Assert.True(waits[1] >= 1.5 && waits[1] <= 2.5, string.Join(",", waits));
        Assert.True(waits[2] >= 3.5 && waits[2] <= 4.5, string.Join(",", waits));
        Assert.True(waits[3] >= 3.5 && waits[3] <= 4.5, string.Join(",", waits));
        q.Forget("bad");
        Assert.Equal(0, q.Failures("bad"));
    }

    [Fact]
    public void A_Deployment_changed_among_many_is_rolled_out_by_syncing_only_its_own_objects()
    {
        var (store, clock, w, images) = Controllers();
        const int count = 30;
        for (var i = 0; i < count; i++) CreateDeployment(store, "fleet", $"api-{i}", images[0], 2);
        Converge(store, clock, w, count);

        var synced = new List<WorkKey>();
        w.SyncedKey += synced.Add;
        store.Mutate(Resources.Deployments, "fleet", "api-7", d => { d.At("spec.template.spec.containers")![0]!["image"] = images[1]; return true; });
        Converge(store, clock, w, count);

        var d7 = store.Get(Resources.Deployments, "fleet", "api-7")!;
        Assert.Equal(images[1], d7.Str("spec.template.spec.containers.0.image"));
        Assert.Equal(d7.Long("metadata.generation"), d7.Long("status.observedGeneration"));
        Assert.Equal("2", Ann(d7, "deployment.kubernetes.io/revision"));
        // Every sync after the change was of api-7's Deployment, its ReplicaSets and pods (or the namespace-wide
        // HPA/quota keys and the garbage collector): none of the other 29 Deployments' objects was synced again.
        Assert.NotEmpty(synced);
        var foreign = synced.Where(k => k.Kind is WorkKind.Deployment or WorkKind.ReplicaSet or WorkKind.Pod && !k.Name.StartsWith("api-7", StringComparison.Ordinal)).ToList();
        Assert.True(foreign.Count == 0, "synced other Deployments' objects: " + string.Join(", ", foreign.Take(10)));
        Assert.Contains(synced, k => k == new WorkKey(WorkKind.Deployment, "fleet", "api-7"));
        // ...and the rollout went through its steps: a new ReplicaSet scaled up as the old one scaled down.
        var rss = store.List(Resources.ReplicaSets, "fleet", rs => rs.Name().StartsWith("api-7-", StringComparison.Ordinal));
        Assert.Equal(2, rss.Count);
        Assert.Contains(rss, rs => rs.Long("spec.replicas") == 2 && rs.Long("status.availableReplicas") == 2);
        Assert.Contains(rss, rs => rs.Long("spec.replicas") == 0);
    }

    [Fact]
    public void A_pod_turns_ready_when_the_simulated_clock_reaches_its_start_time_without_any_other_change()
    {
        var (store, clock, w, images) = Controllers();
        CreateDeployment(store, "fleet", "api", images[0], 2);
        w.RunQueued();
        var pods = store.List(Resources.Pods, "fleet");
        Assert.Equal(2, pods.Count);
        Assert.All(pods, p => Assert.False(Workloads.PodReady(p)));
        Assert.Equal(0, w.RunQueued());              // nothing is due: no sync runs, no pod turns ready early

        clock.Advance(TimeSpan.FromSeconds(2.5));     // the pod start time (2 simulated seconds) has come
        w.RunQueued();
        Assert.All(store.List(Resources.Pods, "fleet"), p => Assert.True(Workloads.PodReady(p)));
        var d = store.Get(Resources.Deployments, "fleet", "api")!;
        Assert.Equal(2, d.Long("status.availableReplicas"));
    }

    [Fact]
    public void A_pod_create_the_quota_refuses_is_retried_until_the_quota_allows_it()
    {
        var (store, clock, w, images) = Controllers();
        store.Create(Resources.ResourceQuotas, J.Parse("""{"metadata":{"name":"pods","namespace":"fleet"},"spec":{"hard":{"pods":"1"}}}"""));
        CreateDeployment(store, "fleet", "api", images[0], 2);
        w.RunQueued();
        Assert.Single(store.List(Resources.Pods, "fleet"));
        var rs = store.List(Resources.ReplicaSets, "fleet").Single();
        var key = new WorkKey(WorkKind.ReplicaSet, "fleet", rs.Name());
        Assert.True(w.Queue.Failures(key) >= 1, "the refused create was not the ReplicaSet sync's error");
        var refusals = store.List(Resources.Events, "fleet", e => e.Str("reason") == "FailedCreate");
        Assert.NotEmpty(refusals);
        Assert.All(refusals, e => Assert.Contains("exceeded quota: pods, requested: pods=1, used: pods=1, limited: pods=1", e.Str("message")));

        // The quota is raised. Nothing else changes before the first pod starts (at least a simulated second
        // away), so only the retry of the failed key can create the second pod within 0.9 simulated seconds.
        store.Mutate(Resources.ResourceQuotas, "fleet", "pods", q => { q.Obj("spec").Obj("hard")["pods"] = "2"; return true; });
        for (var i = 0; i < 9 && store.List(Resources.Pods, "fleet").Count < 2; i++)
        {
            clock.Advance(TimeSpan.FromSeconds(0.1));
            w.RunQueued();
        }
        Assert.DoesNotContain(store.List(Resources.Pods, "fleet"), Workloads.PodReady);
        Assert.Equal(2, store.List(Resources.Pods, "fleet").Count);
        Assert.Equal(0, w.Queue.Failures(key));
        Assert.Empty(w.Errors);
    }

    [Fact]
    public void Deleting_a_Deployment_collects_its_ReplicaSets_and_pods()
    {
        var (store, clock, w, images) = Controllers();
        CreateDeployment(store, "fleet", "api", images[0], 2);
        CreateDeployment(store, "fleet", "other", images[0], 1);
        Converge(store, clock, w, 2);
        store.Delete(Resources.Deployments, "fleet", "api");
        for (var i = 0; i < 10; i++) { clock.Advance(TimeSpan.FromSeconds(1)); w.RunQueued(); }
        Assert.DoesNotContain(store.List(Resources.ReplicaSets, "fleet"), rs => rs.Name().StartsWith("api-", StringComparison.Ordinal));
        Assert.DoesNotContain(store.List(Resources.Pods, "fleet"), p => p.Name().StartsWith("api-", StringComparison.Ordinal));
        Assert.Single(store.List(Resources.Pods, "fleet"));   // the other Deployment's pod stays
    }

    [Fact]
    public async Task The_workers_roll_out_and_the_full_resync_catches_what_no_store_change_announced()
    {
        var clock = new SimClock(20);
        var store = new Store(clock);
        var catalogue = new ImageCatalogue();
        var w = new Workloads(store, catalogue, new WorkloadOptions { PodStartSeconds = 2, ResyncPeriod = TimeSpan.FromMilliseconds(200) });
        store.Create(Resources.Namespaces, J.Parse("""{"metadata":{"name":"fleet"}}"""));
        var good = catalogue.Get("good-1.5.1");
        CreateDeployment(store, "fleet", "api", good.Image, 2);
        using var cts = new CancellationTokenSource();
        var run = w.Start(cts.Token);
        try
        {
            await Lab.Eventually(() => store.Get(Resources.Deployments, "fleet", "api")!.Long("status.availableReplicas") == 2, "the workers rolled the Deployment out");

            // The image turns bad behind the controllers' back (no store change, as a registry losing a digest):
            // only the periodic resync of every key makes the kubelet stand-in see it.
            catalogue.Mark(good.Digest, PodFailure.ImagePullBackOff);
            await Lab.Eventually(() => store.List(Resources.Pods, "fleet").All(p => p.Str("status.containerStatuses.0.state.waiting.reason") == "ImagePullBackOff"), "the resync saw the pulled digest");
            Assert.Empty(w.Errors);
        }
        finally { cts.Cancel(); await run; }
    }

    static string? Ann(JsonObject o, string key) => (o.At("metadata.annotations") as JsonObject)?[key]?.GetValue<string>();

    static (Store store, SimClock clock, Workloads w, string[] images) Controllers()
    {
        var clock = new SimClock(0.001);   // a simulated millisecond per real second: the test moves it
        var store = new Store(clock);
        var catalogue = new ImageCatalogue();
        var w = new Workloads(store, catalogue, new WorkloadOptions { PodStartSeconds = 2 });
        store.Create(Resources.Namespaces, J.Parse("""{"metadata":{"name":"fleet"}}"""));
        var images = catalogue.Entries.Where(e => e.Regression == Regression.None).Select(e => e.Image).ToArray();
        return (store, clock, w, images);
    }

    static void CreateDeployment(Store store, string ns, string name, string image, int replicas) =>
        store.Create(Resources.Deployments, new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = ns },
            ["spec"] = new JsonObject
            {
                ["replicas"] = replicas,
                ["selector"] = new JsonObject { ["matchLabels"] = new JsonObject { ["app"] = name } },
                ["template"] = new JsonObject
                {
                    ["metadata"] = new JsonObject { ["labels"] = new JsonObject { ["app"] = name } },
                    ["spec"] = new JsonObject { ["containers"] = new JsonArray(new JsonObject { ["name"] = "api", ["image"] = image }) },
                },
            },
        });

    /// <summary>Runs the queued syncs, moving the clock a simulated second at a time, until every Deployment has rolled out.</summary>
    static void Converge(Store store, SimClock clock, Workloads w, int count)
    {
        for (var i = 0; i < 60; i++)
        {
            w.RunQueued();
            var ds = store.List(Resources.Deployments);
            if (ds.Count == count && ds.All(d => d.Long("status.observedGeneration") == d.Long("metadata.generation")
                && d.Long("status.updatedReplicas") == d.Long("spec.replicas") && d.Long("status.availableReplicas") == d.Long("spec.replicas")
                && d.Long("status.replicas") == d.Long("spec.replicas")))
                return;
            clock.Advance(TimeSpan.FromSeconds(1));
        }
        Assert.Fail("the Deployments did not roll out in 60 simulated seconds: " + string.Join("; ", w.Errors));
    }
}
