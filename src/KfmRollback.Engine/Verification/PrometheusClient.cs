using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Verification;

/// <summary>One PromQL answer: a number, or why there is none ("no data" is never healthy).</summary>
public sealed record PromValue(double? Value, string? Problem)
{
    public bool HasValue => Value is not null;
}

/// <summary>Prometheus's HTTP API (<c>/api/v1/query</c>), instant vectors reduced to one number.</summary>
public sealed class PrometheusClient : IDisposable
{
    private readonly HttpClient _http;

    public PrometheusClient(PrometheusConfig config)
    {
        _http = new HttpClient { BaseAddress = config.Url, Timeout = TimeSpan.FromSeconds(15) };
        string? token = Core.SecretReference.Read(config.TokenEnv, config.TokenFile);
        if (!string.IsNullOrWhiteSpace(token))
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
    }

    public async Task<PromValue> QueryAsync(string promql, DateTimeOffset at, CancellationToken cancellationToken)
    {
        string url = $"api/v1/query?query={Uri.EscapeDataString(promql)}&time={at.ToUnixTimeMilliseconds() / 1000.0:0.###}";
        try
        {
            using HttpResponseMessage response = await _http.GetAsync(url, cancellationToken).ConfigureAwait(false);
            string body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            using JsonDocument document = JsonDocument.Parse(body);
            JsonElement root = document.RootElement;
            if (root.GetProperty("status").GetString() != "success")
            {
                return new PromValue(null, $"query failed ({root.GetProperty("errorType").GetString()}): {root.GetProperty("error").GetString()}");
            }
            JsonElement result = root.GetProperty("data").GetProperty("result");
            if (result.GetArrayLength() == 0)
            {
                return new PromValue(null, "no data (empty result)");
            }
            string text = result[0].GetProperty("value")[1].GetString()!;
            double value = double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
            return double.IsNaN(value) || double.IsInfinity(value)
                ? new PromValue(null, $"no data ({text}: no traffic in the window)")
                : new PromValue(value, null);
        }
        // A timeout is an unreachable Prometheus; Ctrl+C is not, and must stop the caller.
        catch (Exception ex) when (ex is HttpRequestException or JsonException or KeyNotFoundException or InvalidOperationException
            || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return new PromValue(null, $"Prometheus unreachable or answered unexpectedly ({ex.GetType().Name})");
        }
    }

    public void Dispose() => _http.Dispose();
}
