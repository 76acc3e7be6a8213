using KfmRollback.Engine.Adapters.Http;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using Xunit;

namespace KfmRollback.Engine.Tests.Verification;

/// <summary>
/// The probe client's HTTP/1.1 transport (HttpClient on SocketsHttpHandler) against a scripted
/// server that answers byte for byte what a test writes: every framing RFC 9112 allows, and the
/// broken ones a probe must refuse.
/// </summary>
public sealed class ProbeTransportTests : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly List<string> _requests = new();
    private int _connections;

    public ProbeTransportTests() => _listener.Start();

    private Uri BaseUrl(string scheme = "http") => new($"{scheme}://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");

    /// <summary>Serves connections; for each request read, writes what <paramref name="answer"/> returns (null: close).</summary>
    private void Serve(Func<int, string, string?> answer, X509Certificate2? certificate = null) => _ = Task.Run(async () =>
    {
        int served = 0;
        while (true)
        {
            Socket socket;
            try { socket = await _listener.AcceptSocketAsync(); } catch (Exception) { return; }
            Interlocked.Increment(ref _connections);
            _ = Task.Run(async () =>
            {
                await using Stream stream = certificate is null ? new NetworkStream(socket, true) : await Tls(new NetworkStream(socket, true), certificate);
                var pending = new StringBuilder();
                var buffer = new byte[8192];
                while (true)
                {
                    int end;
                    while ((end = pending.ToString().IndexOf("\r\n\r\n", StringComparison.Ordinal)) < 0)
                    {
                        int read;
                        try { read = await stream.ReadAsync(buffer); } catch (IOException) { return; }
                        if (read == 0) { return; }
                        pending.Append(Encoding.ASCII.GetString(buffer, 0, read));
                    }
                    string request = pending.ToString(0, end);
                    pending.Remove(0, end + 4);
                    lock (_requests) { _requests.Add(request); }
                    string? reply = answer(Interlocked.Increment(ref served), request);
                    if (reply is null) { return; }
                    bool hangUp = reply.EndsWith(HangUp, StringComparison.Ordinal);
                    await stream.WriteAsync(Encoding.ASCII.GetBytes(hangUp ? reply[..^HangUp.Length] : reply));
                    if (hangUp || reply.Contains("Connection: close", StringComparison.Ordinal) || reply.StartsWith("HTTP/1.0", StringComparison.Ordinal)) { return; }
                }
            });
        }
    });

    /// <summary>Appended to a scripted reply: close the connection right after writing it.</summary>
    private const string HangUp = "<hang-up>";

    private static async Task<Stream> Tls(Stream inner, X509Certificate2 certificate)
    {
        var tls = new SslStream(inner);
        await tls.AuthenticateAsServerAsync(certificate);
        return tls;
    }

    private ProbeClient Client(Uri? baseUrl = null, RemoteCertificateValidationCallback? validation = null) => new(new ApiConfig
    {
        BaseUrl = baseUrl ?? BaseUrl(),
        Probe = new ProbePlan
        {
            Callers = new Dictionary<string, ProbeCaller>(),
            Endpoints = new[] { new ProbeEndpoint { Path = "/x/{id}" } },
            Concurrency = 1,
        },
    }, new ProbeClientOptions { CertificateValidation = validation, RequestTimeout = TimeSpan.FromSeconds(3) });

    private static ProbeRequest Get(string path, string? token = null) => new(HttpMethod.Get, path, token);

    private const string Json = "{\"error_code\":\"NOT_FOUND\",\"message\":\"m\",\"audit_ref\":\"kfm://audit/1\"}";

    [Fact]
    public async Task Content_length_and_chunked_answers_give_the_same_body_on_one_connection()
    {
        string chunked = $"HTTP/1.1 404 Not Found\r\nContent-Type: application/json; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n" +
                         $"10;ext=1\r\n{Json[..16]}\r\n{Json.Length - 16:x}\r\n{Json[16..]}\r\n0\r\nX-Trailer: t\r\n\r\n";
        string sized = $"HTTP/1.1 404 Not Found\r\nContent-Type: Application/JSON\r\nContent-Length: {Json.Length}\r\n\r\n{Json}";
        Serve((n, _) => n % 2 == 1 ? chunked : sized);
        using ProbeClient client = Client();

        ProbeResponse[] responses = await client.SendManyAsync(new[] { Get("/x/1"), Get("/x/2"), Get("/x/3") }, CancellationToken.None);

        Assert.All(responses, r =>
        {
            Assert.Equal(404, r.Status);
            Assert.Equal("application/json", r.ContentType);
            Assert.Equal("NOT_FOUND", (string?)r.Body?["error_code"]);
        });
        Assert.True(ProbeResponse.SameAnswer.Equals(responses[0], responses[1]), "chunked and sized framing of one body are one answer");
        Assert.Equal(1, _connections);
    }

    [Fact]
    public async Task Requests_carry_host_token_and_an_escaped_target()
    {
        Serve((_, _) => $"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{{}}");
        using ProbeClient client = Client(new Uri(BaseUrl(), "prefix/"));

        await client.SendManyAsync(new[] { Get("/x/a b", "tok.en-1"), new ProbeRequest(HttpMethod.Post, "/resolve", null) }, CancellationToken.None);

        string first = _requests[0];
        Assert.StartsWith("GET /prefix/x/a%20b HTTP/1.1\r\n", first, StringComparison.Ordinal);
        Assert.Contains($"\r\nHost: 127.0.0.1:{BaseUrl().Port}", first, StringComparison.Ordinal);
        Assert.Contains("\r\nAuthorization: Bearer tok.en-1", first, StringComparison.Ordinal);
        Assert.StartsWith("POST /prefix/resolve HTTP/1.1\r\n", _requests[1], StringComparison.Ordinal);
        Assert.Contains("\r\nContent-Length: 2", _requests[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_request_carries_its_own_w3c_traceparent()
    {
        Serve((_, _) => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
        using var client = new ProbeClient(new ApiConfig
        {
            BaseUrl = BaseUrl(),
            Probe = new ProbePlan { Callers = new Dictionary<string, ProbeCaller>(), Endpoints = new[] { new ProbeEndpoint { Path = "/x" } }, Concurrency = 1 },
        }, new ProbeClientOptions { RequestTimeout = TimeSpan.FromSeconds(3) });
        string given = ProbeClient.NewTraceParent();

        await client.SendManyAsync(new[] { Get("/x"), Get("/x"), new ProbeRequest(HttpMethod.Post, "/x", null, "{\"a\":1}", given) }, CancellationToken.None);
        await client.SendAsync(HttpMethod.Get, "/x", null, CancellationToken.None, traceParent: given);

        string[] sent = _requests.Select(r => r.Split("\r\n").Single(l => l.StartsWith("traceparent:", StringComparison.OrdinalIgnoreCase))[12..].Trim()).ToArray();
        Assert.Equal(4, sent.Length);
        Assert.All(sent, t => Assert.Matches("^00-[0-9a-f]{32}-[0-9a-f]{16}-01$", t));
        Assert.NotEqual(sent[0], sent[1]);
        Assert.Equal(new[] { given, given }, sent[2..]);
    }

    [Fact]
    public async Task Interim_answers_are_skipped_and_an_http10_body_is_read_to_the_close()
    {
        Serve((n, _) => n == 1
            ? $"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{{}}"
            : $"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{Json}");
        using ProbeClient client = Client();

        ProbeResponse[] responses = await client.SendManyAsync(new[] { Get("/x/1"), Get("/x/2"), Get("/x/3") }, CancellationToken.None);

        Assert.Equal(new[] { 200, 200, 200 }, responses.Select(r => r.Status));
        Assert.Equal("{}", Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(responses[0].Body!.ToJsonString())));
        Assert.Equal("NOT_FOUND", (string?)responses[1].Body?["error_code"]);
        Assert.Equal(2, _connections);   // the HTTP/1.0 answer to the second request ended the first connection
    }

    [Fact]
    public async Task A_keep_alive_connection_the_server_dropped_while_idle_is_replaced_once()
    {
        // The server keeps the first connection open without saying otherwise, then hangs up on
        // the second request unanswered, as an idle-timeout close racing a new request looks.
        Serve((n, _) => n == 2 ? null : $"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{{}}");
        using ProbeClient client = Client();

        ProbeResponse[] responses = await client.SendManyAsync(new[] { Get("/x/1"), Get("/x/2") }, CancellationToken.None);

        Assert.Equal(new[] { 200, 200 }, responses.Select(r => r.Status));
        Assert.Equal(2, _connections);
    }

    [Theory]
    [InlineData("SMTP ready\r\n\r\n", "not valid HTTP/1.1")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{}", "closed the connection")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n", "larger than")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "not valid HTTP/1.1")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "not valid HTTP/1.1")]
    public async Task A_broken_answer_fails_closed_and_says_what_was_wrong(string reply, string expected)
    {
        Serve((_, _) => reply + HangUp);
        using ProbeClient client = Client();

        var error = await Assert.ThrowsAsync<KfmException>(() => client.SendManyAsync(new[] { Get("/x/1", "canary-token-91c2") }, CancellationToken.None));

        Assert.Equal("ProbeApiUnreachable", error.ErrorId);
        Assert.Equal(KfmErrorKind.ConnectionError, error.Kind);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("canary-token-91c2", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_that_never_answers_times_out_as_unreachable()
    {
        Serve((_, _) => { Thread.Sleep(TimeSpan.FromSeconds(5)); return null; });
        using ProbeClient client = Client();

        var error = await Assert.ThrowsAsync<KfmException>(() => client.SendManyAsync(new[] { Get("/x/1") }, CancellationToken.None));

        Assert.Contains("no answer within 3 s", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tls_is_verified_and_an_untrusted_certificate_fails_closed()
    {
        using X509Certificate2 certificate = SelfSigned();
        Serve((_, _) => $"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{{}}", certificate);

        using (ProbeClient untrusting = Client(BaseUrl("https")))
        {
            var error = await Assert.ThrowsAsync<KfmException>(() => untrusting.SendManyAsync(new[] { Get("/x/1") }, CancellationToken.None));
            Assert.Contains("TLS certificate was not accepted", error.Message, StringComparison.Ordinal);
        }
        string thumbprint = certificate.Thumbprint;
        using ProbeClient trusting = Client(BaseUrl("https"), (_, cert, _, _) => cert is not null && new X509Certificate2(cert).Thumbprint == thumbprint);

        ProbeResponse[] responses = await trusting.SendManyAsync(new[] { Get("/x/1"), Get("/x/2") }, CancellationToken.None);

        Assert.Equal(new[] { 200, 200 }, responses.Select(r => r.Status));
    }

    [Fact]
    public void A_token_that_could_split_a_request_is_refused_without_being_shown()
    {
        Environment.SetEnvironmentVariable("KFM_TEST_SPLIT_TOKEN", "abc\r\nX-Injected: 1");
        try
        {
            using var client = new ProbeClient(new ApiConfig
            {
                BaseUrl = BaseUrl(),
                Probe = new ProbePlan
                {
                    Callers = new Dictionary<string, ProbeCaller> { ["public-user"] = new() { TokenEnv = "KFM_TEST_SPLIT_TOKEN" } },
                    Endpoints = new[] { new ProbeEndpoint { Path = "/x" } },
                },
            });
            var error = Assert.Throws<KfmException>(() => client.TokenOf("public-user"));
            Assert.Equal("ProbeCredentialInvalid", error.ErrorId);
            Assert.Contains("$KFM_TEST_SPLIT_TOKEN", error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("X-Injected", error.Message, StringComparison.Ordinal);
        }
        finally { Environment.SetEnvironmentVariable("KFM_TEST_SPLIT_TOKEN", null); }
    }

    private static X509Certificate2 SelfSigned()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        using X509Certificate2 created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pfx), null);
    }

    public void Dispose() => _listener.Stop();
}
