using KfmRollback.Engine.Adapters.Http;
using System.Collections.Concurrent;
using System.Net;
using System.Text;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Tests.Support;
using KfmRollback.Engine.Verification;

namespace KfmRollback.Engine.Tests.Security;

/// <summary>A loopback HTTP server answering through a handler, recording each request (path and Authorization).</summary>
internal sealed class RecordingServer : IDisposable
{
    private readonly HttpListener _listener;
    private readonly Func<HttpListenerContext, Task> _handler;

    public RecordingServer(Func<HttpListenerContext, Task>? handler = null)
    {
        _handler = handler ?? (c => Answer(c, 200, "{}"));
        _listener = LoopbackListeners.Open(out int port);
        Port = port;
        _ = Task.Run(LoopAsync);
    }

    public int Port { get; }
    public Uri BaseUrl => new($"http://127.0.0.1:{Port}/");
    public ConcurrentQueue<(string Path, string? Authorization)> Seen { get; } = new();

    public static async Task Answer(HttpListenerContext context, int status, string json, string? location = null)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(json);
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        if (location is not null) context.Response.Headers["Location"] = location;
        context.Response.ContentLength64 = bytes.Length;
        await context.Response.OutputStream.WriteAsync(bytes);
        context.Response.Close();
    }

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
            Seen.Enqueue((context.Request.RawUrl ?? "", context.Request.Headers["Authorization"]));
            try { await _handler(context); }
            catch (Exception) { try { context.Response.Abort(); } catch (ObjectDisposedException) { } }
        }
    }

    public void Dispose()
    {
        LoopbackListeners.Release(_listener);
    }
}

/// <summary>
/// Issue 17, item 1: the API under test may be the bad build, so its own OpenAPI document and its
/// redirects must not choose where the probe caller's token goes.
/// </summary>
public sealed class HostileApiTests : IDisposable
{
    private const string Token = "probe-token-Zq7Zq7Zq7Zq7Zq7Zq7";
    private readonly string _variable = "KFM_TEST_HOSTILE_" + Guid.NewGuid().ToString("N")[..6].ToUpperInvariant();
    private readonly RecordingServer _elsewhere = new();
    private readonly RecordingServer _api;
    private readonly string _dir = Directory.CreateTempSubdirectory("kfm-hostile-api").FullName;

    public HostileApiTests()
    {
        System.Environment.SetEnvironmentVariable(_variable, Token);
        _api = new RecordingServer(ServeAsync);
    }

    private string Document()
    {
        static string Get() => "{\"get\":{\"responses\":{\"200\":{\"description\":\"ok\"}}}}";
        string other = $"127.0.0.1:{_elsewhere.Port}";
        return "{\"openapi\":\"3.0.3\",\"info\":{\"title\":\"hostile\",\"version\":\"1\"},\"paths\":{" +
               $"\"/api/v1/datasets\":{Get()}," +
               $"\"/http://{other}/absolute\":{Get()}," +
               $"\"//{other}/protocol-relative\":{Get()}," +
               $"\"/api/v1/../../escape\":{Get()}," +
               $"\"/api/v1/%2e%2e/%2e%2e/encoded\":{Get()}" +
               "}}";
    }

    // The API lives under /kfm/: its document, a list, and a redirect to another origin.
    private async Task ServeAsync(HttpListenerContext context)
    {
        string path = context.Request.Url!.AbsolutePath;
        if (path == "/kfm/api/v1/openapi.json") { await RecordingServer.Answer(context, 200, Document()); return; }
        if (path == "/kfm/api/v1/datasets") { await RecordingServer.Answer(context, 200, "{\"items\":[]}"); return; }
        if (path == "/kfm/api/v1/moved") { await RecordingServer.Answer(context, 302, "{}", $"http://127.0.0.1:{_elsewhere.Port}/stolen"); return; }
        await RecordingServer.Answer(context, 404, "{\"error_code\":\"NOT_FOUND\",\"message\":\"no\",\"audit_ref\":\"kfm://audit/1\"}");
    }

