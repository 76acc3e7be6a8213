using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace KfmRollback.Lab;

/// <summary>
/// A small trace store of Zipkin's documented API v2 shape: <c>POST /api/v2/spans</c> takes a JSON
/// list of spans (what the OpenTelemetry Zipkin exporter sends), <c>GET /api/v2/trace/{traceId}</c>
/// answers the trace's spans, 404 when none arrived. Kept in memory, bounded.
/// </summary>
public sealed class ZipkinCollector
{
    const int MaxTraces = 20_000;
    readonly ConcurrentDictionary<string, ConcurrentQueue<JsonObject>> _traces = new(StringComparer.Ordinal);
    readonly ConcurrentQueue<string> _order = new();

    public int SpanCount => _traces.Values.Sum(q => q.Count);

    public void Map(WebApplication app)
    {
        app.MapPost("/api/v2/spans", async (HttpContext ctx) =>
        {
            JsonNode? body;
            try { body = await JsonNode.ParseAsync(ctx.Request.Body, cancellationToken: ctx.RequestAborted); }
            catch (JsonException) { return Results.BadRequest(); }
            if (body is not JsonArray spans) return Results.BadRequest();
            foreach (var span in spans.OfType<JsonObject>())
            {
                if (span["traceId"]?.GetValue<string>() is not { Length: 16 or 32 } traceId) continue;
                var queue = _traces.GetOrAdd(traceId.ToLowerInvariant(), id => { _order.Enqueue(id); return new ConcurrentQueue<JsonObject>(); });
                queue.Enqueue((JsonObject)span.DeepClone());
            }
            while (_order.Count > MaxTraces && _order.TryDequeue(out var oldest)) _traces.TryRemove(oldest, out _);
            return Results.Accepted();
        });
        app.MapGet("/api/v2/trace/{traceId}", (string traceId) =>
            _traces.TryGetValue(traceId.ToLowerInvariant(), out var spans)
                ? Results.Text(new JsonArray(spans.Select(s => (JsonNode)s.DeepClone()).ToArray()).ToJsonString(), "application/json")
                : Results.NotFound());
    }
}
