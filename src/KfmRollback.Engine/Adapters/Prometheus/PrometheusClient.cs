using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Adapters.Prometheus;

/// <summary>One PromQL answer: a number, or why there is none ("no data" is never healthy).</summary>
public sealed record PromValue(double? Value, string? Problem)
{
    public bool HasValue => Value is not null;
}

/// <summary>One sample of a range query; null when Prometheus answered NaN or Inf.</summary>
public sealed record PromSample(DateTimeOffset At, double? Value);

/// <summary>A range query's samples, or why there are none.</summary>
public sealed record PromRange(IReadOnlyList<PromSample> Samples, string? Problem);

/// <summary>An instant vector: each series' labels and value, or why there are none.</summary>
public sealed record PromVector(IReadOnlyList<(IReadOnlyDictionary<string, string> Labels, double Value)> Series, string? Problem);

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
            Core.Transport.EnsureCredentialsAllowed(config.Url, "prometheus.url");
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
    }

    public async Task<PromValue> QueryAsync(string promql, DateTimeOffset at, CancellationToken cancellationToken)
    {
        string url = $"api/v1/query?query={Uri.EscapeDataString(promql)}&time={at.ToUnixTimeMilliseconds() / 1000.0:0.###}";
        try
        {
            (JsonElement result, string? failed) = await ResultAsync(url, cancellationToken).ConfigureAwait(false);
            if (failed is not null)
            {
                return new PromValue(null, failed);
            }
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

    /// <summary><c>/api/v1/query</c> as a whole instant vector (e.g. one series per histogram bucket); NaN/Inf series are left out.</summary>
    public async Task<PromVector> QueryVectorAsync(string promql, DateTimeOffset at, CancellationToken cancellationToken)
    {
        string url = $"api/v1/query?query={Uri.EscapeDataString(promql)}&time={Unix(at)}";
        try
        {
            (JsonElement result, string? failed) = await ResultAsync(url, cancellationToken).ConfigureAwait(false);
            if (failed is not null)
            {
                return new PromVector(Array.Empty<(IReadOnlyDictionary<string, string>, double)>(), failed);
            }
            var series = new List<(IReadOnlyDictionary<string, string>, double)>();
            foreach (JsonElement item in result.EnumerateArray())
            {
                double value = double.Parse(item.GetProperty("value")[1].GetString()!, NumberStyles.Float, CultureInfo.InvariantCulture);
                if (double.IsNaN(value) || double.IsInfinity(value)) { continue; }
                var labels = item.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "", StringComparer.Ordinal);
                series.Add((labels, value));
            }
            return new PromVector(series, series.Count == 0 ? "no data (empty result)" : null);
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException or KeyNotFoundException or InvalidOperationException or FormatException
            || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return new PromVector(Array.Empty<(IReadOnlyDictionary<string, string>, double)>(), $"Prometheus unreachable or answered unexpectedly ({ex.GetType().Name})");
        }
    }

    /// <summary>
    /// <c>/api/v1/query_range</c> reduced to one series (the first of the matrix): each sample with
    /// its value, NaN/Inf as null ("no data", never zero). Problem says why there are no samples.
    /// </summary>
    public async Task<PromRange> QueryRangeAsync(string promql, DateTimeOffset start, DateTimeOffset end, TimeSpan step, CancellationToken cancellationToken)
    {
        string url = $"api/v1/query_range?query={Uri.EscapeDataString(promql)}&start={Unix(start)}&end={Unix(end)}&step={step.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)}";
        try
        {
            (JsonElement result, string? failed) = await ResultAsync(url, cancellationToken).ConfigureAwait(false);
            if (failed is not null)
            {
                return new PromRange(Array.Empty<PromSample>(), failed);
            }
            if (result.GetArrayLength() == 0)
            {
                return new PromRange(Array.Empty<PromSample>(), "no data (empty result)");
            }
            var samples = new List<PromSample>();
            foreach (JsonElement pair in result[0].GetProperty("values").EnumerateArray())
            {
                double value = double.Parse(pair[1].GetString()!, NumberStyles.Float, CultureInfo.InvariantCulture);
                samples.Add(new PromSample(DateTimeOffset.FromUnixTimeMilliseconds((long)(pair[0].GetDouble() * 1000)),
                    double.IsNaN(value) || double.IsInfinity(value) ? null : value));
            }
            return new PromRange(samples, null);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            return new PromRange(Array.Empty<PromSample>(), $"Prometheus unreachable or answered unexpectedly ({ex.GetType().Name})");
        }
    }

    /// <summary>An API answer's <c>data.result</c>, or why the query failed (Prometheus's errorType and error).</summary>
    private async Task<(JsonElement Result, string? Problem)> ResultAsync(string url, CancellationToken cancellationToken)
    {
        using HttpResponseMessage response = await _http.GetAsync(url, cancellationToken).ConfigureAwait(false);
        string body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        using JsonDocument document = JsonDocument.Parse(body);
        JsonElement root = document.RootElement;
        return root.GetProperty("status").GetString() != "success"
            ? (default, $"query failed ({root.GetProperty("errorType").GetString()}): {root.GetProperty("error").GetString()}")
            : (root.GetProperty("data").GetProperty("result").Clone(), null);
    }

    private static string Unix(DateTimeOffset at) => (at.ToUnixTimeMilliseconds() / 1000.0).ToString("0.###", CultureInfo.InvariantCulture);

    public void Dispose() => _http.Dispose();
}
