using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using KfmRollback.Lab.Api;
using Xunit;

namespace KfmRollback.Lab.Tests;

/// <summary>Faults on demand through /lab/ admin endpoints.</summary>
public class FaultTests
{
    static Task<(int code, JsonObject body)> Fault(Lab lab, string json) => lab.Send(HttpMethod.Post, "/lab/faults", json);

    [Fact]
    public async Task ErrorRate_MakesKubectlFail_UntilCleared()
    {
        await using var lab = await Lab.Start();
        Assert.Equal(200, (await Fault(lab, "{\"resource\":\"deployments\",\"verb\":\"list\",\"errorRate\":1,\"errorCode\":500}")).code);
        var r = await lab.K("get", "deploy", "-n", "kfm");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("lab fault injected for list deployments.apps", r.Err);
        (await lab.K("get", "rs", "-n", "kfm")).Ok();   // other resources unaffected
        Assert.Equal(200, (await lab.Send(HttpMethod.Delete, "/lab/faults")).code);
        (await lab.K("get", "deploy", "-n", "kfm")).Ok();
    }

    [Fact]
    public async Task ConflictStorm_OnPatch()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        await Fault(lab, "{\"resource\":\"deployments\",\"verb\":\"patch\",\"conflictCount\":2}");
        const string url = "/apis/apps/v1/namespaces/kfm/deployments/kfm-api";
        var codes = new List<int>();
        for (int i = 0; i < 3; i++) codes.Add((await lab.Send(HttpMethod.Patch, url, "{\"spec\":{\"paused\":true}}", "application/merge-patch+json")).code);
        Assert.Equal([409, 409, 200], codes);
        Assert.True(lab.Deployment().Bool("spec.paused"));
    }

    [Fact]
    public async Task WatchDrop_EndsStreams_AndKubectlRolloutStatusRecovers()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        await lab.RolledOut();
        await Fault(lab, "{\"resource\":\"pods\",\"verb\":\"watch\",\"dropWatchAfterEvents\":2}");
        using var http = lab.NewClient();
        using var resp = await http.GetAsync("/api/v1/namespaces/kfm/pods?watch=true", HttpCompletionOption.ResponseHeadersRead);
        var lines = (await resp.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);   // 3 pods exist: the stream was cut after two events

        await Fault(lab, "{\"resource\":\"deployments\",\"verb\":\"watch\",\"dropWatchAfterEvents\":1}");
        (await lab.K("set", "image", "deployment/kfm-api", "-n", "kfm", $"api={lab.Host.Images.Get("good-1.4.1").Image}")).Ok();
        var r = (await lab.K("rollout", "status", "deployment/kfm-api", "-n", "kfm", "--timeout=60s")).Ok();
        Assert.Contains("successfully rolled out", r.Out);
    }

    [Fact]
    public async Task ConnectionReset_AndSlowApiserver()
    {
        await using var lab = await Lab.Start();
        await Fault(lab, "{\"resource\":\"configmaps\",\"verb\":\"get\",\"resetRate\":1}");
        using var http = lab.NewClient();
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => http.GetAsync("/api/v1/namespaces/kfm/configmaps/kfm-api-config"));
        await lab.Send(HttpMethod.Delete, "/lab/faults");
        await Fault(lab, "{\"globalLatencyMs\":3000}");
        var state = await lab.GetJson("/lab/faults");
        Assert.Equal(3000, state.Long("globalLatencyMs"));
        // A slow apiserver makes a client with a short deadline give up...
        var slow = await lab.K("get", "cm", "kfm-api-config", "-n", "kfm", "--request-timeout=500ms");
        Assert.NotEqual(0, slow.ExitCode);
        Assert.Matches("(?i)(timeout|deadline exceeded)", slow.Err);
        // ...and it is fine again once the fault is cleared.
        await lab.Send(HttpMethod.Delete, "/lab/faults");
        (await lab.K("get", "cm", "kfm-api-config", "-n", "kfm", "--request-timeout=30s")).Ok();
    }

    [Fact]
    public async Task MarkImageBad_GoodDigestStartsCrashLooping()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        await lab.RolledOut();
        var (code, _) = await lab.Send(HttpMethod.Post, "/lab/images", "{\"name\":\"good-1.4.0\",\"state\":\"CrashLoopBackOff\"}");
        Assert.Equal(200, code);
        (await lab.K("set", "image", "deployment/kfm-api", "-n", "kfm", $"api={lab.Host.Images.Get("good-1.4.0").Image}")).Ok();
        await Lab.Eventually(async () => (await lab.K("get", "pods", "-n", "kfm")).Out.Contains("CrashLoopBackOff"), "CrashLoopBackOff pod");
        await lab.Send(HttpMethod.Post, "/lab/images", "{\"name\":\"good-1.4.0\",\"state\":\"None\"}");
        await lab.RolledOut();
    }

    [Fact]
    public async Task AdminEndpoints_NeedAdminToken()
    {
        await using var lab = await Lab.Start();
        using var viewer = lab.NewClient(lab.Host.ViewerToken);
        Assert.Equal(403, (int)(await viewer.PostAsync("/lab/compact", null)).StatusCode);
        using var nobody = lab.NewClient("bogus");
        Assert.Equal(401, (int)(await nobody.GetAsync("/lab/state")).StatusCode);
        var state = await lab.GetJson("/lab/state");
        Assert.Equal("good-1.5.1", state.Str("kfmApi.build") ?? "good-1.5.1");
        var before = J.ParseTime(state.Str("simTime"))!.Value;
        var after = J.ParseTime((await lab.Send(HttpMethod.Post, "/lab/advance?seconds=3600")).body.Str("simTime"))!.Value;
        Assert.True(after - before >= TimeSpan.FromHours(1));
    }
}
