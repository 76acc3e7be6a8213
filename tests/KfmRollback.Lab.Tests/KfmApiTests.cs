using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using KfmRollback.Lab.Api;
using Xunit;

namespace KfmRollback.Lab.Tests;

/// <summary>Each catalogue build shows its regression through the stand-in KFM API.</summary>
public class KfmApiTests
{
    static readonly Regex AuditRef = new(@"^kfm://audit/entry/[0-9A-HJKMNP-TV-Z]{26}$");
    static readonly Regex Dvid = new(@"^\d{4}-\d{2}(-\d{2})?\.[0-9a-f]{8}$");

    sealed class Client(Lab lab) : IDisposable
    {
        readonly HttpClient _h = new() { BaseAddress = new Uri(lab.Host.KfmApiUrl), Timeout = TimeSpan.FromSeconds(30) };
        public async Task<(int code, JsonObject body, HttpResponseMessage resp)> Call(string path, string? token, string? post = null)
        {
            using var req = new HttpRequestMessage(post == null ? HttpMethod.Get : HttpMethod.Post, path);
            if (token != null) req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            if (post != null) req.Content = new StringContent(post, Encoding.UTF8, "application/json");
            var resp = await _h.SendAsync(req);
            var text = await resp.Content.ReadAsStringAsync();
            return ((int)resp.StatusCode, JsonNode.Parse(text)!.AsObject(), resp);
        }
        public void Dispose() => _h.Dispose();
    }

    static async Task<Lab> LabRunning(string build)
    {
        var lab = await Lab.Start(argoAutoSync: false);
        await lab.RolledOut();
        var e = lab.Host.Images.Get(build);
        if (build != "good-1.5.1")
            (await lab.K("set", "image", "deployment/kfm-api", "-n", "kfm", $"api={e.Image}")).Ok();
        return lab;
    }

    static Task ServingBuild(Lab lab, string build) =>
        Lab.Eventually(() => lab.Host.KfmApi.CurrentBuild().entry?.Name == build && lab.Host.KfmApi.CurrentBuild().readyPods >= 3, $"API serving {build}");

    [Theory]
    [InlineData("good-1.4.0")]
    [InlineData("good-1.5.1")]
    public async Task GoodBuild_MeetsTheContract(string build)
    {
        await using var lab = await LabRunning(build);
        await ServingBuild(lab, build);
        using var c = new Client(lab);
        var pub = lab.Host.PublicToken; var stew = lab.Host.StewardToken;
        var (hc, h, _) = await c.Call("/api/v1/healthz", null);
        Assert.Equal(200, hc); Assert.True(h.Bool("ok"));
        var (mc, meta, _) = await c.Call("/api/v1/meta", pub);
        Assert.Equal(200, mc);
        Assert.Equal(lab.Host.Images.Get(build).Digest, meta.Str("image_digest"));
        foreach (var k in new[] { "service", "api_version", "contract_version", "commit", "build_time" }) Assert.NotNull(meta[k]);
        var (dc, list, _) = await c.Call("/api/v1/datasets", pub);
        Assert.Equal(200, dc);
        Assert.Matches(AuditRef, list.Str("audit_ref"));
        foreach (var d in (JsonArray)list["items"]!)
        {
            Assert.Contains(d.Str("policy_label"), new[] { "public", "public_generalized" });
            Assert.Matches(Dvid, d.Str("dataset_version_id"));
            Assert.True(d!["size_bytes"]!.GetValueKind() == System.Text.Json.JsonValueKind.Number);
        }
        // No existence leak: restricted-existing and missing look the same to a public caller.
        var (rc, r, rr) = await c.Call("/api/v1/datasets/burial_sites", pub);
        var (nc, n, nr) = await c.Call("/api/v1/datasets/no_such_dataset", pub);
        Assert.Equal(404, rc); Assert.Equal(404, nc);
        Assert.Equal(n.Str("error_code"), r.Str("error_code"));
        Assert.Equal(n.Str("message"), r.Str("message"));
        Assert.Equal(n.Select(x => x.Key).OrderBy(x => x), r.Select(x => x.Key).OrderBy(x => x));
        Assert.Matches(AuditRef, r.Str("audit_ref"));
        Assert.Equal(nr.Content.Headers.ContentLength, rr.Content.Headers.ContentLength);
        Assert.Equal(nr.Content.Headers.ContentType?.ToString(), rr.Content.Headers.ContentType?.ToString());
        var (sc, s, _) = await c.Call("/api/v1/datasets/burial_sites", stew);
        Assert.Equal(200, sc); Assert.Equal("restricted_sensitive_location", s.Str("policy_label"));
        var (ec, ev, _) = await c.Call("/api/v1/evidence/resolve", stew, "{\"dataset_id\":\"burial_sites\"}");
        Assert.Equal(200, ec); Assert.Matches("^sha256:[a-f0-9]{64}$", ev.Str("bundle_digest")); Assert.Equal("allow", ev.Str("decision.decision"));
        var (stc, st, _) = await c.Call("/api/v1/stac/items", pub);
        Assert.Equal(200, stc); Assert.Equal("FeatureCollection", st.Str("type"));
        for (int i = 0; i < 10; i++) Assert.Equal(200, (await c.Call("/api/v1/datasets", pub)).code);
    }

