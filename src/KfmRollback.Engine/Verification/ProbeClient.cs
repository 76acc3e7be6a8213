using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Verification;

/// <summary>One probe's outcome, kept in memory only; callers reduce it to policy-safe evidence.</summary>
public sealed record ProbeResponse(int Status, JsonNode? Body, string? ContentType, long ContentLength, double Milliseconds);

/// <summary>
/// Calls the API as the probe plan's callers: one HttpClient (connections reused), a bounded
/// number of requests in flight, and 429/503 with Retry-After honoured. Credentials are read at
/// run time from environment variables or files and never appear in results or errors.
/// </summary>
public sealed class ProbeClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly SemaphoreSlim _slots;
    private readonly ProbePlan _plan;

    public ProbeClient(ApiConfig api)
    {
        _plan = api.Probe;
        _http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5), MaxConnectionsPerServer = Math.Max(1, api.Probe.Concurrency) })
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
            for (int attempt = 1; ; attempt++)
            {
                using var request = new HttpRequestMessage(method, path.TrimStart('/'));
                if (token is not null) { request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token); }
                if (method == HttpMethod.Post) { request.Content = new StringContent("{}", System.Text.Encoding.UTF8, "application/json"); }
                var watch = Stopwatch.StartNew();
                using HttpResponseMessage response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
                string text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                watch.Stop();
                if (response.StatusCode == HttpStatusCode.TooManyRequests && attempt < 4)
                {
                    TimeSpan wait = response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1);
                    await Task.Delay(wait < TimeSpan.FromSeconds(10) ? wait : TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
                    continue;
                }
                JsonNode? body = null;
                try { body = string.IsNullOrWhiteSpace(text) ? null : JsonNode.Parse(text); }
                catch (System.Text.Json.JsonException) { /* a non-JSON body is itself a finding */ }
                return new ProbeResponse((int)response.StatusCode, body, response.Content.Headers.ContentType?.MediaType, text.Length, watch.Elapsed.TotalMilliseconds);
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            throw new KfmException("ProbeApiUnreachable", KfmErrorKind.ConnectionError,
                $"The API at {_http.BaseAddress} did not answer ({ex.GetType().Name}); policy invariants cannot be checked.", _http.BaseAddress?.ToString(), ex);
        }
        finally
        {
            _slots.Release();
        }
    }

    public void Dispose()
    {
        _http.Dispose();
        _slots.Dispose();
    }
}
