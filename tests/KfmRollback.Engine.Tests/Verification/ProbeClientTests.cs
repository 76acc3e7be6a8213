using KfmRollback.Engine.Adapters.Http;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Tests.Support;
using Xunit;

namespace KfmRollback.Engine.Tests.Verification;

/// <summary>The probe client against a real HTTP listener on loopback.</summary>
public sealed class ProbeClientTests : IDisposable
{
    private readonly HttpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<(string Path, DateTime At, string? Cookie)> _seen = new();
    private readonly ConcurrentDictionary<string, int> _throttled = new();
    private int _inFlight, _maxInFlight;
    private readonly Uri _base;

    public ProbeClientTests()
    {
        _listener = LoopbackListeners.Open(out int port);
        _base = new Uri($"http://127.0.0.1:{port}/");
        _ = Task.Run(ServeAsync);
    }

    // /echo/<n>: answers {"n":"<n>","audit_ref":"kfm://audit/<guid>"} after a short pause, so requests overlap.
    // /throttle/<kind>: first call 429 with Retry-After (seconds or an HTTP date), then 200.
    // /cookie: sets a session cookie.
    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync(); }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
            catch (HttpListenerException) { return; }
            _ = Task.Run(async () =>
            {
                string path = context.Request.Url!.AbsolutePath;
                _seen.Enqueue((path, DateTime.UtcNow, context.Request.Headers["Cookie"]));
                int now = Interlocked.Increment(ref _inFlight);
                int max;
                while ((max = Volatile.Read(ref _maxInFlight)) < now && Interlocked.CompareExchange(ref _maxInFlight, now, max) != max) { }
                // A request stops counting before its answer goes out: once the client has the
                // answer it may send the next one, which must not overlap the finished request.
                bool counted = true;
                void Answered() { if (counted) { counted = false; Interlocked.Decrement(ref _inFlight); } }
                try
                {
                    string body;
                    if (path.StartsWith("/throttle/", StringComparison.Ordinal) && _throttled.AddOrUpdate(path, 1, (_, n) => n + 1) == 1)
                    {
                        context.Response.StatusCode = 429;
                        context.Response.Headers["Retry-After"] = path.EndsWith("date", StringComparison.Ordinal)
                            ? DateTime.UtcNow.AddSeconds(2).ToString("R")
                            : "1";
                        body = "{\"error_code\":\"RATE_LIMITED\",\"message\":\"slow down\",\"audit_ref\":\"kfm://audit/1\"}";
                    }
                    else
                    {
                        if (path == "/cookie") { context.Response.Headers["Set-Cookie"] = "session=steward-session; Path=/"; }
                        await Task.Delay(20);
                        body = $"{{\"n\":\"{path}\",\"audit_ref\":\"kfm://audit/{Guid.NewGuid():N}\"}}";
                    }
                    byte[] bytes = Encoding.UTF8.GetBytes(body);
                    context.Response.ContentType = "application/json";
                    context.Response.ContentLength64 = bytes.Length;
                    Answered();
                    await context.Response.OutputStream.WriteAsync(bytes);
                    context.Response.Close();
                }
                finally { Answered(); }
            });
        }
    }

    private ProbeClient Client(int concurrency, IWebProxy? proxy = null, Uri? baseUrl = null) => new(new ApiConfig
    {
        BaseUrl = baseUrl ?? _base,
        Probe = new ProbePlan
        {
            Callers = new Dictionary<string, ProbeCaller> { ["anonymous"] = new() { Anonymous = true } },
            Endpoints = new[] { new ProbeEndpoint { Path = "/echo/{id}" } },
            Concurrency = concurrency,
        },
    }, new ProbeClientOptions { Proxy = proxy });

    [Fact]
    public async Task A_batch_keeps_request_order_and_never_exceeds_its_concurrency()
    {
        using ProbeClient client = Client(concurrency: 4);
        var requests = Enumerable.Range(0, 40).Select(i => new ProbeRequest(HttpMethod.Get, $"/echo/{i}", null)).ToArray();

        ProbeResponse[] responses = await client.SendManyAsync(requests, CancellationToken.None);

        Assert.Equal(40, responses.Length);
        for (int i = 0; i < 40; i++)
        {
            Assert.Equal(200, responses[i].Status);
            Assert.Equal($"/echo/{i}", (string?)responses[i].Body?["n"]);
        }
        Assert.InRange(_maxInFlight, 2, 4);
    }

    [Theory]
    [InlineData("/throttle/seconds", 1.0)]
    [InlineData("/throttle/date", 1.0)]
    public async Task A_429_is_retried_after_the_time_the_server_asked_for(string path, double atLeastSeconds)
    {
        using ProbeClient client = Client(concurrency: 2);

        ProbeResponse response = await client.SendAsync(HttpMethod.Get, path, null, CancellationToken.None);

        Assert.Equal(200, response.Status);
        var calls = _seen.Where(s => s.Path == path).Select(s => s.At).ToList();
        Assert.Equal(2, calls.Count);
        Assert.True((calls[1] - calls[0]).TotalSeconds >= atLeastSeconds - 0.05, $"retried after {(calls[1] - calls[0]).TotalSeconds:0.00} s");
    }

    [Fact]
    public void Retry_after_is_read_as_seconds_or_a_date_and_bounded()
    {
        Assert.Equal(TimeSpan.FromSeconds(3), ProbeClient.RetryDelay(new RetryConditionHeaderValue(TimeSpan.FromSeconds(3))));
        Assert.Equal(TimeSpan.FromSeconds(10), ProbeClient.RetryDelay(new RetryConditionHeaderValue(TimeSpan.FromMinutes(5))));
        Assert.Equal(TimeSpan.Zero, ProbeClient.RetryDelay(new RetryConditionHeaderValue(DateTimeOffset.UtcNow.AddMinutes(-1))));
        Assert.InRange(ProbeClient.RetryDelay(new RetryConditionHeaderValue(DateTimeOffset.UtcNow.AddSeconds(5))), TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(5));
        Assert.Equal(TimeSpan.FromSeconds(1), ProbeClient.RetryDelay(null));
    }

    [Fact]
    public async Task A_cookie_one_answer_sets_never_rides_on_a_later_probe()
    {
        using ProbeClient client = Client(concurrency: 1);
        await client.SendAsync(HttpMethod.Get, "/cookie", "steward-token", CancellationToken.None);

        await client.SendAsync(HttpMethod.Get, "/echo/anonymous", null, CancellationToken.None);

        Assert.Null(_seen.Single(s => s.Path == "/echo/anonymous").Cookie);
    }

    [Fact]
    public async Task A_remote_api_is_reached_through_the_proxy_that_applies_to_it()
    {
        // A scripted proxy on loopback; the API's name is reserved (RFC 6761) and never resolved.
        using var proxy = new ScriptedProxy();
        using ProbeClient client = Client(concurrency: 2, proxy: new FixedProxy(proxy.Url), baseUrl: new Uri("http://kfm-api.test/"));

        ProbeResponse[] responses = await client.SendManyAsync(new[] { new ProbeRequest(HttpMethod.Get, "/echo/p1", null), new ProbeRequest(HttpMethod.Get, "/echo/p2", null) }, CancellationToken.None);

        Assert.All(responses, r => Assert.Equal(200, r.Status));
        Assert.Contains("GET http://kfm-api.test/echo/p2 HTTP/1.1", proxy.RequestLines);
    }

    [Fact]
    public async Task An_api_on_loopback_is_never_reached_through_a_proxy()
    {
        using var proxy = new ScriptedProxy();
        using ProbeClient client = Client(concurrency: 2, proxy: new FixedProxy(proxy.Url));

        ProbeResponse single = await client.SendAsync(HttpMethod.Get, "/echo/l1", "steward-token", CancellationToken.None);
        ProbeResponse[] batch = await client.SendManyAsync(new[] { new ProbeRequest(HttpMethod.Get, "/echo/l2", "steward-token") }, CancellationToken.None);

        Assert.Equal("/echo/l1", (string?)single.Body?["n"]);
        Assert.Equal("/echo/l2", (string?)batch[0].Body?["n"]);
        Assert.Empty(proxy.RequestLines);
    }

    private sealed class FixedProxy(Uri proxy) : IWebProxy
    {
        public ICredentials? Credentials { get; set; }
        public Uri GetProxy(Uri destination) => proxy;
        public bool IsBypassed(Uri host) => false;
    }

    /// <summary>A forward proxy on loopback that records each request line and answers 200 with a small JSON body.</summary>
    private sealed class ScriptedProxy : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly ConcurrentQueue<string> _lines = new();

        public ScriptedProxy()
        {
            _listener.Start();
            _ = Task.Run(async () =>
            {
                while (true)
                {
                    TcpClient connection;
                    try { connection = await _listener.AcceptTcpClientAsync(); } catch (Exception) { return; }
                    _ = Task.Run(async () =>
                    {
                        using TcpClient owned = connection;
                        using var reader = new StreamReader(owned.GetStream(), Encoding.ASCII, leaveOpen: true);
                        Stream stream = owned.GetStream();
                        while (await reader.ReadLineAsync() is { Length: > 0 } requestLine)
                        {
                            _lines.Enqueue(requestLine);
                            while (await reader.ReadLineAsync() is { Length: > 0 }) { }
                            await stream.WriteAsync(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"));
                        }
                    });
                }
            });
        }

        public Uri Url => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");

        public IReadOnlyCollection<string> RequestLines => _lines.ToArray();

        public void Dispose() => _listener.Stop();
    }

    [Fact]
    public async Task Answers_that_differ_only_in_their_audit_ref_are_the_same_answer()
    {
        using ProbeClient client = Client(concurrency: 2);
        ProbeResponse[] same = await client.SendManyAsync(new[] { new ProbeRequest(HttpMethod.Get, "/echo/a", null), new ProbeRequest(HttpMethod.Get, "/echo/a", null) }, CancellationToken.None);
        ProbeResponse other = await client.SendAsync(HttpMethod.Get, "/echo/b", null, CancellationToken.None);

        Assert.NotEqual((string?)same[0].Body?["audit_ref"], (string?)same[1].Body?["audit_ref"]);
        Assert.True(ProbeResponse.SameAnswer.Equals(same[0], same[1]));
        Assert.Equal(ProbeResponse.SameAnswer.GetHashCode(same[0]), ProbeResponse.SameAnswer.GetHashCode(same[1]));
        Assert.Equal(same[0].NormalisedLength, same[1].NormalisedLength);
        Assert.False(ProbeResponse.SameAnswer.Equals(same[0], other));
    }

    [Fact]
    public async Task An_api_that_does_not_answer_is_a_connection_error_naming_no_credential()
    {
        int port = LoopbackPorts.Free();
        using var client = new ProbeClient(new ApiConfig
        {
            BaseUrl = new Uri($"http://127.0.0.1:{port}/"),
            Probe = new ProbePlan { Callers = new Dictionary<string, ProbeCaller>(), Endpoints = Array.Empty<ProbeEndpoint>() },
        });

        var error = await Assert.ThrowsAsync<KfmRollback.Engine.Core.KfmException>(
            () => client.SendManyAsync(new[] { new ProbeRequest(HttpMethod.Get, "/x", "canary-token-7f3a") }, CancellationToken.None));

        Assert.Equal("ProbeApiUnreachable", error.ErrorId);
        Assert.DoesNotContain("canary-token-7f3a", error.ToString(), StringComparison.Ordinal);
    }

    public void Dispose()
    {
        _stop.Cancel();
        LoopbackListeners.Release(_listener);
        _stop.Dispose();
    }
}

