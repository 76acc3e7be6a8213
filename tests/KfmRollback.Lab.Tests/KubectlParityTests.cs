using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using KfmRollback.Lab.Api;
using KfmRollback.Lab.Controllers;
using Xunit;

namespace KfmRollback.Lab.Tests;

/// <summary>Real kubectl against the lab, checked against the reference rollback semantics.</summary>
public class KubectlParityTests
{
    static string[] Lines(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    static List<(int rev, string cause)> History(string output) =>
        Lines(output).Select(l => Regex.Match(l, @"^(\d+)\s+(.*)$")).Where(m => m.Success)
            .Select(m => (int.Parse(m.Groups[1].Value), m.Groups[2].Value.Trim())).ToList();

    [Fact]
    public async Task GetDeployRsPods_PrintsTablesLikeARealCluster()
    {
        await using var lab = await Lab.Start();
        await lab.RolledOut();
        var r = (await lab.K("get", "deploy,rs,pods", "-n", "kfm")).Ok();
        var lines = Lines(r.Out);
        Assert.Matches(@"^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE$", lines[0]);
        Assert.Matches(@"^deployment\.apps/kfm-api\s+3/3\s+3\s+3\s+\S+$", lines[1]);
        Assert.Contains(lines, l => Regex.IsMatch(l, @"^NAME\s+DESIRED\s+CURRENT\s+READY\s+AGE$"));
        Assert.Equal(4, lines.Count(l => l.StartsWith("replicaset.apps/kfm-api-")));
        Assert.Single(lines, l => Regex.IsMatch(l, @"^replicaset\.apps/kfm-api-[bcdfghjklmnpqrstvwxz2456789]{6,10}\s+3\s+3\s+3\s"));
        Assert.Contains(lines, l => Regex.IsMatch(l, @"^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$"));
        Assert.Equal(3, lines.Count(l => Regex.IsMatch(l, @"^pod/kfm-api-[a-z0-9]+-[a-z0-9]{5}\s+1/1\s+Running\s+0\s")));
    }

    [Fact]
    public async Task RolloutHistory_ListsSeededRevisionsWithChangeCause()
    {
        await using var lab = await Lab.Start();
        await lab.RolledOut();
        var r = (await lab.K("rollout", "history", "deployment/kfm-api", "-n", "kfm")).Ok();
        Assert.Contains("REVISION  CHANGE-CAUSE", r.Out);
        var h = History(r.Out);
        Assert.Equal([1, 2, 3, 4], h.Select(x => x.rev));
        Assert.Equal("deploy kfm-api 1.5.1 (CHG-1004)", h[3].cause);
        var pods = (await lab.K("get", "pods", "-n", "kfm", "-o", "jsonpath={.items[*].status.containerStatuses[0].imageID}")).Ok();
        var current = lab.Host.Images.Get("good-1.5.1");
        Assert.All(pods.Out.Split(' ', StringSplitOptions.RemoveEmptyEntries), id => Assert.Equal($"registry.kfm.local/kfm-api@{current.Digest}", id));
    }

    [Fact]
    public async Task RolloutUndo_ToRevision_RenumbersLikeARealCluster()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        await lab.RolledOut();
        var r = (await lab.K("rollout", "undo", "deployment/kfm-api", "-n", "kfm", "--to-revision=2")).Ok();
        Assert.Equal("deployment.apps/kfm-api rolled back", r.Out.Trim());
        (await lab.K("rollout", "status", "deployment/kfm-api", "-n", "kfm", "--timeout=60s")).Ok();
        Assert.Equal(lab.Host.Images.Get("good-1.4.1").Image, lab.Image());

        var h = History((await lab.K("rollout", "history", "deployment/kfm-api", "-n", "kfm")).Ok().Out);
        Assert.Equal([1, 3, 4, 5], h.Select(x => x.rev));
        Assert.Equal("deploy kfm-api 1.4.1 (CHG-1002)", h[3].cause);
        var rs = lab.Host.Store.List(Resources.ReplicaSets, "kfm").Single(x => x.Str("spec.template.spec.containers.0.image") == lab.Host.Images.Get("good-1.4.1").Image);
        var ann = (JsonObject)rs.At("metadata.annotations")!;
        Assert.Equal("5", ann["deployment.kubernetes.io/revision"]!.GetValue<string>());
        Assert.Equal("2", ann["deployment.kubernetes.io/revision-history"]!.GetValue<string>());
        Assert.Equal(4, lab.Host.Store.List(Resources.ReplicaSets, "kfm").Count);   // reused, not a new ReplicaSet

        // Undo again (previous revision) toggles back, renumbering 4 -> 6.
        (await lab.K("rollout", "undo", "deployment/kfm-api", "-n", "kfm")).Ok();
        (await lab.K("rollout", "status", "deployment/kfm-api", "-n", "kfm", "--timeout=60s")).Ok();
        h = History((await lab.K("rollout", "history", "deployment/kfm-api", "-n", "kfm")).Ok().Out);
        Assert.Equal([1, 3, 5, 6], h.Select(x => x.rev));
        Assert.Equal(lab.Host.Images.Get("good-1.5.1").Image, lab.Image());
        var d = lab.Deployment();
        Assert.Equal("6", ((JsonObject)d.At("metadata.annotations")!)["deployment.kubernetes.io/revision"]!.GetValue<string>());
    }

