using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Verification;

/// <summary>
/// One probe's outcome, kept in memory only; callers reduce it to policy-safe evidence. The body
/// is parsed on first use: a leak comparison of thousands of probes parses one representative of
/// each distinct <see cref="Shape"/>, not every response.
/// </summary>
public sealed partial class ProbeResponse
{
    private readonly byte[] _content;
    private JsonNode? _body;
    private bool _parsed;
    private string? _shape;
    private long _normalisedLength = -1;

    public ProbeResponse(int status, byte[] content, string? contentType, double milliseconds)
    {
        Status = status;
        _content = content;
        ContentType = contentType;
        Milliseconds = milliseconds;
    }

    public int Status { get; }
    public string? ContentType { get; }
    public double Milliseconds { get; }
    public long ContentLength => _content.Length;

    /// <summary>The JSON body, or null when it is empty or not JSON (itself a finding for the checks).</summary>
    public JsonNode? Body
    {
        get
        {
            if (!_parsed)
            {
                try { _body = _content.Length == 0 ? null : JsonNode.Parse(_content); }
                catch (JsonException) { _body = null; }
                _parsed = true;
            }
            return _body;
        }
    }

    /// <summary>
    /// Everything a caller could tell apart except the per-request top-level <c>audit_ref</c>
    /// value, which is reduced to whether it is a URI: status, media type and the body's bytes.
    /// Two responses with the same shape are the same answer.
    /// </summary>
    public string Shape
    {
        get
        {
            if (_shape is null) { ComputeShape(); }
            return _shape!;
        }
    }

    /// <summary>Body length without the audit_ref value, so only structural differences count.</summary>
    public long NormalisedLength
    {
        get
        {
            if (_shape is null) { ComputeShape(); }
            return _normalisedLength;
        }
    }

    [GeneratedRegex(@"^[a-z][a-z0-9+.-]*://\S+$")] internal static partial Regex UriPattern();

    private void ComputeShape()
    {
        (int start, int end, string? value) = FindTopLevelAuditRef(_content);
        string head = $"{Status}|{ContentType}|";
        if (start < 0)
        {
            _normalisedLength = _content.Length;
            _shape = head + Encoding.UTF8.GetString(_content);
            return;
        }
        _normalisedLength = _content.Length - (end - start);
        string marker = value is not null && UriPattern().IsMatch(value) ? "\"<uri>\"" : "\"<not-uri>\"";
        _shape = head + Encoding.UTF8.GetString(_content, 0, start) + marker + Encoding.UTF8.GetString(_content, end, _content.Length - end);
    }

    /// <summary>Byte range of the top-level audit_ref value (-1 when absent or the body is not a JSON object).</summary>
    private static (int Start, int End, string? Value) FindTopLevelAuditRef(byte[] content)
    {
        try
        {
            var reader = new Utf8JsonReader(content);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) { return (-1, -1, null); }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool audit = reader.ValueTextEquals("audit_ref"u8);
                if (!reader.Read()) { break; }
                if (audit)
                {
                    int start = (int)reader.TokenStartIndex;
                    string? value = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                    reader.Skip();
                    return (start, (int)reader.BytesConsumed, value);
                }
                reader.Skip();
            }
        }
        catch (JsonException) { /* not JSON: compared byte for byte */ }
        return (-1, -1, null);
    }
}

/// <summary>One request of a batch: method, path relative to the API's base URL, and bearer token (null: anonymous).</summary>
public readonly record struct ProbeRequest(HttpMethod Method, string Path, string? Token);