/// <summary>What makes two responses the same answer for the existence-leak comparison.</summary>
public sealed class SameAnswerTests
{
    private static ProbeResponse Response(string body, int status = 404, string? type = "application/json") =>
        new(status, System.Text.Encoding.UTF8.GetBytes(body), type, 1);

    [Theory]
    // Only the audit_ref value differs: the same answer.
    [InlineData("{\"e\":\"N\",\"audit_ref\":\"kfm://a/1\"}", "{\"e\":\"N\",\"audit_ref\":\"kfm://a/22\"}", true)]
    // One audit_ref is not a URI: different.
    [InlineData("{\"e\":\"N\",\"audit_ref\":\"kfm://a/1\"}", "{\"e\":\"N\",\"audit_ref\":\"12345\"}", false)]
    // One has no audit_ref at all: different.
    [InlineData("{\"e\":\"N\",\"audit_ref\":\"kfm://a/1\"}", "{\"e\":\"N\"}", false)]
    // A nested audit_ref is ordinary content.
    [InlineData("{\"x\":{\"audit_ref\":\"kfm://a/1\"}}", "{\"x\":{\"audit_ref\":\"kfm://a/2\"}}", false)]
    // Any other byte differs: different.
    [InlineData("{\"e\":\"N\",\"audit_ref\":\"kfm://a/1\"}", "{\"e\":\"M\",\"audit_ref\":\"kfm://a/1\"}", false)]
    // Not JSON: byte for byte.
    [InlineData("<html>nope</html>", "<html>nope</html>", true)]
    [InlineData("<html>nope</html>", "<html>Nope</html>", false)]
    // An escaped URI is still a URI.
    [InlineData("{\"audit_ref\":\"kfm:\\/\\/a\\/1\"}", "{\"audit_ref\":\"kfm://a/9\"}", true)]
    public void Only_the_audit_ref_value_is_ignored(string left, string right, bool same)
    {
        Assert.Equal(same, ProbeResponse.SameAnswer.Equals(Response(left), Response(right)));
    }

