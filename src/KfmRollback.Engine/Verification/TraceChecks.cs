using KfmRollback.Engine.Adapters.Http;
using KfmRollback.Engine.Adapters.Traces;
using System.Globalization;
using System.Net;
using System.Text.Json;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Verification;

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

        using var traceApi = new TraceApiClient(traces);
        DateTime deadline = DateTime.UtcNow + traces.Deadline;
        // Trace pipelines take from milliseconds (an exporter sending each span) to seconds (a collector's
        // batch): ask soon, then back off to once a second.
        TimeSpan wait = pollInterval ?? TimeSpan.FromMilliseconds(100);
        string lastProblem = "the trace did not arrive";
        TraceSpan? server = null;
        while (true)
        {
            try
            {
                TraceAnswer answer = await traceApi.ReadAsync(traceId, cancellationToken).ConfigureAwait(false);
                if (answer.Status == HttpStatusCode.NotFound)
                {
                    lastProblem = "the trace did not arrive";
                }
                else if (answer.Spans is not { } spans)
                {
                    lastProblem = $"the trace API answered {(int)answer.Status}";
                }
                else
                {
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
            await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
            wait = pollInterval ?? TimeSpan.FromTicks(Math.Min(wait.Ticks * 2, TimeSpan.TicksPerSecond));
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
}
