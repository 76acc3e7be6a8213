using System.Net;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Adapters.Traces;

/// <summary>One span of a trace, whatever API it came from: ids as lowercase hex.</summary>
public sealed record TraceSpan(string SpanId, string? ParentId, string Name);

/// <summary>The trace API's answer for one trace id: its status, and the spans when it answered with a trace.</summary>
public sealed record TraceAnswer(HttpStatusCode Status, IReadOnlyList<TraceSpan>? Spans);

/// <summary>
/// The trace query API of observability.traces (Zipkin, Jaeger or Tempo): one trace by id, its spans
/// in one shape whatever the API's own. A transport failure or a document that is not JSON throws
/// (<see cref="HttpRequestException"/>, <see cref="System.Text.Json.JsonException"/>) for the caller to judge.
/// </summary>
public sealed class TraceApiClient(TracesConfig traces) : IDisposable
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    /// <summary>The trace <paramref name="traceId"/> (32 hex); a 404 or an error status comes back without spans.</summary>
    public async Task<TraceAnswer> ReadAsync(string traceId, CancellationToken cancellationToken)
    {
        using HttpResponseMessage answer = await _http.GetAsync(TraceUrl(traces, traceId), cancellationToken).ConfigureAwait(false);
        if (!answer.IsSuccessStatusCode)
        {
            return new TraceAnswer(answer.StatusCode, null);
        }
        return new TraceAnswer(answer.StatusCode, Parse(traces.Kind, JsonNode.Parse(await answer.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false))));
    }

    public void Dispose() => _http.Dispose();

    /// <summary>Zipkin: /api/v2/trace/{id}; Jaeger and Tempo: /api/traces/{id}; under the configured base path.</summary>
    public static Uri TraceUrl(TracesConfig traces, string traceId)
    {
        string baseUrl = traces.Url.AbsoluteUri.TrimEnd('/');
        return new Uri(baseUrl + (traces.Kind == TraceApiKind.Zipkin ? "/api/v2/trace/" : "/api/traces/") + traceId);
    }

    /// <summary>The spans of a trace document in the API's own shape.</summary>
    public static IReadOnlyList<TraceSpan> Parse(TraceApiKind kind, JsonNode? document)
    {
        var spans = new List<TraceSpan>();
        switch (kind)
        {
            case TraceApiKind.Zipkin:
                // [{"traceId","id","parentId","name","kind"}]
                foreach (JsonObject span in (document as JsonArray ?? new JsonArray()).OfType<JsonObject>())
                {
                    if (Text(span["id"]) is { } id) { spans.Add(new TraceSpan(Hex(id), Text(span["parentId"]) is { } p ? Hex(p) : null, Text(span["name"]) ?? "")); }
                }
                break;
            case TraceApiKind.Jaeger:
                // {"data":[{"spans":[{"spanID","operationName","references":[{"refType":"CHILD_OF","spanID"}]}]}]}
                foreach (JsonObject trace in (document?["data"] as JsonArray ?? new JsonArray()).OfType<JsonObject>())
                {
                    foreach (JsonObject span in (trace["spans"] as JsonArray ?? new JsonArray()).OfType<JsonObject>())
                    {
                        string? parent = (span["references"] as JsonArray ?? new JsonArray()).OfType<JsonObject>()
                            .Where(r => Text(r["refType"]) == "CHILD_OF").Select(r => Text(r["spanID"])).FirstOrDefault();
                        if (Text(span["spanID"]) is { } id) { spans.Add(new TraceSpan(Hex(id), parent is null ? null : Hex(parent), Text(span["operationName"]) ?? "")); }
                    }
                }
                break;
            case TraceApiKind.Tempo:
                // OTLP JSON: {"batches"|"resourceSpans":[{"scopeSpans"|"instrumentationLibrarySpans":[{"spans":[{"spanId","parentSpanId","name"}]}]}]}
                JsonNode? root = document?["trace"] ?? document;
                foreach (JsonObject resource in (root?["batches"] as JsonArray ?? root?["resourceSpans"] as JsonArray ?? new JsonArray()).OfType<JsonObject>())
                {
                    foreach (JsonObject scope in (resource["scopeSpans"] as JsonArray ?? resource["instrumentationLibrarySpans"] as JsonArray ?? new JsonArray()).OfType<JsonObject>())
                    {
                        foreach (JsonObject span in (scope["spans"] as JsonArray ?? new JsonArray()).OfType<JsonObject>())
                        {
                            string? parent = Text(span["parentSpanId"]);
                            if (Text(span["spanId"]) is { } id) { spans.Add(new TraceSpan(Hex(id), string.IsNullOrEmpty(parent) ? null : Hex(parent), Text(span["name"]) ?? "")); }
                        }
                    }
                }
                break;
        }
        return spans;
    }

    private static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    /// <summary>A span id as 16 lowercase hex: hex as is (Zipkin may drop leading zeros), base64 (OTLP JSON as Tempo serves it) decoded.</summary>
    public static string Hex(string id)
    {
        bool base64 = id.Length == 12 && !id.All(Uri.IsHexDigit) || id.EndsWith('=');
        if (!base64 && id.All(Uri.IsHexDigit)) { return id.ToLowerInvariant().PadLeft(16, '0'); }
        return Convert.ToHexString(Convert.FromBase64String(id)).ToLowerInvariant();
    }
}