/// <summary>
/// Calls the API as the probe plan's callers: one HttpClient (connections reused), a bounded
/// number of requests in flight, and 429 with Retry-After honoured. Credentials are read at
/// run time from environment variables or files and never appear in results or errors.
/// Cookies are off: a session one caller earns must never ride along on another caller's probe.
/// </summary>
public sealed class ProbeClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly SemaphoreSlim _slots;
    private readonly ProbePlan _plan;

    public ProbeClient(ApiConfig api)
    {
        _plan = api.Probe;
        _http = new HttpClient(new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            MaxConnectionsPerServer = Math.Max(1, api.Probe.Concurrency),
            UseCookies = false,
        })
        {
            BaseAddress = api.BaseUrl,
            Timeout = TimeSpan.FromSeconds(15),
        };
        _slots = new SemaphoreSlim(Math.Max(1, api.Probe.Concurrency));
    }

    /// <summary>The bearer token of a caller, or null for an anonymous one.</summary>
    public string? TokenOf(string caller)
    {
        ProbeCaller definition = _plan.Callers[caller];
        if (definition.Anonymous) { return null; }
        string? token = SecretReference.Read(definition.TokenEnv, definition.TokenFile);
        if (string.IsNullOrWhiteSpace(token))
        {
            // Name where the token should come from, never a value.
            throw new KfmException("ProbeCredentialMissing", KfmErrorKind.InvalidArgument,
                $"Probe caller '{caller}' has no credential: set {(definition.TokenEnv is { } e ? "$" + e : "the file " + definition.TokenFile)}.", caller);
        }
        return token.Trim();
    }

    public async Task<ProbeResponse> SendAsync(HttpMethod method, string path, string? token, CancellationToken cancellationToken)
    {
        await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await SendOneAsync(new ProbeRequest(method, path, token), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>
    /// Sends a batch with at most the plan's concurrency in flight and returns the responses in
    /// request order. A fixed set of workers drains the batch: no task or semaphore wait per
    /// request, so the client's own cost per probe stays close to the socket's.
    /// </summary>
    public async Task<ProbeResponse[]> SendManyAsync(IReadOnlyList<ProbeRequest> requests, CancellationToken cancellationToken)
    {
        var responses = new ProbeResponse[requests.Count];
        int next = -1;
        async Task Drain()
        {
            for (int i = Interlocked.Increment(ref next); i < requests.Count; i = Interlocked.Increment(ref next))
            {
                responses[i] = await SendOneAsync(requests[i], cancellationToken).ConfigureAwait(false);
            }
        }
        // The handler's connection limit (the plan's concurrency) bounds what is in flight overall.
        var drains = new Task[Math.Min(Math.Max(1, _plan.Concurrency), requests.Count)];
        for (int w = 0; w < drains.Length; w++) { drains[w] = Drain(); }
        await Task.WhenAll(drains).ConfigureAwait(false);
        return responses;
    }

    private async Task<ProbeResponse> SendOneAsync(ProbeRequest probe, CancellationToken cancellationToken)
    {
        try
        {
            for (int attempt = 1; ; attempt++)
            {
                using var request = new HttpRequestMessage(probe.Method, probe.Path.TrimStart('/'));
                if (probe.Token is not null) { request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", probe.Token); }
                if (probe.Method == HttpMethod.Post) { request.Content = new StringContent("{}", System.Text.Encoding.UTF8, "application/json"); }
                long started = Stopwatch.GetTimestamp();
                using HttpResponseMessage response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
                byte[] content = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
                double milliseconds = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                if (response.StatusCode == HttpStatusCode.TooManyRequests && attempt < 4)
                {
                    await Task.Delay(RetryDelay(response.Headers.RetryAfter), cancellationToken).ConfigureAwait(false);
                    continue;
                }
                return new ProbeResponse((int)response.StatusCode, content, response.Content.Headers.ContentType?.MediaType, milliseconds);
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            throw new KfmException("ProbeApiUnreachable", KfmErrorKind.ConnectionError,
                $"The API at {_http.BaseAddress} did not answer ({ex.GetType().Name}); policy invariants cannot be checked.", _http.BaseAddress?.ToString(), ex);
        }
    }

    /// <summary>Retry-After as seconds or as an HTTP date (RFC 9110 10.2.3); 1 s when absent, at most 10 s.</summary>
    internal static TimeSpan RetryDelay(RetryConditionHeaderValue? retryAfter)
    {
        TimeSpan wait = retryAfter?.Delta ?? (retryAfter?.Date is { } date ? date - DateTimeOffset.UtcNow : TimeSpan.FromSeconds(1));
        return wait < TimeSpan.Zero ? TimeSpan.Zero : wait > TimeSpan.FromSeconds(10) ? TimeSpan.FromSeconds(10) : wait;
    }

    public void Dispose()
    {
        _http.Dispose();
        _slots.Dispose();
    }
}
