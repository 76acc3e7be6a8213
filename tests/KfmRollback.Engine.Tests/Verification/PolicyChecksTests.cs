using KfmRollback.Engine.Adapters.Http;
using System.Net;
using System.Net.Sockets;
using System.Text;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Tests.Configuration;
using KfmRollback.Engine.Verification;
using KfmRollback.Engine.Tests.Support;
using Xunit;

namespace KfmRollback.Engine.Tests.Verification;

/// <summary>Checklist B's existence-leak comparison against an API whose answers each test scripts.</summary>
public sealed class PolicyChecksTests : IDisposable
{
    private const string Token = "canary-public-token-5d1e";
    private const string RestrictedId = "canary_restricted_site_77";
    private readonly HttpListener _listener;
    private readonly Uri _base;
    private Func<string, HttpListenerResponse, string> _answer = (_, _) => "{}";

    public PolicyChecksTests()
    {
        _listener = LoopbackListeners.Open(out int port);
        _base = new Uri($"http://127.0.0.1:{port}/");
        _ = Task.Run(async () =>
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try { context = await _listener.GetContextAsync(); } catch (Exception) { return; }
                string body = _answer(context.Request.Url!.AbsolutePath, context.Response);
                byte[] bytes = Encoding.UTF8.GetBytes(body);
                context.Response.ContentType = "application/json";
                context.Response.ContentLength64 = bytes.Length;
                await context.Response.OutputStream.WriteAsync(bytes);
                context.Response.Close();
            }
        });
        Environment.SetEnvironmentVariable("KFM_TEST_PROBE_TOKEN", Token);
        Environment.SetEnvironmentVariable("KFM_TEST_PROBE_RESTRICTED", RestrictedId);
    }

    private EnvironmentConfig Environment_() => ConfigTestSupport.Load(ConfigTestSupport.Minimal
        .Replace("base_url: https://api.test", $"base_url: {_base}", StringComparison.Ordinal)
        .Replace("          anon:\n            anonymous: true\n", "          public-user:\n            token_env: KFM_TEST_PROBE_TOKEN\n", StringComparison.Ordinal)
        .Replace("          - path: /api/v1/datasets",
            "          - path: /api/v1/datasets/{id}\n        restricted_ids_env: KFM_TEST_PROBE_RESTRICTED\n        samples: 8", StringComparison.Ordinal))
        .GetEnvironment("prod");

    private static string NotFound(string auditRef) =>
        $"{{\"error_code\":\"NOT_FOUND\",\"message\":\"The requested resource was not found.\",\"audit_ref\":\"kfm://audit/{auditRef}\"}}";

    private string Answer(string path, HttpListenerResponse response, bool etagOnExisting)
    {
        response.StatusCode = 404;
        if (!path.Contains(RestrictedId, StringComparison.Ordinal) || !etagOnExisting) { return NotFound(Guid.NewGuid().ToString("N")); }
        response.Headers["ETag"] = $"\"{RestrictedId}-v3\"";
        return NotFound(Guid.NewGuid().ToString("N"));
    }

    [Fact]
    public async Task Identical_answers_apart_from_audit_ref_are_no_leak()
    {
        _answer = (path, response) => Answer(path, response, etagOnExisting: false);

        IReadOnlyList<CheckResult> results = await PolicyChecks.RunAsync(Environment_(), CancellationToken.None);

        CheckResult leak = Assert.Single(results, r => r.Check.StartsWith("B.existence-leak", StringComparison.Ordinal));
        Assert.Equal(Verdict.Pass, leak.Verdict);
        Assert.Equal("8+8", leak.Evidence["samples"]);
    }

    [Fact]
    public async Task A_header_only_a_real_object_gets_is_a_leak_named_without_its_value()
    {
        _answer = (path, response) => Answer(path, response, etagOnExisting: true);

        IReadOnlyList<CheckResult> results = await PolicyChecks.RunAsync(Environment_(), CancellationToken.None);

        CheckResult leak = Assert.Single(results, r => r.Check.StartsWith("B.existence-leak", StringComparison.Ordinal));
        Assert.Equal(Verdict.Fail, leak.Verdict);
        Assert.Contains("header etag", leak.Summary, StringComparison.Ordinal);
        Assert.DoesNotContain("status", leak.Summary, StringComparison.Ordinal);
        string everything = string.Join("|", results.Select(r => r.Summary + string.Join(",", r.Evidence.Select(e => e.Key + "=" + e.Value))));
        Assert.DoesNotContain(RestrictedId, everything, StringComparison.Ordinal);
        Assert.DoesNotContain(Token, everything, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_different_status_for_a_real_object_is_a_leak()
    {
        _answer = (path, response) =>
        {
            response.StatusCode = path.Contains(RestrictedId, StringComparison.Ordinal) ? 403 : 404;
            return NotFound(Guid.NewGuid().ToString("N"));
        };

        IReadOnlyList<CheckResult> results = await PolicyChecks.RunAsync(Environment_(), CancellationToken.None);

        CheckResult leak = Assert.Single(results, r => r.Check.StartsWith("B.existence-leak", StringComparison.Ordinal));
        Assert.Equal(Verdict.Fail, leak.Verdict);
        Assert.Contains("status", leak.Summary, StringComparison.Ordinal);
        Assert.Equal("403", leak.Evidence["status_existing"]);
        Assert.Equal("404", leak.Evidence["status_missing"]);
    }

    public void Dispose()
    {
        LoopbackListeners.Release(_listener);
        Environment.SetEnvironmentVariable("KFM_TEST_PROBE_TOKEN", null);
        Environment.SetEnvironmentVariable("KFM_TEST_PROBE_RESTRICTED", null);
    }
}
