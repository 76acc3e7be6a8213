using System.Diagnostics;
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

    /// <summary>How long one request may take before the API counts as not answering.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(15);
}

/// <summary>
/// Calls the API as the probe plan's callers, with a bounded number of requests in flight and 429
/// with Retry-After honoured. Credentials are read at run time from environment variables or files
/// and never appear in results or errors. Cookies are never kept: a session one caller earns must
/// never ride along on another caller's probe.
/// Every request goes through one HttpClient on a SocketsHttpHandler tuned for probing: HTTP/1.1
/// exactly, pooled keep-alive connections (as many as the plan's concurrency), no cookies, no
/// redirects followed, no proxy for a loopback API. (Hand-written HTTP/1.1 connections served
/// batches until 2026-12-07, when bench/probes.ps1 measured this client at 0.904 of their rate,
/// above the 0.8 at which they were to go.)
/// </summary>
public sealed class ProbeClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly SemaphoreSlim _slots;
    private readonly ProbePlan _plan;
    private readonly Uri _baseUrl;
    private readonly ProbeClientOptions _options;
    private readonly string[] _comparedHeaders;

    /// <summary>The largest answer a probe reads; a larger one fails closed as ProbeApiUnreachable.</summary>
    internal const int MaxBodyBytes = 8 * 1024 * 1024;

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
            // A redirect is the API's answer, recorded as such: following it would let the build
            // under test send a caller's token wherever it points.
            AllowAutoRedirect = false,
        };
        // A proxy (given, or the process default from HTTP_PROXY/HTTPS_PROXY/NO_PROXY) serves remote
        // APIs only: an API on this machine is never reached through, or shown to, a proxy.
        if (IsLoopback(_baseUrl)) { handler.UseProxy = false; }
        else if (_options.Proxy is not null) { handler.Proxy = _options.Proxy; }
        if (_options.CertificateValidation is not null) { handler.SslOptions.RemoteCertificateValidationCallback = _options.CertificateValidation; }
        _http = new HttpClient(handler) { BaseAddress = _baseUrl, Timeout = _options.RequestTimeout, MaxResponseContentBufferSize = MaxBodyBytes };
        _http.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", "KfmRollback-probe");
        _http.DefaultRequestHeaders.TryAddWithoutValidation("Accept", "application/json");
        _slots = new SemaphoreSlim(Math.Max(1, api.Probe.Concurrency));
    }

    private static bool IsLoopback(Uri url) =>
        url.IsLoopback || url.IdnHost.Equals("localhost", StringComparison.OrdinalIgnoreCase) || url.IdnHost.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase);

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

    public async Task<ProbeResponse> SendAsync(HttpMethod method, string path, string? token, CancellationToken cancellationToken, string? body = null, string? traceParent = null)
    {
        await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await SendWithRetriesAsync(new ProbeRequest(method, path, token, body, traceParent), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>
    /// Sends a batch with at most the plan's concurrency in flight and returns the responses in
    /// request order. A fixed set of workers (the plan's concurrency) drains the batch: no task or
    /// semaphore wait per request, and the pool holds one keep-alive connection per worker.
    /// </summary>
    public async Task<ProbeResponse[]> SendManyAsync(IReadOnlyList<ProbeRequest> requests, CancellationToken cancellationToken)
    {
        var responses = new ProbeResponse[requests.Count];
        int next = -1;
        async Task Drain()
        {
            for (int i = Interlocked.Increment(ref next); i < requests.Count; i = Interlocked.Increment(ref next))
            {
                responses[i] = await SendWithRetriesAsync(requests[i], cancellationToken).ConfigureAwait(false);
            }
        }
        var drains = new Task[Math.Min(Math.Max(1, _plan.Concurrency), requests.Count)];
        for (int w = 0; w < drains.Length; w++) { drains[w] = Drain(); }
        await Task.WhenAll(drains).ConfigureAwait(false);
        return responses;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ProbeResponse> SendWithRetriesAsync(ProbeRequest probe, CancellationToken cancellationToken)
    {
        try
        {
            for (int attempt = 1; ; attempt++)
            {
                long started = Stopwatch.GetTimestamp();
                using HttpResponseMessage response = await ExchangeAsync(probe, cancellationToken).ConfigureAwait(false);
                double milliseconds = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                if (response.StatusCode == HttpStatusCode.TooManyRequests && attempt < 4)
                {
                    await Task.Delay(RetryDelay(response.Headers.RetryAfter), cancellationToken).ConfigureAwait(false);
                    continue;
                }
                if (response.Content.Headers.NonValidated.TryGetValues("Content-Length", out HeaderStringValues lengths) && lengths.Distinct(StringComparer.Ordinal).Skip(1).Any())
                {
                    // RFC 9112 6.3: differing lengths make the framing unknowable (a smuggling pattern); no answer is read from it.
                    throw new HttpRequestException(HttpRequestError.InvalidResponse, "The response carried differing Content-Length values.");
                }
                byte[] content = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
                // Media types are case-insensitive (RFC 9110 8.3.1): one spelling, so equal answers compare equal.
                return new ProbeResponse((int)response.StatusCode, content, response.Content.Headers.ContentType?.MediaType?.ToLowerInvariant(), milliseconds, ComparedHeaders(response));
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or SocketException or AuthenticationException or OperationCanceledException
                                   && !cancellationToken.IsCancellationRequested)
        {
            string why = ex switch
            {
                OperationCanceledException => $"no answer within {_options.RequestTimeout.TotalSeconds:0} s",
                AuthenticationException or HttpRequestException { InnerException: AuthenticationException } => "its TLS certificate was not accepted",
                HttpRequestException { HttpRequestError: HttpRequestError.InvalidResponse } => "its answer was not valid HTTP/1.1",
                HttpRequestException { HttpRequestError: HttpRequestError.ResponseEnded } => "it closed the connection before the answer was complete",
                HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError } => "no connection could be made",
                HttpRequestException { HttpRequestError: HttpRequestError.NameResolutionError } => "its host name did not resolve",
                HttpRequestException { HttpRequestError: HttpRequestError.ConfigurationLimitExceeded } => $"its answer was larger than a probe reads ({MaxBodyBytes / (1024 * 1024)} MiB of body, or too many header bytes)",
                _ => ex.GetType().Name,
            };
            throw new KfmException("ProbeApiUnreachable", KfmErrorKind.ConnectionError,
                $"The API at {_baseUrl} did not answer ({why}); policy invariants cannot be checked.", _baseUrl.ToString(), ex);
        }
    }

    /// <summary>One exchange: the response with its body buffered (at most <see cref="MaxBodyBytes"/>), within the request timeout.</summary>
    private async Task<HttpResponseMessage> ExchangeAsync(ProbeRequest probe, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(probe.Method, Target(probe.Path)) { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        if (probe.Token is not null) { request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", probe.Token); }
        request.Headers.TryAddWithoutValidation("traceparent", probe.TraceParent ?? NewTraceParent());
        if (probe.Method == HttpMethod.Post || probe.Body is not null) { request.Content = new StringContent(probe.Body ?? "{}", Encoding.UTF8, "application/json"); }
        return await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The plan's compared headers of a response, by name, repeated fields joined as RFC 9110 5.3 allows.</summary>
    private List<KeyValuePair<string, string>>? ComparedHeaders(HttpResponseMessage response)
    {
        List<KeyValuePair<string, string>>? compared = null;
        foreach (string name in _comparedHeaders)
        {
            if (response.Headers.NonValidated.TryGetValues(name, out HeaderStringValues values) || response.Content.Headers.NonValidated.TryGetValues(name, out values))
            {
                (compared ??= new List<KeyValuePair<string, string>>()).Add(new(name, string.Join(", ", values)));
            }
        }
        return compared?.OrderBy(h => h.Key, StringComparer.Ordinal).ToList();
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