    private EnvironmentConfig Environment() => KfmConfigLoader.LoadFromText($"""
        defaults:
          incident_journal: {_dir}/incidents
          receipt_store: {_dir}/receipts
        environments:
          lab:
            cluster: {"{"} namespace: kfm, deployment: kfm-api {"}"}
            api:
              base_url: http://127.0.0.1:{_api.Port}/kfm/
              openapi_path: /api/v1/openapi.json
              contract_snapshot_dir: {_dir}/contracts
              probe:
                callers:
                  public-user: {"{"} token_env: {_variable}, role: public {"}"}
                endpoints:
                  - path: /api/v1/datasets

        """, "kfm-rollback.yaml", _dir).GetEnvironment("lab");

    [Fact]
    public async Task Document_paths_that_leave_the_API_are_contract_failures_and_are_never_requested()
    {
        IReadOnlyList<CheckResult> results = await ContractChecks.RunAsync(Environment(), null, recordSnapshot: false, CancellationToken.None);

        Assert.Empty(_elsewhere.Seen);
        Assert.DoesNotContain(_api.Seen, s => s.Path.Contains("escape", StringComparison.Ordinal) || s.Path.Contains("encoded", StringComparison.Ordinal) || s.Path.Contains("absolute", StringComparison.Ordinal));
        Assert.All(_api.Seen, s => Assert.StartsWith("/kfm/", s.Path));
        foreach (string hostile in new[] { "absolute", "protocol-relative", "escape", "encoded" })
        {
            CheckResult result = Assert.Single(results, r => r.Check.StartsWith("C.smoke", StringComparison.Ordinal) && r.Check.EndsWith(hostile, StringComparison.Ordinal));
            Assert.Equal(Verdict.Fail, result.Verdict);
            Assert.Contains("not requested", result.Summary);
            Assert.Contains(hostile, result.Summary);
        }
        Assert.Equal(Verdict.Pass, Assert.Single(results, r => r.Check == "C.smoke/api/v1/datasets").Verdict);
    }

    [Theory]
    [InlineData("/api/v1/datasets", true)]
    [InlineData("/api/v1/datasets/{id}?q=1", true)]
    [InlineData("/http://evil.example/x", false)]
    [InlineData("//evil.example/x", false)]
    [InlineData("/\\evil.example/x", false)]
    [InlineData("/api/../../x", false)]
    [InlineData("/api/%2E%2E/%2e%2e/x", false)]
    [InlineData("api/v1/datasets", false)]
    [InlineData("/api/v1/\u0000", false)]
    public void Only_paths_under_the_base_url_resolve(string path, bool inside)
    {
        using var client = new ProbeClient(Environment().Api);
        Uri? target = client.Resolve(path);
        Assert.Equal(inside, target is not null);
        if (target is not null) Assert.StartsWith($"http://127.0.0.1:{_api.Port}/kfm/", target.AbsoluteUri);
    }

    [Fact]
    public async Task A_redirect_is_the_answer_recorded_and_never_followed()
    {
        using var client = new ProbeClient(Environment().Api);
        ProbeResponse single = await client.SendAsync(HttpMethod.Get, "/api/v1/moved", Token, CancellationToken.None);
        ProbeResponse[] batch = await client.SendManyAsync(new[] { new ProbeRequest(HttpMethod.Get, "/api/v1/moved", Token) }, CancellationToken.None);

        Assert.Equal(302, single.Status);
        Assert.Equal(302, batch[0].Status);
        Assert.Empty(_elsewhere.Seen);
    }

    [Fact]
    public async Task A_hostile_path_sent_directly_is_refused_before_any_request()
    {
        using var client = new ProbeClient(Environment().Api);
        var e = await Assert.ThrowsAsync<Core.KfmException>(() => client.SendAsync(HttpMethod.Get, $"/http://127.0.0.1:{_elsewhere.Port}/x", Token, CancellationToken.None));
        Assert.Equal("ProbePathOutsideApi", e.ErrorId);
        await Assert.ThrowsAsync<Core.KfmException>(() => client.SendManyAsync(new[] { new ProbeRequest(HttpMethod.Get, $"//127.0.0.1:{_elsewhere.Port}/x", Token) }, CancellationToken.None));
        Assert.Empty(_elsewhere.Seen);
        Assert.Empty(_api.Seen);
    }

    public void Dispose()
    {
        System.Environment.SetEnvironmentVariable(_variable, null);
        _api.Dispose();
        _elsewhere.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
