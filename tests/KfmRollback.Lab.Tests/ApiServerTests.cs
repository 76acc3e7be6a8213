using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Lab.Api;
using Xunit;

namespace KfmRollback.Lab.Tests;

/// <summary>Raw apiserver semantics a rollback tool relies on: concurrency, patch, watch, selectors, errors.</summary>
public class ApiServerTests
{
    const string Deploy = "/apis/apps/v1/namespaces/kfm/deployments/kfm-api";

    [Fact]
    public async Task StalePut_Gets409ConflictStatus_WithExactMessage()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        // The seeded Deployment's first rollout writes its status until it completes: read the object after it.
        await lab.RolledOut();
        var d = await lab.GetJson(Deploy);
        var stale = d.Str("metadata.resourceVersion");
        d.Meta().Obj("annotations")["x"] = "1";
        var (c1, fresh) = await lab.Send(HttpMethod.Put, Deploy, d.ToJsonString());
        Assert.Equal(200, c1);
        Assert.True(long.Parse(fresh.Str("metadata.resourceVersion")!) > long.Parse(stale!));
        d.Meta()["resourceVersion"] = stale;
        d.Meta().Obj("annotations")["x"] = "2";
        var (c2, st) = await lab.Send(HttpMethod.Put, Deploy, d.ToJsonString());
        Assert.Equal(409, c2);
        Assert.Equal("Status", st.Str("kind"));
        Assert.Equal("Conflict", st.Str("reason"));
        Assert.Equal(409, st.Long("code"));
        Assert.Equal("Operation cannot be fulfilled on deployments.apps \"kfm-api\": the object has been modified; please apply your changes to the latest version and try again", st.Str("message"));
    }

    [Fact]
    public async Task JsonPatch_TestOpFailure_Is422_AndNothingChanges()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        // The seeded Deployment's first rollout writes its status until it completes: read the object after it.
        await lab.RolledOut();
        var before = await lab.GetJson(Deploy);
        var patch = "[{\"op\":\"test\",\"path\":\"/metadata/resourceVersion\",\"value\":\"1\"},{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":1}]";
        var (code, st) = await lab.Send(HttpMethod.Patch, Deploy, patch, "application/json-patch+json");
        Assert.Equal(422, code);
        Assert.Equal("Invalid", st.Str("reason"));
        Assert.Equal(3, lab.Deployment().Long("spec.replicas"));
        var ok = $"[{{\"op\":\"test\",\"path\":\"/metadata/resourceVersion\",\"value\":\"{lab.Deployment().Str("metadata.resourceVersion")}\"}},{{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":2}}]";
        var (code2, _) = await lab.Send(HttpMethod.Patch, Deploy, ok, "application/json-patch+json");
        Assert.Equal(200, code2);
        Assert.Equal(2, lab.Deployment().Long("spec.replicas"));
        Assert.Equal(before.Long("metadata.generation") + 1, lab.Deployment().Long("metadata.generation"));
    }

    [Fact]
    public async Task DryRunAll_ValidatesAndPersistsNothing()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        // The seeded Deployment's first rollout writes its status until it completes: read the object after it.
        await lab.RolledOut();
        var rv = lab.Deployment().Str("metadata.resourceVersion");
        var (code, o) = await lab.Send(HttpMethod.Patch, Deploy + "?dryRun=All", "{\"spec\":{\"paused\":true}}", "application/strategic-merge-patch+json");
        Assert.Equal(200, code);
        Assert.True(o.Bool("spec.paused"));
        Assert.False(lab.Deployment().Bool("spec.paused"));
        Assert.Equal(rv, lab.Deployment().Str("metadata.resourceVersion"));
        var bad = "{\"spec\":{\"template\":{\"metadata\":{\"labels\":{\"app\":\"other\"}}}}}";
        var (code2, st) = await lab.Send(HttpMethod.Patch, Deploy + "?dryRun=All", bad, "application/merge-patch+json");
        Assert.Equal(422, code2);
        Assert.Contains("`selector` does not match template `labels`", st.Str("message"));
    }

    [Fact]
    public async Task StrategicMergePatch_MergesContainersByName()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        var img = lab.Host.Images.Get("good-1.4.0").Image;
        var p = $"{{\"spec\":{{\"template\":{{\"spec\":{{\"$setElementOrder/containers\":[{{\"name\":\"api\"}}],\"containers\":[{{\"name\":\"api\",\"image\":\"{img}\"}}]}}}}}}}}";
        var (code, o) = await lab.Send(HttpMethod.Patch, Deploy, p, "application/strategic-merge-patch+json");
        Assert.Equal(200, code);
        var c = ((JsonArray)o.At("spec.template.spec.containers")!).Single()!;
        Assert.Equal(img, c.Str("image"));
        Assert.Equal(8080, ((JsonArray)c.At("ports")!)[0].Long("containerPort"));   // untouched fields survive
    }

    [Fact]
    public async Task Errors_AreStatusBodies_WithRealReasons()
    {
        await using var lab = await Lab.Start();
        var (nf, st) = await lab.Send(HttpMethod.Get, "/apis/apps/v1/namespaces/kfm/deployments/nope");
        Assert.Equal(404, nf); Assert.Equal("NotFound", st.Str("reason")); Assert.Equal("deployments.apps \"nope\" not found", st.Str("message"));
        var cm = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"kfm-api-config\"}}";
        var (ae, st2) = await lab.Send(HttpMethod.Post, "/api/v1/namespaces/kfm/configmaps", cm);
        Assert.Equal(409, ae); Assert.Equal("AlreadyExists", st2.Str("reason"));
        var (ma, st3) = await lab.Send(HttpMethod.Put, "/apis/apps/v1/namespaces/kfm/deployments", "{}");
        Assert.Equal(405, ma); Assert.Equal("MethodNotAllowed", st3.Str("reason"));

        using var anon = new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true }) { BaseAddress = new Uri(lab.Host.ApiServerUrl) };
        anon.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "not-a-token");
        var r = await anon.GetAsync("/api/v1/namespaces");
        Assert.Equal(401, (int)r.StatusCode);
        Assert.Equal("Unauthorized", JsonNode.Parse(await r.Content.ReadAsStringAsync()).Str("reason"));
        anon.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", lab.Host.ViewerToken);
        var w = await anon.DeleteAsync("/api/v1/namespaces/kfm/configmaps/kfm-api-config");
        Assert.Equal(403, (int)w.StatusCode);
        Assert.Equal("Forbidden", JsonNode.Parse(await w.Content.ReadAsStringAsync()).Str("reason"));
        Assert.NotNull(lab.Host.Store.Get(Resources.ConfigMaps, "kfm", "kfm-api-config"));
    }

    [Fact]
    public async Task List_LabelAndFieldSelectors_LimitAndContinue()
    {
        await using var lab = await Lab.Start();
        await lab.RolledOut();
        async Task<int> Count(string q) => ((JsonArray)(await lab.GetJson("/apis/apps/v1/namespaces/kfm/replicasets?" + q))["items"]!).Count;
        var hash = lab.Host.Store.List(Resources.ReplicaSets, "kfm").Select(r => r.At("metadata.labels").StrMap()["pod-template-hash"]).ToList();
        Assert.Equal(4, await Count("labelSelector=app%3Dkfm-api"));
        Assert.Equal(2, await Count($"labelSelector=pod-template-hash%20in%20({hash[0]},{hash[1]})"));
        Assert.Equal(3, await Count($"labelSelector=pod-template-hash%20notin%20({hash[0]})"));
        Assert.Equal(0, await Count("labelSelector=!app"));
        Assert.Equal(4, await Count("labelSelector=app,pod-template-hash"));
        Assert.Equal(1, await Count($"fieldSelector=metadata.name%3Dkfm-api-{hash[2]}"));
        Assert.Equal(0, await Count("fieldSelector=metadata.namespace%3Dother"));
        var page1 = await lab.GetJson("/apis/apps/v1/namespaces/kfm/replicasets?limit=3");
        Assert.Equal(3, ((JsonArray)page1["items"]!).Count);
        Assert.Equal(1, page1.Long("metadata.remainingItemCount"));
        var page2 = await lab.GetJson("/apis/apps/v1/namespaces/kfm/replicasets?limit=3&continue=" + Uri.EscapeDataString(page1.Str("metadata.continue")!));
        Assert.Single((JsonArray)page2["items"]!);
        Assert.Null(page2.Str("metadata.continue"));
    }

    static async Task<List<JsonObject>> ReadWatch(Lab lab, string url, int max, TimeSpan bound)
    {
        using var cts = new CancellationTokenSource(bound);
        var events = new List<JsonObject>();
        try
        {
            using var http = lab.NewClient();
            using var resp = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            using var sr = new StreamReader(await resp.Content.ReadAsStreamAsync(cts.Token));
            while (events.Count < max && await sr.ReadLineAsync(cts.Token) is { } line)
                if (line.Length > 0) events.Add(JsonNode.Parse(line)!.AsObject());
        }
        catch (OperationCanceledException) { }
        catch (HttpIOException e) { throw new Exception("watch ended: " + KfmRollback.Lab.Api.ApiServer.LastError, e); }
        return events;
    }

    [Fact]
    public async Task Watch_ResumesFromResourceVersion_AndGets410AfterCompaction()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        await lab.RolledOut();
        var rv = lab.Deployment().Str("metadata.resourceVersion");
        (await lab.K("scale", "deployment/kfm-api", "-n", "kfm", "--replicas=4")).Ok();
        var evs = await ReadWatch(lab, $"{Deploy.Replace("/kfm-api", "")}?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dkfm-api&timeoutSeconds=2", 1, TimeSpan.FromSeconds(20));
        Assert.NotEmpty(evs);
        Assert.Equal("MODIFIED", evs[0].Str("type"));
        Assert.Equal(4, evs[0].Long("object.spec.replicas"));
        Assert.True(long.Parse(evs[0].Str("object.metadata.resourceVersion")!) > long.Parse(rv!));

        await lab.RolledOut();
        var from = lab.Host.Store.CurrentRv;
        var bookmark = await ReadWatch(lab, $"{Deploy.Replace("/kfm-api", "")}?watch=true&resourceVersion={from}&allowWatchBookmarks=true&timeoutSeconds=5", 1, TimeSpan.FromSeconds(20));
        Assert.True(bookmark.Count == 1, "no bookmark; last server error: " + KfmRollback.Lab.Api.ApiServer.LastError);
        Assert.Equal("BOOKMARK", bookmark.Single().Str("type"));
        Assert.True(long.Parse(bookmark[0].Str("object.metadata.resourceVersion")!) >= from);

        var (code, _) = await lab.Send(HttpMethod.Post, "/lab/compact");
        Assert.Equal(200, code);
        var gone = await ReadWatch(lab, $"{Deploy.Replace("/kfm-api", "")}?watch=true&resourceVersion={rv}", 1, TimeSpan.FromSeconds(20));
        Assert.Equal("ERROR", gone.Single().Str("type"));
        Assert.Equal(410, gone[0].Long("object.code"));
        Assert.Equal("Expired", gone[0].Str("object.reason"));
        Assert.StartsWith($"too old resource version: {rv} (", gone[0].Str("object.message"));
    }

    [Fact]
    public async Task Lease_CreateThenStaleUpdateConflicts()
    {
        await using var lab = await Lab.Start();
        const string url = "/apis/coordination.k8s.io/v1/namespaces/kfm/leases";
        var now = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'");
        var lease = $"{{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{{\"name\":\"kfm-rollback\"}},\"spec\":{{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":30,\"acquireTime\":\"{now}\",\"renewTime\":\"{now}\",\"leaseTransitions\":0}}}}";
        var (c, created) = await lab.Send(HttpMethod.Post, url, lease);
        Assert.Equal(201, c);
        var (c2, _) = await lab.Send(HttpMethod.Post, url, lease);
        Assert.Equal(409, c2);
        created.Obj("spec")["holderIdentity"] = "b";
        var (c3, _) = await lab.Send(HttpMethod.Put, url + "/kfm-rollback", created.ToJsonString());
        Assert.Equal(200, c3);
        created.Obj("spec")["holderIdentity"] = "c";
        var (c4, st) = await lab.Send(HttpMethod.Put, url + "/kfm-rollback", created.ToJsonString());
        Assert.Equal(409, c4);
        Assert.Equal("Operation cannot be fulfilled on leases.coordination.k8s.io \"kfm-rollback\": the object has been modified; please apply your changes to the latest version and try again", st.Str("message"));
        Assert.Equal("b", lab.Host.Store.Get(Resources.Leases, "kfm", "kfm-rollback").Str("spec.holderIdentity"));
    }

    [Fact]
    public async Task Discovery_ServesGroupsShortNamesAndSubresources()
    {
        await using var lab = await Lab.Start();
        var apps = await lab.GetJson("/apis/apps/v1");
        var deploy = ((JsonArray)apps["resources"]!).First(r => r.Str("name") == "deployments")!;
        Assert.Contains("deploy", ((JsonArray)deploy["shortNames"]!).Select(x => x!.GetValue<string>()));
        Assert.Contains(((JsonArray)apps["resources"]!), r => r.Str("name") == "deployments/scale" && r.Str("kind") == "Scale");
        var groups = await lab.GetJson("/apis");
        foreach (var g in new[] { "apps", "coordination.k8s.io", "authorization.k8s.io", "argoproj.io", "kustomize.toolkit.fluxcd.io", "helm.toolkit.fluxcd.io" })
            Assert.Contains((JsonArray)groups["groups"]!, x => x.Str("name") == g);
        using var req = new HttpRequestMessage(HttpMethod.Get, "/apis");
        req.Headers.TryAddWithoutValidation("Accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json");
        using var agg = await lab.Http.SendAsync(req);
        Assert.Equal("application/json; g=apidiscovery.k8s.io; v=v2; as=APIGroupDiscoveryList", agg.Content.Headers.ContentType!.ToString().Replace(";", "; ").Replace(";  ", "; "));
        var aggBody = JsonNode.Parse(await agg.Content.ReadAsStringAsync())!;
        Assert.Equal("APIGroupDiscoveryList", aggBody.Str("kind"));
        var appsGroup = ((JsonArray)aggBody["items"]!).First(i => i.Str("metadata.name") == "apps")!;
        var dep = ((JsonArray)((JsonArray)appsGroup["versions"]!)[0]!["resources"]!).First(r => r.Str("resource") == "deployments")!;
        Assert.Equal("Namespaced", dep.Str("scope"));
        Assert.Contains((JsonArray)dep["subresources"]!, x => x.Str("subresource") == "scale" && x.Str("responseKind.kind") == "Scale");
        var version = (await lab.K("version", "-o", "json")).Ok();
        Assert.Equal("32", JsonNode.Parse(version.Out).Str("serverVersion.minor"));
        var scale = await lab.GetJson(Deploy + "/scale");
        Assert.Equal("Scale", scale.Str("kind"));
        Assert.Equal("app=kfm-api", scale.Str("status.selector"));
    }

    /// <summary>
    /// A denying validating webhook (a kyverno policy refusing the undo, kyverno/kyverno#5363) refuses
    /// the write and its server-side dry run alike, with the apiserver's words: code 400 and no reason
    /// when the webhook gives none, so kubectl prints "Error from server: admission webhook ... denied
    /// the request: ..."; nothing is stored, and the audit log records the dry run with dryRun=All.
    /// </summary>
    [Fact]
    public async Task AdmissionWebhookDenial_RefusesTheWriteAndItsDryRun_AsKubectlReportsIt()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        var (added, _) = await lab.Send(HttpMethod.Post, "/lab/admission", """
            {"name": "validate.kyverno.svc-fail", "operations": ["UPDATE"], "resources": ["deployments"], "namespace": "kfm",
             "objectSelector": "app=kfm-api", "message": "policy Deployment/kfm/kfm-api for resource violation: block-rollbacks: image must be signed"}
            """);
        Assert.Equal(200, added);
        // The controllers write status (pods becoming ready); the spec is what a write would change.
        var generation = lab.Deployment().Long("metadata.generation");
        string[] patch = ["patch", "deployment", "kfm-api", "-n", "kfm", "--type", "merge", "-p", "{\"spec\":{\"paused\":true}}"];

        var dry = await lab.K([.. patch, "--dry-run=server"]);
        var real = await lab.K(patch);

        const string Expected = "Error from server: admission webhook \"validate.kyverno.svc-fail\" denied the request: policy Deployment/kfm/kfm-api for resource violation: block-rollbacks: image must be signed";
        Assert.Equal(1, dry.ExitCode);
        Assert.Contains(Expected, dry.Err);
        Assert.Equal(1, real.ExitCode);
        Assert.Contains(Expected, real.Err);
        Assert.Equal(generation, lab.Deployment().Long("metadata.generation"));
        Assert.False(lab.Deployment().Bool("spec.paused"));
        var (code, status) = await lab.Send(HttpMethod.Patch, Deploy + "?dryRun=All", "{\"spec\":{\"paused\":true}}", "application/merge-patch+json");
        Assert.Equal(400, code);
        Assert.Null(status["reason"]);
        var events = lab.Host.Audit.Events.Where(e => e.Str("objectRef.resource") == "deployments").ToList();
        Assert.Contains(events, e => e.Str("requestURI")!.Contains("dryRun=All") && e.Long("responseStatus.code") == 400);
        Assert.All(events, e => Assert.Equal(400, e.Long("responseStatus.code")));

        // Other objects, and the same object once the webhook is gone, are admitted.
        Assert.Equal(0, (await lab.K("annotate", "configmap", "kfm-api-config", "-n", "kfm", "x=1", "--dry-run=server")).ExitCode);
        Assert.Equal(200, (await lab.Send(HttpMethod.Delete, "/lab/admission")).code);
        (await lab.K([.. patch, "--dry-run=server"])).Ok();
        Assert.Equal(generation, lab.Deployment().Long("metadata.generation"));
        Assert.False(lab.Deployment().Bool("spec.paused"));
    }

    /// <summary>
    /// kubectl create --dry-run=server: validated, defaulted, given a uid and creation time, stored
    /// nowhere, and, never having been written to etcd, without a resourceVersion.
    /// </summary>
    [Fact]
    public async Task DryRunCreate_AnswersTheObjectWithoutAResourceVersion_AndStoresNothing()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        var file = Path.Combine(lab.Dir, "cm.yaml");
        await File.WriteAllTextAsync(file, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dry\n  namespace: kfm\ndata:\n  a: b\n");

        var created = JsonNode.Parse((await lab.K("create", "-f", file, "--dry-run=server", "-o", "json")).Ok().Out)!.AsObject();

        Assert.Equal("dry", created.Str("metadata.name"));
        Assert.NotNull(created.Str("metadata.uid"));
        Assert.Null(created.Str("metadata.resourceVersion"));
        Assert.Null(lab.Host.Store.Get(Resources.ConfigMaps, "kfm", "dry"));
        Assert.Contains("NotFound", (await lab.K("get", "configmap", "dry", "-n", "kfm")).Err);
    }
}
