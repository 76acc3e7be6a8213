using KfmRollback.Engine.Adapters.Http;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Verification;

/// <summary>One span of a trace, whatever API it came from: ids as lowercase hex.</summary>
public sealed record TraceSpan(string SpanId, string? ParentId, string Name);

/// <summary>
/// Checklist D, "traces span policy evaluation": one governed probe is sent with a W3C traceparent
/// of its own, then the trace query API (observability.traces) is polled until the deadline for
/// that trace. It passes only when a span named policy_span is a child of the request's server span
/// (the span whose parent is the probe's span id); it fails when the server span arrived without
/// one; no trace in time, or no trace API configured, is inconclusive, never a pass.
/// </summary>
public static class TraceChecks
{
    public const string Check = "D.traces";

    /// <summary>Section D's trace round (Test-KfmObservability): a trace API that cannot be reached is a failed D.traces, not a pass.</summary>
    public static Task<IReadOnlyList<CheckResult>> SectionAsync(ChecklistInput input, CancellationToken cancellationToken) =>
        Unprobed.Guard(input.Environment, Check, () => RunAsync(input.Environment, cancellationToken));

    public static async Task<IReadOnlyList<CheckResult>> RunAsync(EnvironmentConfig environment, CancellationToken cancellationToken, TimeSpan? pollInterval = null)
    {
        TracesConfig? traces = environment.Observability.Traces;
        if (traces is null)
        {
            return new[] { HealthChecks.Result(environment, Check, Verdict.Inconclusive,
                "observability.traces is not configured, so whether traces span policy evaluation cannot be checked", new Dictionary<string, string>())
                with { Settled = true, NextStep = "configure observability.traces (the trace query API) to check it" } };
        }
        ProbePlan plan = environment.Api.Probe;
        string? endpoint = traces.Endpoint ?? plan.Endpoints.FirstOrDefault(e => e.Governed && !e.Path.Contains("{id}", StringComparison.Ordinal))?.Path;
        string? caller = plan.Callers.Where(c => !c.Value.Anonymous).OrderBy(c => c.Value.Role == CallerRole.Public ? 0 : 1).Select(c => c.Key).FirstOrDefault();
        if (endpoint is null || caller is null)
        {
            return new[] { HealthChecks.Result(environment, Check, Verdict.Inconclusive,
                endpoint is null ? "no governed endpoint without {id} to probe: set observability.traces.endpoint" : "api.probe.callers has no authenticated caller, whose request policy would evaluate",
                new Dictionary<string, string>()) with
            {
                Settled = true,
                NextStep = endpoint is null ? "set observability.traces.endpoint" : "add an authenticated caller (token_env or token_file) to api.probe.callers",
            } };
        }

        string traceParent = ProbeClient.NewTraceParent();
        string traceId = traceParent.Substring(3, 32), clientSpanId = traceParent.Substring(36, 16);
        var evidence = new Dictionary<string, string>
        {
            ["trace_id"] = traceId, ["trace_api"] = traces.Kind.ToString().ToLowerInvariant(), ["policy_span"] = traces.PolicySpan, ["caller"] = caller,
        };
        using (var client = new ProbeClient(environment.Api))
        {
            ProbeResponse response = await client.SendAsync(HttpMethod.Get, endpoint, client.TokenOf(caller), cancellationToken, traceParent: traceParent).ConfigureAwait(false);
            evidence["status"] = response.Status.ToString(CultureInfo.InvariantCulture);
        }

        Uri url = TraceUrl(traces, traceId);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        DateTime deadline = DateTime.UtcNow + traces.Deadline;
        string lastProblem = "the trace did not arrive";
        TraceSpan? server = null;
        while (true)
        {
            try
            {
                using HttpResponseMessage answer = await http.GetAsync(url, cancellationToken).ConfigureAwait(false);
                if (answer.StatusCode == HttpStatusCode.NotFound)
                {
                    lastProblem = "the trace did not arrive";
                }
                else if (!answer.IsSuccessStatusCode)
                {
                    lastProblem = $"the trace API answered {(int)answer.StatusCode}";
                }
                else
                {
                    IReadOnlyList<TraceSpan> spans = Parse(traces.Kind, JsonNode.Parse(await answer.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)));
                    server = spans.FirstOrDefault(s => s.ParentId == clientSpanId);
                    evidence["spans"] = spans.Count.ToString(CultureInfo.InvariantCulture);
                    if (server is not null && spans.Any(s => s.ParentId == server.SpanId && s.Name == traces.PolicySpan))
                    {
                        evidence["server_span"] = server.Name;
                        return new[] { HealthChecks.Result(environment, Check, Verdict.Pass,
                            $"the probe's trace has a {traces.PolicySpan} span under its server span", evidence) };
                    }
                    lastProblem = server is null ? "the trace has no server span for the probe" : $"the server span has no {traces.PolicySpan} child";
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or JsonException or InvalidOperationException or FormatException
                                       || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
            {
                lastProblem = $"the trace API could not be read ({ex.GetType().Name})";
            }
            if (DateTime.UtcNow >= deadline)
            {
                break;
            }
            await Task.Delay(pollInterval ?? TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
        }
        string where = $"{traces.Kind.ToString().ToLowerInvariant()} at {traces.Url.GetLeftPart(UriPartial.Path)}";
        if (server is not null)
        {
            evidence["server_span"] = server.Name;
            return new[] { HealthChecks.Result(environment, Check, Verdict.Fail,
                $"the probe's server span ({server.Name}) has no {traces.PolicySpan} child within {traces.Deadline.TotalSeconds:0} s: policy evaluation is not traced, or was skipped", evidence) };
        }
        return new[] { HealthChecks.Result(environment, Check, Verdict.Inconclusive,
            $"no usable trace of the probe within {traces.Deadline.TotalSeconds:0} s from {where}: {lastProblem}", evidence) };
    }

    /// <summary>Zipkin: /api/v2/trace/{id}; Jaeger and Tempo: /api/traces/{id}; under the configured base path.</summary>
    internal static Uri TraceUrl(TracesConfig traces, string traceId)
    {
        string baseUrl = traces.Url.AbsoluteUri.TrimEnd('/');
        return new Uri(baseUrl + (traces.Kind == TraceApiKind.Zipkin ? "/api/v2/trace/" : "/api/traces/") + traceId);
    }

    /// <summary>The spans of a trace document in the API's own shape.</summary>
    internal static IReadOnlyList<TraceSpan> Parse(TraceApiKind kind, JsonNode? document)
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
    internal static string Hex(string id)
    {
        bool base64 = id.Length == 12 && !id.All(Uri.IsHexDigit) || id.EndsWith('=');
        if (!base64 && id.All(Uri.IsHexDigit)) { return id.ToLowerInvariant().PadLeft(16, '0'); }
        return Convert.ToHexString(Convert.FromBase64String(id)).ToLowerInvariant();
    }
}
