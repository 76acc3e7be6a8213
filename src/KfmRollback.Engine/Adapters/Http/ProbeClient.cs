using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using System.Text;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Adapters.Http;

/// <summary>
/// One request of a batch: method, path relative to the API's base URL, bearer token (null: anonymous),
/// a JSON body (null: "{}" for POST, none otherwise), and the W3C traceparent to send (null: a new
/// trace per request).
/// </summary>
public readonly record struct ProbeRequest(HttpMethod Method, string Path, string? Token, string? Body = null, string? TraceParent = null);

/// <summary>Test seams and transport choices for <see cref="ProbeClient"/>.</summary>
internal sealed class ProbeClientOptions
{
    /// <summary>The proxy to honour; null means the process default (HTTP_PROXY, HTTPS_PROXY, NO_PROXY).</summary>
    public IWebProxy? Proxy { get; init; }

    /// <summary>Server certificate validation; null means the system trust store, as for every other client.</summary>
    public RemoteCertificateValidationCallback? CertificateValidation { get; init; }

    /// <summary>
    /// False forces HttpClient for batches too (tests compare both transports). Also set by
    /// $env:KFM_PROBE_TRANSPORT = 'httpclient', so bench/probes.ps1 can measure the module both ways.
    /// </summary>
    public bool DirectConnections { get; init; } =
        !string.Equals(System.Environment.GetEnvironmentVariable("KFM_PROBE_TRANSPORT"), "httpclient", StringComparison.OrdinalIgnoreCase);

    /// <summary>How long one request may take before the API counts as not answering.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(15);
}