    [Fact]
    public async Task Http5xx_Regression()
    {
        await using var lab = await LabRunning("bad-5xx");
        await ServingBuild(lab, "bad-5xx");
        using var c = new Client(lab);
        var results = new List<(int code, JsonObject body)>();
        for (int i = 0; i < 10; i++) { var (code, body, _) = await c.Call("/api/v1/datasets", lab.Host.PublicToken); results.Add((code, body)); }
        Assert.Contains(results, r => r.code == 200);
        var err = results.First(r => r.code == 500).body;   // fails if no 500 at all
        Assert.Equal("INTERNAL", err.Str("error_code"));
        Assert.Matches(AuditRef, err.Str("audit_ref"));
    }

    [Fact]
    public async Task Latency_Regression()
    {
        await using var lab = await LabRunning("bad-latency");
        await ServingBuild(lab, "bad-latency");
        using var c = new Client(lab);
        using var h = new HttpClient();
        static double Metric(string text, string series) =>
            text.Split('\n').Where(l => l.StartsWith(series + " ")).Select(l => double.Parse(l[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Single();
        const string fast = "http_request_duration_seconds_bucket{route=\"/api/v1/datasets\",method=\"GET\",le=\"0.5\"}";
        const string count = "http_request_duration_seconds_count{route=\"/api/v1/datasets\",method=\"GET\"}";
        var before = await h.GetStringAsync(lab.Host.KfmApiUrl + "/metrics");
        for (int i = 0; i < 3; i++) Assert.Equal(200, (await c.Call("/api/v1/datasets", lab.Host.PublicToken)).code);
        var after = await h.GetStringAsync(lab.Host.KfmApiUrl + "/metrics");
        // The server's own histogram: every new request landed above the 0.5 s bucket.
        Assert.True(Metric(after, count) - Metric(before, count) >= 3);
        Assert.Equal(Metric(before, fast), Metric(after, fast));
    }

    [Fact]
    public async Task ExistenceLeak_Regression()
    {
        await using var lab = await LabRunning("bad-leak");
        await ServingBuild(lab, "bad-leak");
        using var c = new Client(lab);
        var (rc, r, _) = await c.Call("/api/v1/datasets/burial_sites", lab.Host.PublicToken);
        var (nc, _, _) = await c.Call("/api/v1/datasets/no_such_dataset", lab.Host.PublicToken);
        Assert.Equal(403, rc);
        Assert.Equal("POLICY_DENY", r.Str("error_code"));
        Assert.Equal(404, nc);
    }

    [Fact]
    public async Task MissingAuditRef_Regression()
    {
        await using var lab = await LabRunning("bad-audit");
        await ServingBuild(lab, "bad-audit");
        using var c = new Client(lab);
        var (code, body, _) = await c.Call("/api/v1/datasets", lab.Host.PublicToken);
        Assert.Equal(200, code);
        Assert.Null(body["audit_ref"]);
        var (ecode, err, _) = await c.Call("/api/v1/datasets/no_such_dataset", lab.Host.PublicToken);
        Assert.Equal(404, ecode);
        Assert.NotNull(err["error_code"]);
        Assert.Null(err["audit_ref"]);
    }

    [Fact]
    public async Task WrongDatasetVersionId_Regression()
    {
        await using var lab = await LabRunning("bad-dvid");
        await ServingBuild(lab, "bad-dvid");
        using var c = new Client(lab);
        var (_, body, _) = await c.Call("/api/v1/datasets/kansas_counties", lab.Host.PublicToken);
        Assert.DoesNotMatch(Dvid, body.Str("dataset_version_id"));
    }

    [Fact]
    public async Task ContractBreak_Regression()
    {
        await using var lab = await LabRunning("bad-contract");
        await ServingBuild(lab, "bad-contract");
        using var c = new Client(lab);
        var (_, body, _) = await c.Call("/api/v1/datasets/kansas_counties", lab.Host.PublicToken);
        Assert.Null(body["policy_label"]);
        Assert.Equal(System.Text.Json.JsonValueKind.String, body["size_bytes"]!.GetValueKind());
        var spec = JsonNode.Parse(File.ReadAllText(Path.Combine(lab.Dir, "kfm-api.openapi.json")))!;
        Assert.Equal("integer", spec.Str("components.schemas.Dataset.properties.size_bytes.type"));
        Assert.Contains("policy_label", ((JsonArray)spec.At("components.schemas.Dataset.required")!).Select(x => x!.GetValue<string>()));
    }

    [Theory]
    [InlineData("bad-crashloop", "CrashLoopBackOff")]
    [InlineData("bad-pull", "ImagePullBackOff")]
    public async Task PodFailures_StallRollout_OldBuildKeepsServing(string build, string reason)
    {
        await using var lab = await LabRunning(build);
        await Lab.Eventually(async () => (await lab.K("get", "pods", "-n", "kfm")).Out.Contains(reason), $"a pod in {reason}");
        var pods = lab.Host.Store.List(Resources.Pods, "kfm");
        var bad = pods.First(p => ((JsonArray)p.At("status.containerStatuses")!)[0].Str("state.waiting.reason") == reason);
        Assert.False(((JsonArray)bad.At("status.containerStatuses")!)[0].Bool("ready"));
        Assert.Equal("good-1.5.1", lab.Host.KfmApi.CurrentBuild().entry?.Name);   // majority of ready pods still on the old digest
        Assert.Equal(3, lab.Deployment().Long("status.availableReplicas"));
        Assert.Equal(1, lab.Deployment().Long("status.unavailableReplicas"));
        if (reason == "CrashLoopBackOff")
            await Lab.Eventually(() => ((JsonArray)lab.Host.Store.List(Resources.Pods, "kfm").First(p => p.Name() == bad.Name()).At("status.containerStatuses")!)[0].Long("restartCount") >= 3, "restartCount rising");
    }

    [Fact]
    public async Task MaintenanceFlag_Answers503WithRetryAfter()
    {
        await using var lab = await LabRunning("good-1.5.1");
        await ServingBuild(lab, "good-1.5.1");
        (await lab.K("patch", "configmap", "kfm-api-config", "-n", "kfm", "--type=merge", "-p", "{\"data\":{\"maintenance\":\"true\"}}")).Ok();
        using var c = new Client(lab);
        var (code, body, resp) = await c.Call("/api/v1/datasets", lab.Host.PublicToken);
        Assert.Equal(503, code);
        Assert.Equal("MAINTENANCE", body.Str("error_code"));
        Assert.Matches(AuditRef, body.Str("audit_ref"));
        Assert.NotNull(resp.Headers.RetryAfter);
        Assert.Equal(503, (await c.Call("/api/v1/readyz", null)).code);
        Assert.Equal(200, (await c.Call("/api/v1/healthz", null)).code);
    }

    [Fact]
    public async Task Metrics_CountRequestsByCodeRouteMethod()
    {
        await using var lab = await LabRunning("bad-5xx");
        await ServingBuild(lab, "bad-5xx");
        using var c = new Client(lab);
        for (int i = 0; i < 10; i++) await c.Call("/api/v1/datasets", lab.Host.PublicToken);
        using var h = new HttpClient();
        var text = await h.GetStringAsync(lab.Host.KfmApiUrl + "/metrics");
        Assert.Matches(@"http_requests_total\{code=""500"",route=""/api/v1/datasets"",method=""GET""\} [1-9]", text);
        Assert.Contains("http_request_duration_seconds_bucket{route=\"/api/v1/datasets\",method=\"GET\",le=\"0.5\"}", text);
    }
}
