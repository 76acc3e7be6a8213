using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Xunit;

namespace KfmRollback.Lab.Tests;

public sealed record Run(int ExitCode, string Out, string Err)
{
    public string All => Out + Err;
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Out}\nstderr:\n{Err}";
}

/// <summary>An in-process lab per test (they start in well under a second), plus kubectl and HTTP helpers.</summary>
public sealed class Lab : IAsyncDisposable
{
    public const string Kubectl = "/usr/bin/kubectl";
    public LabHost Host { get; }
    public string Dir { get; }
    readonly HttpClient _http;

    Lab(LabHost host, string dir)
    {
        Host = host; Dir = dir;
        var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, cert, _, _) => cert != null && host.Certs != null && cert.Thumbprint == host.Certs.Server.Thumbprint };
        _http = new HttpClient(handler) { BaseAddress = new Uri(host.ApiServerUrl), Timeout = TimeSpan.FromSeconds(30) };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", host.AdminToken);
    }

    public static async Task<Lab> Start(bool prometheus = false, double timeScale = 20, bool argoAutoSync = true)
    {
        var dir = Path.Combine(Path.GetTempPath(), "kfm-lab-tests", Guid.NewGuid().ToString("N")[..12]);
        var host = await LabHost.StartAsync(new LabOptions { OutDir = dir, TimeScale = timeScale, PodStartSeconds = 2, TrafficPerSecond = 5, Prometheus = prometheus });
        var lab = new Lab(host, dir);
        if (!argoAutoSync)
            (await lab.K("patch", "application", "kfm-api", "-n", "argocd", "--type=merge", "-p", "{\"spec\":{\"syncPolicy\":{\"automated\":null}}}")).Ok();
        return lab;
    }

    public HttpClient Http => _http;

    /// <summary>A client of its own (watch streams should not share pooled connections).</summary>
    public HttpClient NewClient(string? token = null)
    {
        var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, cert, _, _) => cert != null && Host.Certs != null && cert.Thumbprint == Host.Certs.Server.Thumbprint };
        var c = new HttpClient(handler) { BaseAddress = new Uri(Host.ApiServerUrl), Timeout = TimeSpan.FromSeconds(60) };
        c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token ?? Host.AdminToken);
        return c;
    }

    /// <summary>kubectl against this lab; its discovery cache stays in the lab directory, not in $HOME.</summary>
    public async Task<Run> K(params string[] args) => await Exec(Kubectl, [.. KubectlArgs, .. args]);
    public async Task<Run> KAs(string context, params string[] args) => await Exec(Kubectl, [.. KubectlArgs, "--context", context, .. args]);
    public string[] KubectlArgs => ["--kubeconfig", Host.KubeconfigPath, "--cache-dir", Path.Combine(Dir, "kube-cache")];

    public static async Task<Run> Exec(string file, string[] args, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try { await p.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException)
        {
            p.Kill(true);
            await p.WaitForExitAsync();
            return new Run(-1, await o, await e + "\n(killed after timeout)");
        }
        return new Run(p.ExitCode, await o, await e);
    }

    public async Task<JsonObject> GetJson(string path)
    {
        var r = await _http.GetAsync(path);
        var body = await r.Content.ReadAsStringAsync();
        Assert.True(r.IsSuccessStatusCode, $"GET {path}: {(int)r.StatusCode} {body}");
        return JsonNode.Parse(body)!.AsObject();
    }

    public async Task<(int code, JsonObject body)> Send(HttpMethod m, string path, string? body = null, string contentType = "application/json")
    {
        using var req = new HttpRequestMessage(m, path);
        if (body != null) req.Content = new StringContent(body, Encoding.UTF8, contentType);
        if (body != null) req.Content!.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        using var r = await _http.SendAsync(req);
        var text = await r.Content.ReadAsStringAsync();
        return ((int)r.StatusCode, text.Length > 0 ? JsonNode.Parse(text)!.AsObject() : new JsonObject());
    }

    public JsonObject Deployment(string ns = "kfm", string name = "kfm-api") =>
        Host.Store.Get(Api.Resources.Deployments, ns, name) ?? throw new Xunit.Sdk.XunitException($"deployment {ns}/{name} missing");

    public string Image(string ns = "kfm", string name = "kfm-api") => Deployment(ns, name).Str("spec.template.spec.containers.0.image")!;

    /// <summary>Polls a condition; fails with the message after the bound (the bound is not an assertion on speed).</summary>
    public static async Task Eventually(Func<Task<bool>> cond, string what, int seconds = 40)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < until)
        {
            if (await cond()) return;
            await Task.Delay(50);
        }
        Assert.Fail($"timed out waiting for: {what}");
    }
    public static Task Eventually(Func<bool> cond, string what, int seconds = 40) => Eventually(() => Task.FromResult(cond()), what, seconds);

    public Task RolledOut(string ns = "kfm", string name = "kfm-api") => Eventually(() =>
    {
        var d = Host.Store.Get(Api.Resources.Deployments, ns, name);
        if (d == null) return false;
        var r = d.Long("spec.replicas") ?? 1;
        return (d.Long("status.observedGeneration") ?? 0) >= (d.Long("metadata.generation") ?? 1)
               && (d.Long("status.updatedReplicas") ?? 0) == r && (d.Long("status.availableReplicas") ?? 0) == r && (d.Long("status.replicas") ?? 0) == r;
    }, $"{ns}/{name} rolled out");

    public async ValueTask DisposeAsync()
    {
        var errors = Host.LoopErrors;
        _http.Dispose();
        await Host.DisposeAsync();
        try { Directory.Delete(Dir, true); } catch (Exception) { }
        // Every test also checks that no controller threw while it ran.
        Assert.True(errors.Count == 0, "controller errors:\n" + string.Join("\n", errors));
    }
}

public static class RunExt
{
    public static Run Ok(this Run r) { Assert.True(r.ExitCode == 0, r.ToString()); return r; }
}

/// <summary>Manifests several tests apply with real kubectl.</summary>
public static class Manifests
{
    /// <summary>An nginx Deployment in namespace default, written to <paramref name="dir"/>; returns the file path.</summary>
    public static string NginxDeployment(string dir, string name, int minReadySeconds = 0, string extraDocuments = "")
    {
        string path = Path.Combine(dir, name + ".yaml");
        string yaml = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: NAME, namespace: default}
            spec:
              replicas: 2
              minReadySeconds: MIN_READY
              selector: {matchLabels: {app: NAME}}
              template:
                metadata: {labels: {app: NAME}}
                spec:
                  containers: [{name: web, image: "nginx:1.25"}]

            """;
        File.WriteAllText(path, yaml.Replace("NAME", name).Replace("MIN_READY", minReadySeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)) + extraDocuments);
        return path;
    }
}