    [Fact]
    public async Task RolloutUndo_UnknownRevision_FailsLikeKubectl()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        await lab.RolledOut();
        var r = await lab.K("rollout", "undo", "deployment/kfm-api", "-n", "kfm", "--to-revision=42");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("unable to find specified revision 42 in history", r.Err);
    }

    [Fact]
    public async Task RolloutStatus_CompletesAfterImageChange_AndReportsConditions()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        await lab.RolledOut();
        var gen = lab.Deployment().Long("metadata.generation")!.Value;
        (await lab.K("set", "image", "deployment/kfm-api", "-n", "kfm", $"api={lab.Host.Images.Get("good-1.4.1").Image}")).Ok();
        var r = (await lab.K("rollout", "status", "deployment/kfm-api", "-n", "kfm", "--timeout=60s")).Ok();
        Assert.Contains("deployment \"kfm-api\" successfully rolled out", r.Out);
        var d = lab.Deployment();
        Assert.Equal(gen + 1, d.Long("metadata.generation"));
        Assert.Equal(gen + 1, d.Long("status.observedGeneration"));
        var conds = (JsonArray)d.At("status.conditions")!;
        Assert.Contains(conds, c => c.Str("type") == "Available" && c.Str("status") == "True" && c.Str("reason") == "MinimumReplicasAvailable");
        Assert.Contains(conds, c => c.Str("type") == "Progressing" && c.Str("status") == "True" && c.Str("reason") == "NewReplicaSetAvailable");
        Assert.Null(d.At("status.unavailableReplicas"));
    }

    [Fact]
    public async Task ControllerPass_FromAReadBeforeANewTemplate_NeverCallsTheNewGenerationObserved()
    {
        // A controller pass reads a Deployment, then its template changes (here: to a build whose pods can never
        // start, so its rollout can never complete). The deployment controller writes status with the object it
        // synced (a stale write conflicts on resourceVersion), so observedGeneration never claims the new
        // generation for the old template's counts: kubectl rollout status (and the module) would call a
        // rollout done that has not started. Many Deployments make a pass long, which made this common.
        await using var lab = await Lab.Start(argoAutoSync: false);
        await lab.RolledOut();
        var read = lab.Deployment();
        (await lab.K("set", "image", "deployment/kfm-api", "-n", "kfm", "api=registry.kfm.local/kfm-api@sha256:" + new string('0', 64))).Ok();
        var generation = lab.Deployment().Long("metadata.generation");
        Assert.True(generation > read.Long("metadata.generation"));

        lab.Host.Workloads.SyncDeployment(read);
        var d = lab.Deployment();
        if (d.Long("status.observedGeneration") >= generation)
        {
            Assert.True((d.Long("status.updatedReplicas") ?? 0) < d.Long("spec.replicas"),   // absent = 0, as kubectl reads it
                $"status claims generation {generation} observed with the old template's counts: {d["status"]!.ToJsonString()}");
        }
        var r = (await lab.K("rollout", "status", "deployment/kfm-api", "-n", "kfm", "--watch=false")).Ok();
        Assert.DoesNotContain("successfully rolled out", r.Out);
    }

    [Fact]
    public async Task RolloutStatus_ReportsProgressDeadlineExceeded_ForCrashLoop()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        await lab.RolledOut();
        (await lab.K("patch", "deployment/kfm-api", "-n", "kfm", "--type=merge", "-p", "{\"spec\":{\"progressDeadlineSeconds\":10}}")).Ok();
        (await lab.K("set", "image", "deployment/kfm-api", "-n", "kfm", $"api={lab.Host.Images.Get("bad-crashloop").Image}")).Ok();
        var r = await lab.K("rollout", "status", "deployment/kfm-api", "-n", "kfm", "--timeout=90s");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("deployment \"kfm-api\" exceeded its progress deadline", r.Err);
        var cond = ((JsonArray)lab.Deployment().At("status.conditions")!).First(c => c.Str("type") == "Progressing");
        Assert.Equal("False", cond.Str("status"));
        Assert.Equal("ProgressDeadlineExceeded", cond.Str("reason"));

        // The crash-looping pod shows CrashLoopBackOff with a rising restart count; old pods keep serving.
        var pods = (await lab.K("get", "pods", "-n", "kfm")).Ok();
        Assert.Contains(Lines(pods.Out), l => Regex.IsMatch(l, @"\s0/1\s+CrashLoopBackOff\s+[1-9]"));
        Assert.True(lab.Deployment().Long("status.availableReplicas") >= 3 - 0);
    }

    [Fact]
    public async Task PauseBlocksUndo_ResumeContinues()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        await lab.RolledOut();
        Assert.Equal("deployment.apps/kfm-api paused", (await lab.K("rollout", "pause", "deployment/kfm-api", "-n", "kfm")).Ok().Out.Trim());
        Assert.True(lab.Deployment().Bool("spec.paused"));
        var undo = await lab.K("rollout", "undo", "deployment/kfm-api", "-n", "kfm");
        Assert.NotEqual(0, undo.ExitCode);
        Assert.Contains("you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again", undo.Err);
        await Lab.Eventually(() => ((JsonArray?)lab.Deployment().At("status.conditions"))?.Any(c => c.Str("reason") == "DeploymentPaused" && c.Str("status") == "Unknown") == true, "DeploymentPaused");

        // A template change while paused makes no new ReplicaSet.
        (await lab.K("set", "image", "deployment/kfm-api", "-n", "kfm", $"api={lab.Host.Images.Get("good-1.5.0").Image}")).Ok();
        lab.Host.TickNow();
        Assert.Equal(4, lab.Host.Store.List(Resources.ReplicaSets, "kfm").Count);

        Assert.Equal("deployment.apps/kfm-api resumed", (await lab.K("rollout", "resume", "deployment/kfm-api", "-n", "kfm")).Ok().Out.Trim());
        (await lab.K("rollout", "status", "deployment/kfm-api", "-n", "kfm", "--timeout=60s")).Ok();
        var h = History((await lab.K("rollout", "history", "deployment/kfm-api", "-n", "kfm")).Ok().Out);
        Assert.Equal([1, 2, 4, 5], h.Select(x => x.rev));   // revision 3 (1.5.0) reused as 5
    }

    [Fact]
    public async Task AuthCanI_AdminAndViewer()
    {
        await using var lab = await Lab.Start();
        var a = await lab.K("auth", "can-i", "patch", "deployments", "-n", "kfm");
        Assert.Equal(0, a.ExitCode); Assert.Equal("yes", a.Out.Trim());
        var v = await lab.KAs("lab-viewer", "auth", "can-i", "patch", "deployments", "-n", "kfm");
        Assert.Equal(1, v.ExitCode); Assert.Equal("no", v.Out.Trim());
        var vl = await lab.KAs("lab-viewer", "auth", "can-i", "list", "pods", "-n", "kfm");
        Assert.Equal(0, vl.ExitCode); Assert.Equal("yes", vl.Out.Trim());
        var w = await lab.KAs("lab-viewer", "rollout", "undo", "deployment/kfm-api", "-n", "kfm");
        Assert.NotEqual(0, w.ExitCode);
        Assert.Contains("deployments.apps \"kfm-api\" is forbidden: User \"viewer\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"kfm\"", w.Err);
        (await lab.KAs("lab-viewer", "get", "deploy", "-n", "kfm")).Ok();
        var sec = await lab.KAs("lab-viewer", "auth", "can-i", "get", "secrets", "-n", "kfm");
        Assert.Equal("no", sec.Out.Trim());   // like the built-in view role
        Assert.Contains("cannot list resource \"secrets\"", (await lab.KAs("lab-viewer", "get", "secrets", "-n", "kfm")).Err);
    }

    [Fact]
    public async Task GetWatch_StreamsChanges()
    {
        await using var lab = await Lab.Start();
        await lab.RolledOut();
        var before = lab.Host.Store.List(Resources.Pods, "kfm").Select(p => p.Name()).ToHashSet();
        var watch = Lab.Exec(Lab.Kubectl, [.. lab.KubectlArgs, "get", "pods", "-n", "kfm", "--watch", "--request-timeout=8s"], TimeSpan.FromSeconds(30));
        await Task.Delay(1000);
        (await lab.K("scale", "deployment/kfm-api", "-n", "kfm", "--replicas=5")).Ok();
        var r = await watch;
        var lines = Lines(r.Out);
        Assert.Matches(@"^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$", lines[0]);
        var names = lines.Skip(1).Select(l => l.Split(' ')[0]).ToHashSet();
        Assert.True(names.Except(before).Count() >= 2, r.ToString());
        Assert.Contains(lines, l => !before.Contains(l.Split(' ')[0]) && Regex.IsMatch(l, @"\s1/1\s+Running\s"));
    }

    [Fact]
    public async Task ApplyAndDelete_CustomManifest()
    {
        await using var lab = await Lab.Start();
        var file = Manifests.NginxDeployment(lab.Dir, "web");
        Assert.Contains("deployment.apps/web created", (await lab.K("apply", "-f", file)).Ok().Out);
        (await lab.K("rollout", "status", "deployment/web", "--timeout=60s")).Ok();
        Assert.Contains("deployment.apps/web unchanged", (await lab.K("apply", "-f", file)).Ok().Out);
        Assert.Contains("deployment.apps \"web\" deleted", (await lab.K("delete", "-f", file)).Ok().Out);
        await Lab.Eventually(() => !lab.Host.Store.List(Resources.Pods, "default").Any(), "pods garbage-collected");
        var missing = await lab.K("get", "deploy", "web");
        Assert.Contains("Error from server (NotFound): deployments.apps \"web\" not found", missing.Err);
    }

    [Fact]
    public async Task ChangeCause_IsCopiedToTheNewReplicaSet()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        await lab.RolledOut();
        (await lab.K("annotate", "deployment/kfm-api", "-n", "kfm", "--overwrite", "kubernetes.io/change-cause=deploy kfm-api 1.4.0 again (CHG-2001)")).Ok();
        (await lab.K("set", "image", "deployment/kfm-api", "-n", "kfm", $"api={lab.Host.Images.Get("good-1.4.0").Image}")).Ok();
        (await lab.K("rollout", "status", "deployment/kfm-api", "-n", "kfm", "--timeout=60s")).Ok();
        var h = History((await lab.K("rollout", "history", "deployment/kfm-api", "-n", "kfm")).Ok().Out);
        Assert.Equal((5, "deploy kfm-api 1.4.0 again (CHG-2001)"), h[^1]);
        Assert.Equal([2, 3, 4, 5], h.Select(x => x.rev));   // revision 1 had the same template: reused as 5
    }

    [Fact]
    public async Task RevisionHistoryLimit_CleansOldReplicaSets_ZeroMakesUndoImpossible()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        await lab.RolledOut();
        (await lab.K("patch", "deployment/kfm-api", "-n", "kfm", "--type=merge", "-p", "{\"spec\":{\"revisionHistoryLimit\":1}}")).Ok();
        await Lab.Eventually(() => lab.Host.Store.List(Resources.ReplicaSets, "kfm").Count == 2, "old ReplicaSets cleaned to the limit");
        var h = History((await lab.K("rollout", "history", "deployment/kfm-api", "-n", "kfm")).Ok().Out);
        Assert.Equal([3, 4], h.Select(x => x.rev));   // the oldest go first

        (await lab.K("patch", "deployment/kfm-api", "-n", "kfm", "--type=merge", "-p", "{\"spec\":{\"revisionHistoryLimit\":0}}")).Ok();
        await Lab.Eventually(() => lab.Host.Store.List(Resources.ReplicaSets, "kfm").Count == 1, "only the current ReplicaSet left");
        var undo = await lab.K("rollout", "undo", "deployment/kfm-api", "-n", "kfm");
        Assert.NotEqual(0, undo.ExitCode);
        Assert.Contains("no rollout history found for deployment \"kfm-api\"", undo.Err);
    }

    [Fact]
    public async Task DeletePod_GoesTerminating_IsReplaced_ForceDeleteRemovesIt()
    {
        await using var lab = await Lab.Start();
        await lab.RolledOut();
        var victim = lab.Host.Store.List(Resources.Pods, "kfm").First().Name();
        (await lab.K("delete", "pod", victim, "-n", "kfm", "--grace-period=3600", "--wait=false")).Ok();
        var shown = (await lab.K("get", "pod", victim, "-n", "kfm")).Ok();
        Assert.Matches(@"\sTerminating\s", Lines(shown.Out)[1]);
        await Lab.Eventually(() => lab.Host.Store.List(Resources.Pods, "kfm").Count(p => p.At("metadata.deletionTimestamp") == null && Workloads.PodReady(p)) == 3, "replacement pod ready");
        Assert.Equal(3, lab.Deployment().Long("status.replicas"));   // terminating pods are not counted
        (await lab.K("delete", "pod", victim, "-n", "kfm", "--grace-period=0", "--force")).Ok();
        Assert.Null(lab.Host.Store.Get(Resources.Pods, "kfm", victim));
    }

    [Fact]
    public async Task MinReadySeconds_DelaysAvailability()
    {
        await using var lab = await Lab.Start();
        var file = Manifests.NginxDeployment(lab.Dir, "slow", minReadySeconds: 3600);
        (await lab.K("apply", "-f", file)).Ok();
        await Lab.Eventually(() => lab.Deployment("default", "slow").Long("status.readyReplicas") == 2, "pods ready");
        var d = lab.Deployment("default", "slow");
        Assert.Null(d.At("status.availableReplicas"));
        Assert.Equal(2, d.Long("status.unavailableReplicas"));
        var st = await lab.K("rollout", "status", "deployment/slow", "--watch=false");
        Assert.Contains("0 of 2 updated replicas are available", st.Out);
        await lab.Send(HttpMethod.Post, "/lab/advance?seconds=3600");
        await lab.RolledOut("default", "slow");
        Assert.Contains("successfully rolled out", (await lab.K("rollout", "status", "deployment/slow", "--watch=false")).Ok().Out);
    }

    [Fact]
    public async Task Hpa_OwnsReplicas_RevertsManualScale()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        await lab.RolledOut();
        var file = Path.Combine(lab.Dir, "hpa.yaml");
        File.WriteAllText(file, """
            apiVersion: autoscaling/v2
            kind: HorizontalPodAutoscaler
            metadata: {name: kfm-api, namespace: kfm}
            spec:
              scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: kfm-api}
              minReplicas: 4
              maxReplicas: 6
              metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}}]
            """);
        (await lab.K("apply", "-f", file)).Ok();
        await Lab.Eventually(() => lab.Deployment().Long("spec.replicas") == 4, "HPA scales to minReplicas");
        (await lab.K("scale", "deployment/kfm-api", "-n", "kfm", "--replicas=2")).Ok();
        await Lab.Eventually(() => lab.Deployment().Long("spec.replicas") == 4, "HPA takes spec.replicas back");
        var row = Lines((await lab.K("get", "hpa", "-n", "kfm")).Ok().Out)[1];
        Assert.Matches(@"^kfm-api\s+Deployment/kfm-api\s+.*\s4\s+6\s+\d+\s", row);
    }

    /// <summary>A ResourceQuota manifest in namespace kfm (kubectl create quota sends protobuf, which the lab does not speak).</summary>
    static string Quota(Lab lab, string name, string hard)
    {
        var file = Path.Combine(lab.Dir, name + "-quota.yaml");
        File.WriteAllText(file, $"apiVersion: v1\nkind: ResourceQuota\nmetadata: {{name: {name}, namespace: kfm}}\nspec:\n  hard: {hard}\n");
        return file;
    }

    [Fact]
    public async Task ResourceQuota_RefusesPodsPastHard_AndDryRunSaysSo_AsTheAdmissionPlugin()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        await lab.RolledOut();
        (await lab.K("apply", "-f", Quota(lab, "compute", "{pods: \"4\", requests.cpu: \"2\"}"))).Ok();
        await Lab.Eventually(() => lab.Host.Store.Get(Resources.ResourceQuotas, "kfm", "compute")?.Str("status.used.pods") == "3", "the quota controller counts the 3 pods");

        // The seeded pods say no cpu request: a quota on requests.cpu needs one, as the real plugin says.
        var missing = await lab.K("run", "extra", "-n", "kfm", "--image=registry.kfm.local/kfm-api:1.5.1");
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("Error from server (Forbidden): pods \"extra\" is forbidden: failed quota: compute: must specify requests.cpu for: extra", missing.Err);

        var ok = await lab.K("run", "fits", "-n", "kfm", "--image=registry.kfm.local/kfm-api:1.5.1", "--overrides={\"spec\":{\"containers\":[{\"name\":\"fits\",\"image\":\"registry.kfm.local/kfm-api:1.5.1\",\"resources\":{\"requests\":{\"cpu\":\"500m\"}}}]}}");
        ok.Ok();
        var over = await lab.K("run", "over", "-n", "kfm", "--dry-run=server", "--image=registry.kfm.local/kfm-api:1.5.1", "--overrides={\"spec\":{\"containers\":[{\"name\":\"over\",\"image\":\"registry.kfm.local/kfm-api:1.5.1\",\"resources\":{\"requests\":{\"cpu\":\"2\"}}}]}}");
        Assert.NotEqual(0, over.ExitCode);
        Assert.Contains("pods \"over\" is forbidden: exceeded quota: compute, requested: pods=1,requests.cpu=2, used: pods=4,requests.cpu=500m, limited: pods=4,requests.cpu=2", over.Err);
        Assert.Null(lab.Host.Store.Get(Resources.Pods, "kfm", "over"));

        var described = (await lab.K("describe", "quota", "compute", "-n", "kfm")).Ok().Out;
        Assert.Matches(@"pods\s+4\s+4", described);
        Assert.Matches(@"requests\.cpu\s+500m\s+2", described);
    }

    [Fact]
    public async Task ResourceQuota_HoldsTheSurgeOfARollout_AndTheReplicaSetSaysWhy()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        await lab.RolledOut();
        (await lab.K("apply", "-f", Quota(lab, "pods", "{pods: \"3\"}"))).Ok();
        (await lab.K("rollout", "undo", "deployment/kfm-api", "-n", "kfm")).Ok();
        // maxSurge 25% of 3 = 1 surge pod, which the quota refuses; maxUnavailable 25% of 3 rounds down to 0: stuck, as a real cluster.
        await Lab.Eventually(async () => (await lab.K("get", "events", "-n", "kfm", "--field-selector=reason=FailedCreate")).Out.Contains("exceeded quota: pods, requested: pods=1, used: pods=3, limited: pods=3"), "a FailedCreate event");
        Assert.Equal(3, lab.Host.Store.List(Resources.Pods, "kfm").Count(p => p.At("metadata.deletionTimestamp") == null));
        (await lab.K("delete", "quota", "pods", "-n", "kfm")).Ok();
        await lab.RolledOut();
    }
}