    [Fact]
    public void Status_and_media_type_are_part_of_the_answer()
    {
        const string body = "{\"audit_ref\":\"kfm://a/1\"}";
        Assert.False(ProbeResponse.SameAnswer.Equals(Response(body, 404), Response(body, 403)));
        Assert.False(ProbeResponse.SameAnswer.Equals(Response(body, type: "application/json"), Response(body, type: "application/problem+json")));
    }

    [Fact]
    public void Compared_headers_are_part_of_the_answer()
    {
        const string body = "{\"audit_ref\":\"kfm://a/1\"}";
        var etag = new[] { new KeyValuePair<string, string>("etag", "\"v1\"") };
        ProbeResponse With(IReadOnlyList<KeyValuePair<string, string>>? headers) => new(404, System.Text.Encoding.UTF8.GetBytes(body), "application/json", 1, headers);
        Assert.False(ProbeResponse.SameAnswer.Equals(With(etag), With(null)));
        Assert.True(ProbeResponse.SameAnswer.Equals(With(etag), With(new[] { new KeyValuePair<string, string>("etag", "\"v1\"") })));
        Assert.Equal("\"v1\"", With(etag).Header("ETag"));
    }

    [Fact]
    public void The_normalised_length_leaves_out_only_the_audit_ref_value()
    {
        Assert.Equal(Response("{\"e\":1,\"audit_ref\":\"kfm://a/1\"}").NormalisedLength, Response("{\"e\":1,\"audit_ref\":\"kfm://a/123456\"}").NormalisedLength);
        Assert.NotEqual(Response("{\"e\":1,\"audit_ref\":\"kfm://a/1\"}").NormalisedLength, Response("{\"e\":12,\"audit_ref\":\"kfm://a/1\"}").NormalisedLength);
    }
}