/// <summary>
/// Calls the API as the probe plan's callers, with a bounded number of requests in flight and 429
/// with Retry-After honoured. Credentials are read at run time from environment variables or files
/// and never appear in results or errors. Cookies are never kept: a session one caller earns must
/// never ride along on another caller's probe.
/// Single requests go through HttpClient. Batches (thousands of leak-comparison probes) go
/// through one persistent HTTP/1.1 connection per worker (<see cref="Http1Connection"/>), which
/// costs a fraction of HttpClient per request; when a proxy applies to the API they fall back to
/// HttpClient, which knows how to use it.
/// </summary>
public sealed class ProbeClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly SemaphoreSlim _slots;
    private readonly ProbePlan _plan;
    private readonly Uri _baseUrl;
    private readonly ProbeClientOptions _options;
    private readonly ConcurrentDictionary<ProbeRequest, (byte[] Wire, int TraceParentAt)> _wireRequests = new();
    private readonly string[] _comparedHeaders;

    public ProbeClient(ApiConfig api) : this(api, null) { }

    internal ProbeClient(ApiConfig api, ProbeClientOptions? options)
    {
        _plan = api.Probe;
        _options = options ?? new ProbeClientOptions();
        _comparedHeaders = api.Probe.ComparedHeaders.Select(h => h.ToLowerInvariant()).Distinct(StringComparer.Ordinal).ToArray();
        // Relative paths resolve under the base URL's path, as HttpClient's BaseAddress does.
        _baseUrl = api.BaseUrl.AbsoluteUri.EndsWith('/') ? api.BaseUrl : new Uri(api.BaseUrl.AbsoluteUri + "/");
        var handler = new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            MaxConnectionsPerServer = Math.Max(1, api.Probe.Concurrency),
            UseCookies = false,
            // Every probe carries its own traceparent (checklist D); none is injected from an ambient Activity.
            ActivityHeadersPropagator = null,
            // A redirect is the API's answer, recorded as such (as the direct lanes do): following it
            // would let the build under test send a caller's token wherever it points.
            AllowAutoRedirect = false,
        };
        if (_options.Proxy is not null) { handler.Proxy = _options.Proxy; }
        if (_options.CertificateValidation is not null) { handler.SslOptions.RemoteCertificateValidationCallback = _options.CertificateValidation; }
        _http = new HttpClient(handler) { BaseAddress = _baseUrl, Timeout = _options.RequestTimeout };
        // The same request headers on either transport, so the API sees (and does) the same work.
        _http.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", "KfmRollback-probe");
        _http.DefaultRequestHeaders.TryAddWithoutValidation("Accept", "application/json");
        _slots = new SemaphoreSlim(Math.Max(1, api.Probe.Concurrency));
        DirectConnections = _options.DirectConnections && !ProxyApplies(_options.Proxy ?? HttpClient.DefaultProxy, _baseUrl);
    }

    /// <summary>
    /// The request URI of <paramref name="path"/> under the API's base URL, or null when the path would
    /// take a request (and its caller's token) anywhere else: an absolute or protocol-relative URL, a
    /// backslash, a dot segment (plain or percent-encoded), or a result outside the base URL's origin
    /// and path. The API under test may be the bad build; its OpenAPI document must not choose where
    /// tokens go.
    /// </summary>
    public Uri? Resolve(string path)
    {
        if (string.IsNullOrEmpty(path) || !path.StartsWith('/') || path.StartsWith("//", StringComparison.Ordinal)
            || path.Contains('\\') || path.Contains("://", StringComparison.Ordinal) || path.Any(char.IsControl))
        {
            return null;
        }
        string pathOnly = path.Split('?', '#')[0];
        if (pathOnly.Split('/').Any(segment => Uri.UnescapeDataString(segment) is "." or ".."))
        {
            return null;
        }
        if (!Uri.TryCreate(_baseUrl, path.TrimStart('/'), out Uri? target))
        {
            return null;
        }
        bool sameOrigin = target.Scheme == _baseUrl.Scheme && string.Equals(target.IdnHost, _baseUrl.IdnHost, StringComparison.OrdinalIgnoreCase) && target.Port == _baseUrl.Port
            && string.IsNullOrEmpty(target.UserInfo);
        return sameOrigin && target.AbsolutePath.StartsWith(_baseUrl.AbsolutePath, StringComparison.Ordinal) ? target : null;
    }

    /// <summary>The resolved URI, or ProbePathOutsideApi (nothing is sent).</summary>
    private Uri Target(string path) => Resolve(path) ?? throw new KfmException("ProbePathOutsideApi", KfmErrorKind.SecurityError,
        $"The probe path '{path}' is absolute, protocol-relative or leaves the API's base URL {_baseUrl}; it was not requested, and no token was sent. " +
        "Probe paths start with '/' and stay under api.base_url.", path);

    /// <summary>True when batches use the direct HTTP/1.1 connections rather than HttpClient.</summary>
    internal bool DirectConnections { get; }

    private static bool ProxyApplies(IWebProxy proxy, Uri target)
    {
        if (proxy.IsBypassed(target)) { return false; }
        Uri? via = proxy.GetProxy(target);
        return via is not null && via != target;
    }

    /// <summary>The bearer token of a caller, or null for an anonymous one.</summary>
    public string? TokenOf(string caller)
    {
        ProbeCaller definition = _plan.Callers[caller];
        if (definition.Anonymous) { return null; }
        Transport.EnsureCredentialsAllowed(_baseUrl, "api.base_url");
        string? token = SecretReference.Read(definition.TokenEnv, definition.TokenFile)?.Trim();
        string source = definition.TokenEnv is { } e ? "$" + e : "the file " + definition.TokenFile;
        if (string.IsNullOrWhiteSpace(token))
        {
            // Name where the token should come from, never a value.
            throw new KfmException("ProbeCredentialMissing", KfmErrorKind.InvalidArgument,
                $"Probe caller '{caller}' has no credential: set {source}.", caller);
        }
        if (token.Any(c => c is <= ' ' or > '~'))
        {
            // A bearer token is visible ASCII (RFC 6750 section 2.1); anything else could split the request.
            throw new KfmException("ProbeCredentialInvalid", KfmErrorKind.InvalidArgument,
                $"Probe caller '{caller}' has a credential with spaces, control or non-ASCII characters, which a bearer token cannot carry: check {source}.", caller);
        }
        return token;
    }

    /// <summary>A W3C trace context header (version 00, sampled): a new trace id and a new parent (caller span) id.</summary>
    public static string NewTraceParent() =>
        $"00-{ActivityTraceId.CreateRandom().ToHexString()}-{ActivitySpanId.CreateRandom().ToHexString()}-01";

    private const string TraceParentPlaceholder = "00-00000000000000000000000000000000-0000000000000000-01";

    public async Task<ProbeResponse> SendAsync(HttpMethod method, string path, string? token, CancellationToken cancellationToken, string? body = null, string? traceParent = null)
    {
        await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await SendWithRetriesAsync(new ProbeRequest(method, path, token, body, traceParent), HttpClientExchangeAsync, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>
    /// Sends a batch with at most the plan's concurrency in flight and returns the responses in
    /// request order. A fixed set of workers drains the batch, each on its own connection: no task,
    /// semaphore wait or connection-pool lookup per request.
    /// </summary>
    public async Task<ProbeResponse[]> SendManyAsync(IReadOnlyList<ProbeRequest> requests, CancellationToken cancellationToken)
    {
        var responses = new ProbeResponse[requests.Count];
        int next = -1;
        async Task Drain()
        {
            await using var lane = DirectConnections ? new DirectLane(this) : null;
            Func<ProbeRequest, CancellationToken, ValueTask<Http1Answer>> exchange = lane is null ? HttpClientExchangeAsync : lane.ExchangeAsync;
            for (int i = Interlocked.Increment(ref next); i < requests.Count; i = Interlocked.Increment(ref next))
            {
                responses[i] = await SendWithRetriesAsync(requests[i], exchange, cancellationToken).ConfigureAwait(false);
            }
        }
        var drains = new Task[Math.Min(Math.Max(1, _plan.Concurrency), requests.Count)];
        for (int w = 0; w < drains.Length; w++) { drains[w] = Drain(); }
        await Task.WhenAll(drains).ConfigureAwait(false);
        return responses;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ProbeResponse> SendWithRetriesAsync(ProbeRequest probe, Func<ProbeRequest, CancellationToken, ValueTask<Http1Answer>> exchange, CancellationToken cancellationToken)
    {
        try
        {
            for (int attempt = 1; ; attempt++)
            {
                long started = Stopwatch.GetTimestamp();
                Http1Answer answer = await exchange(probe, cancellationToken).ConfigureAwait(false);
                double milliseconds = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                if (answer.Status == (int)HttpStatusCode.TooManyRequests && attempt < 4)
                {
                    await Task.Delay(RetryDelay(answer.RetryAfter), cancellationToken).ConfigureAwait(false);
                    continue;
                }
                return new ProbeResponse(answer.Status, answer.Body, answer.MediaType, milliseconds, answer.ComparedHeaders);
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or SocketException or AuthenticationException or OperationCanceledException
                                   && !cancellationToken.IsCancellationRequested)
        {
            string why = ex switch
            {
                OperationCanceledException => $"no answer within {_options.RequestTimeout.TotalSeconds:0} s",
                AuthenticationException or HttpRequestException { InnerException: AuthenticationException } => "its TLS certificate was not accepted",
                Http1ProtocolException protocol => protocol.Message,
                _ => ex.GetType().Name,
            };
            throw new KfmException("ProbeApiUnreachable", KfmErrorKind.ConnectionError,
                $"The API at {_baseUrl} did not answer ({why}); policy invariants cannot be checked.", _baseUrl.ToString(), ex);
        }
    }

    private async ValueTask<Http1Answer> HttpClientExchangeAsync(ProbeRequest probe, CancellationToken cancellationToken)
    {
        // Tuned as the direct lanes are: HTTP/1.1 exactly, pooled connections, no cookies, headers first.
        using var request = new HttpRequestMessage(probe.Method, Target(probe.Path)) { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        if (probe.Token is not null) { request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", probe.Token); }
        request.Headers.TryAddWithoutValidation("traceparent", probe.TraceParent ?? NewTraceParent());
        if (probe.Method == HttpMethod.Post || probe.Body is not null) { request.Content = new StringContent(probe.Body ?? "{}", Encoding.UTF8, "application/json"); }
        using HttpResponseMessage response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        byte[] content = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        List<KeyValuePair<string, string>>? compared = null;
        foreach (string name in _comparedHeaders)
        {
            if (response.Headers.NonValidated.TryGetValues(name, out HeaderStringValues values) || response.Content.Headers.NonValidated.TryGetValues(name, out values))
            {
                (compared ??= new List<KeyValuePair<string, string>>()).Add(new(name, string.Join(", ", values)));
            }
        }
        return new Http1Answer((int)response.StatusCode, response.Content.Headers.ContentType?.MediaType, response.Headers.RetryAfter, content, ProbeHeaders.Normalise(compared));
    }

    /// <summary>
    /// The request as it goes on the wire, built once per distinct probe (whatever its traceparent),
    /// with where its traceparent value starts: each exchange writes its own there.
    /// </summary>
    private (byte[] Wire, int TraceParentAt) WireRequest(ProbeRequest probe) => _wireRequests.GetOrAdd(probe with { TraceParent = null }, static (p, owner) =>
    {
        Uri target = owner.Target(p.Path);
        string pathAndQuery = target.PathAndQuery;
        if (pathAndQuery.Any(c => c is <= ' ' or > '~'))
        {
            // Uri escapes what it must; this guards the request line all the same, naming no id.
            throw new KfmException("ProbePathInvalid", KfmErrorKind.InvalidArgument, "A probe path is not a valid HTTP request target; check the probe plan's endpoints and ids.");
        }
        string host = target.HostNameType == UriHostNameType.IPv6 ? target.Host : target.IdnHost;
        var text = new StringBuilder(256)
            .Append(p.Method.Method).Append(' ').Append(pathAndQuery).Append(" HTTP/1.1\r\n")
            .Append("Host: ").Append(host);
        if (!target.IsDefaultPort) { text.Append(':').Append(target.Port.ToString(CultureInfo.InvariantCulture)); }
        text.Append("\r\nUser-Agent: KfmRollback-probe\r\nAccept: application/json\r\n");
        if (p.Token is not null) { text.Append("Authorization: Bearer ").Append(p.Token).Append("\r\n"); }
        text.Append("traceparent: ");
        int traceParentAt = text.Length; // ASCII: characters are bytes
        text.Append(TraceParentPlaceholder).Append("\r\n");
        if (p.Method != HttpMethod.Post && p.Body is null) { return (Encoding.ASCII.GetBytes(text.Append("\r\n").ToString()), traceParentAt); }
        byte[] body = Encoding.UTF8.GetBytes(p.Body ?? "{}");
        text.Append("Content-Type: application/json; charset=utf-8\r\nContent-Length: ").Append(body.Length.ToString(CultureInfo.InvariantCulture)).Append("\r\n\r\n");
        return ([.. Encoding.ASCII.GetBytes(text.ToString()), .. body], traceParentAt);
    }, this);

    /// <summary>One worker's persistent connection, reopened when the server closes it.</summary>
    private sealed class DirectLane(ProbeClient owner) : IAsyncDisposable
    {
        private Http1Connection? _connection;
        private CancellationTokenSource? _timeout;
        private byte[] _buffer = Array.Empty<byte>();

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        public async ValueTask<Http1Answer> ExchangeAsync(ProbeRequest probe, CancellationToken cancellationToken)
        {
            var (cached, traceParentAt) = owner.WireRequest(probe);
            // The cached request with this exchange's traceparent, in the lane's own buffer (one request at a time).
            if (_buffer.Length < cached.Length) { _buffer = new byte[Math.Max(cached.Length, 2 * _buffer.Length)]; }
            cached.CopyTo(_buffer, 0);
            string traceParent = probe.TraceParent ?? NewTraceParent();
            if (traceParent.Length != TraceParentPlaceholder.Length || traceParent.Any(c => c is <= ' ' or > '~'))
            {
                throw new ArgumentException("A traceparent is 55 visible ASCII characters (W3C Trace Context, version 00).", nameof(probe));
            }
            Encoding.ASCII.GetBytes(traceParent, _buffer.AsSpan(traceParentAt));
            ReadOnlyMemory<byte> wire = _buffer.AsMemory(0, cached.Length);
            if (_timeout is null || !_timeout.TryReset())
            {
                _timeout?.Dispose();
                _timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            }
            _timeout.CancelAfter(owner._options.RequestTimeout);
            for (int attempt = 1; ; attempt++)
            {
                if (_connection is null || !_connection.Reusable)
                {
                    if (_connection is not null) { await _connection.DisposeAsync().ConfigureAwait(false); }
                    _connection = await Http1Connection.OpenAsync(owner._baseUrl, owner._comparedHeaders, owner._options.CertificateValidation, _timeout.Token).ConfigureAwait(false);
                }
                bool reused = _connection.HasAnswered;
                try
                {
                    return await _connection.ExchangeAsync(wire, probe.Method == HttpMethod.Head, _timeout.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is IOException or SocketException && reused && attempt == 1 && !_connection.ReceivedAny && !_timeout.IsCancellationRequested)
                {
                    // The server closed an idle keep-alive connection before this request reached
                    // it: nothing was answered, so it is sent again once on a new connection.
                    await _connection.DisposeAsync().ConfigureAwait(false);
                    _connection = null;
                }
                catch
                {
                    await _connection.DisposeAsync().ConfigureAwait(false);
                    _connection = null;
                    throw;
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (_connection is not null) { await _connection.DisposeAsync().ConfigureAwait(false); }
            _timeout?.Dispose();
        }
    }

    /// <summary>Retry-After as seconds or as an HTTP date (RFC 9110 10.2.3); 1 s when absent, at most 10 s.</summary>
    internal static TimeSpan RetryDelay(RetryConditionHeaderValue? retryAfter) =>
        Core.RetryAfter.Delay(retryAfter, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10), DateTimeOffset.UtcNow);

    public void Dispose()
    {
        _http.Dispose();
        _slots.Dispose();
    }
}
