using KfmRollback.Engine.Adapters.Http;
using KfmRollback.Engine.Adapters.Traces;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Tests.Planning;
using KfmRollback.Engine.Tests.Support;
using KfmRollback.Engine.Verification;
using Xunit;

namespace KfmRollback.Engine.Tests.Verification;

/// <summary>Checklist D's trace check against the lab, whose API exports spans with OpenTelemetry to an in-lab Zipkin endpoint.</summary>
public sealed class TraceChecksTests
{
    private static EnvironmentConfig Environment(EngineLab lab, string? traces)
    {
        LabConfig config = lab.Probing(lab.NewDirectory("traces"));
        return (traces is null ? config : config.With("observability", $"{{ traces: {traces} }}")).Environment();
    }

    [Fact]
    public async Task A_good_build_traces_policy_evaluation_and_a_build_that_skips_it_fails()
    {
        await using var lab = await PlanningLab.StartAsync();
        EnvironmentConfig environment = Environment(lab, $"{{ url: '{lab.Host.ZipkinUrl}', kind: zipkin, deadline: 10s }}");

        CheckResult good = Assert.Single(await TraceChecks.RunAsync(environment, CancellationToken.None, TimeSpan.FromMilliseconds(100)));
        Assert.Equal((TraceChecks.Check, Verdict.Pass), (good.Check, good.Verdict));
        Assert.Equal("GET /api/v1/datasets", good.Evidence["server_span"]);

        await lab.DeployAsync("bad-nopolicy");
        CheckResult bad = Assert.Single(await TraceChecks.RunAsync(environment, CancellationToken.None, TimeSpan.FromMilliseconds(100)));
        Assert.Equal(Verdict.Fail, bad.Verdict);
        Assert.Contains("has no policy.evaluate child", bad.Summary);
    }

    [Fact]
    public async Task No_trace_in_time_or_no_trace_api_is_inconclusive_never_a_pass()
    {
        await using var lab = await PlanningLab.StartAsync();

        // The lab collector speaks Zipkin: asked as Jaeger, no trace is ever found.
        CheckResult missing = Assert.Single(await TraceChecks.RunAsync(
            Environment(lab, $"{{ url: '{lab.Host.ZipkinUrl}', kind: jaeger, deadline: 2s }}"), CancellationToken.None, TimeSpan.FromMilliseconds(200)));
        Assert.Equal(Verdict.Inconclusive, missing.Verdict);
        Assert.Contains("no usable trace of the probe within 2 s", missing.Summary);

        CheckResult unconfigured = Assert.Single(await TraceChecks.RunAsync(Environment(lab, null), CancellationToken.None));
        Assert.Equal(Verdict.Inconclusive, unconfigured.Verdict);
        Assert.Contains("observability.traces is not configured", unconfigured.Summary);
    }

    [Fact]
    public void Jaeger_and_Tempo_documents_give_the_same_parent_links()
    {
        var jaeger = JsonNode.Parse("""
            {"data":[{"traceID":"0af7651916cd43dd8448eb211c80319c","spans":[
              {"spanID":"00f067aa0ba902b7","operationName":"GET /api/v1/datasets","references":[{"refType":"CHILD_OF","traceID":"0af7651916cd43dd8448eb211c80319c","spanID":"b7ad6b7169203331"}]},
              {"spanID":"53995c3f42cd8ad8","operationName":"policy.evaluate","references":[{"refType":"CHILD_OF","spanID":"00f067aa0ba902b7"}]}]}]}
            """);
        // OTLP JSON as Tempo serves it: ids in base64.
        string B64(string hex) => Convert.ToBase64String(Convert.FromHexString(hex));
        var tempo = JsonNode.Parse($$"""
            {"batches":[{"resource":{},"scopeSpans":[{"spans":[
              {"traceId":"{{B64("0af7651916cd43dd8448eb211c80319c")}}","spanId":"{{B64("00f067aa0ba902b7")}}","parentSpanId":"{{B64("b7ad6b7169203331")}}","name":"GET /api/v1/datasets"},
              {"traceId":"{{B64("0af7651916cd43dd8448eb211c80319c")}}","spanId":"{{B64("53995c3f42cd8ad8")}}","parentSpanId":"{{B64("00f067aa0ba902b7")}}","name":"policy.evaluate"}]}]}]}
            """);
        var expected = new[]
        {
            new TraceSpan("00f067aa0ba902b7", "b7ad6b7169203331", "GET /api/v1/datasets"),
            new TraceSpan("53995c3f42cd8ad8", "00f067aa0ba902b7", "policy.evaluate"),
        };
        Assert.Equal(expected, TraceApiClient.Parse(TraceApiKind.Jaeger, jaeger));
        Assert.Equal(expected, TraceApiClient.Parse(TraceApiKind.Tempo, tempo));
        Assert.Equal("http://t.test/base/api/traces/abc", TraceApiClient.TraceUrl(new TracesConfig { Url = new Uri("http://t.test/base/"), Kind = TraceApiKind.Tempo }, "abc").ToString());
        Assert.Equal("http://t.test/api/v2/trace/abc", TraceApiClient.TraceUrl(new TracesConfig { Url = new Uri("http://t.test"), Kind = TraceApiKind.Zipkin }, "abc").ToString());
    }
}
