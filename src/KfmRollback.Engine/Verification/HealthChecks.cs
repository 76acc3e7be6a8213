using KfmRollback.Engine.Adapters.Prometheus;
using KfmRollback.Engine.Adapters.Kubernetes;
using k8s;
using System.Globalization;
using k8s.Models;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Verification;

/// <summary>
/// Checklist A: the deployment is stable, the health endpoints answer, and 5xx ratio, P95 and P99 are
/// back to baseline and within the absolute limits. Thin data is inconclusive, never a pass.
/// </summary>
public static class HealthChecks
{
    public static async Task<IReadOnlyList<CheckResult>> RunAsync(IKubernetes client, EnvironmentConfig environment, DateTimeOffset incidentStart, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var results = new List<CheckResult> { await DeploymentStableAsync(environment, client, cancellationToken).ConfigureAwait(false) };
        results.AddRange(await EndpointsAsync(environment, cancellationToken).ConfigureAwait(false));
        results.AddRange(await MetricsAsync(environment, incidentStart, now, cancellationToken).ConfigureAwait(false));
        return results;
    }

    /// <summary>Checklist A's "deployment is stable (no crash loop)": two reads two seconds apart.</summary>
    public static async Task<CheckResult> DeploymentStableAsync(EnvironmentConfig environment, IKubernetes client, CancellationToken cancellationToken)
    {
        DeploymentSnapshot first = await DeploymentSnapshot.ReadAsync(client, environment.Cluster.Namespace, environment.Cluster.Deployment, cancellationToken).ConfigureAwait(false);
        await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
        DeploymentSnapshot second = await DeploymentSnapshot.ReadAsync(client, environment.Cluster.Namespace, environment.Cluster.Deployment, cancellationToken).ConfigureAwait(false);

        RolloutStatus rollout = RolloutStatus.Evaluate(second.Deployment);
        RolloutStatus? podFailure = RolloutStatus.PodFailure(second.Pods);
        int restartsBefore = Restarts(first.Pods), restartsAfter = Restarts(second.Pods);
        var evidence = new Dictionary<string, string>
        {
            ["rollout"] = rollout.Message,
            ["pods"] = second.Pods.Count.ToString(CultureInfo.InvariantCulture),
            ["restarts"] = $"{restartsBefore} -> {restartsAfter}",
        };
        (Verdict verdict, string summary) = podFailure is not null ? (Verdict.Fail, podFailure.Message)
            : rollout.Phase == RolloutPhase.Failed ? (Verdict.Fail, rollout.Message)
            : restartsAfter > restartsBefore ? (Verdict.Fail, $"restart counts rose from {restartsBefore} to {restartsAfter} while watching (crash loop)")
            : rollout.Phase == RolloutPhase.Waiting ? (Verdict.Inconclusive, $"the rollout has not finished: {rollout.Message}")
            : (Verdict.Pass, "rollout complete, no pod crash-looping, restart counts flat");
        return Result(environment, "A.deployment-stable", verdict, summary, evidence);
    }

    private static int Restarts(IEnumerable<V1Pod> pods) =>
        pods.SelectMany(p => p.Status?.ContainerStatuses ?? new List<V1ContainerStatus>()).Sum(s => s.RestartCount);

    private static async Task<IReadOnlyList<CheckResult>> EndpointsAsync(EnvironmentConfig environment, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { BaseAddress = environment.Api.BaseUrl, Timeout = TimeSpan.FromSeconds(10) };
        var results = new List<CheckResult>();
        foreach (string path in environment.Api.HealthPaths)
        {
            string check = "A.endpoint" + path;
            try
            {
                using HttpResponseMessage response = await http.GetAsync(path.TrimStart('/'), cancellationToken).ConfigureAwait(false);
                int code = (int)response.StatusCode;
                results.Add(Result(environment, check, code == 200 ? Verdict.Pass : Verdict.Fail, $"{path} answered {code}",
                    new Dictionary<string, string> { ["status"] = code.ToString(CultureInfo.InvariantCulture) }));
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                results.Add(Result(environment, check, Verdict.Fail, $"{path} did not answer ({ex.GetType().Name})", new Dictionary<string, string>()));
            }
        }
        return results;
    }

    private static async Task<IReadOnlyList<CheckResult>> MetricsAsync(EnvironmentConfig environment, DateTimeOffset incidentStart, DateTimeOffset now, CancellationToken cancellationToken)
    {
        PrometheusConfig prometheus = environment.Prometheus;
        PrometheusThresholds limits = prometheus.Thresholds;
        using var client = new PrometheusClient(prometheus);
        TimeSpan window = prometheus.EvaluationWindow, baselineWindow = prometheus.BaselineWindow;
        string Query(string template, TimeSpan w) => prometheus.Render(template, w);

        // Independent queries, asked at once: the checklist waits for the slowest, not the sum.
        Task<PromValue> Ask(string template, TimeSpan w, DateTimeOffset at) => client.QueryAsync(Query(template, w), at, cancellationToken);
        Task<PromValue> requestsQuery = Ask(prometheus.Queries.RequestCount, window, now);
        Task<PromValue> ratioQuery = Ask(prometheus.Queries.ErrorRatio, window, now);
        Task<PromValue> p95Query = Ask(prometheus.Queries.P95, window, now);
        Task<PromValue> p99Query = Ask(prometheus.Queries.P99, window, now);
        Task<PromValue> baseRatioQuery = Ask(prometheus.Queries.ErrorRatio, baselineWindow, incidentStart);
        Task<PromValue> baseP95Query = Ask(prometheus.Queries.P95, baselineWindow, incidentStart);
        Task<PromValue> baseP99Query = Ask(prometheus.Queries.P99, baselineWindow, incidentStart);
        await Task.WhenAll(requestsQuery, ratioQuery, p95Query, p99Query, baseRatioQuery, baseP95Query, baseP99Query).ConfigureAwait(false);
        PromValue requests = requestsQuery.Result, ratio = ratioQuery.Result, baseRatio = baseRatioQuery.Result;

        if (!requests.HasValue || requests.Value < limits.MinRequests)
        {
            string why = requests.HasValue
                ? $"only {requests.Value:0} requests in the last {DurationParser(window)} (need {limits.MinRequests})"
                : $"request count unknown: {requests.Problem}";
            return new[]
            {
                Result(environment, "A.error-ratio", Verdict.Inconclusive, why, new Dictionary<string, string>()),
                Result(environment, "A.p95-latency", Verdict.Inconclusive, why, new Dictionary<string, string>()),
                Result(environment, "A.p99-latency", Verdict.Inconclusive, why, new Dictionary<string, string>()),
            };
        }

        string requestsText = requests.Value!.Value.ToString("0", CultureInfo.InvariantCulture);
        CheckResult errorCheck;
        if (!ratio.HasValue)
        {
            errorCheck = Result(environment, "A.error-ratio", Verdict.Inconclusive, $"5xx ratio unknown: {ratio.Problem}", new Dictionary<string, string> { ["requests"] = requestsText });
        }
        else
        {
            double ceiling = limits.MaxErrorRatio;
            if (baseRatio.HasValue)
            {
                ceiling = Math.Min(ceiling, Math.Max(baseRatio.Value!.Value * (1 + limits.MaxErrorRatioIncrease), 0.001));
            }
            bool ok = ratio.Value <= ceiling;
            errorCheck = Result(environment, "A.error-ratio", ok ? Verdict.Pass : Verdict.Fail,
                ok ? $"5xx ratio {ratio.Value:P2} within {ceiling:P2}" : $"5xx ratio {ratio.Value:P2} above {ceiling:P2} (baseline {(baseRatio.HasValue ? baseRatio.Value!.Value.ToString("P2", CultureInfo.InvariantCulture) : "unknown")})",
                new Dictionary<string, string> { ["requests"] = requestsText, ["ratio"] = ratio.Value!.Value.ToString("0.####", CultureInfo.InvariantCulture), ["limit"] = ceiling.ToString("0.####", CultureInfo.InvariantCulture) });
        }
        return new[]
        {
            errorCheck,
            LatencyCheck(environment, "P95", p95Query.Result, baseP95Query.Result, limits.MaxP95Ms, limits.P95Factor, requestsText),
            LatencyCheck(environment, "P99", p99Query.Result, baseP99Query.Result, limits.MaxP99Ms, limits.P99Factor, requestsText),
        };
    }

    /// <summary>A latency percentile within its absolute ceiling and within factor × baseline (never below 50 ms, so a near-zero baseline does not fail noise).</summary>
    private static CheckResult LatencyCheck(EnvironmentConfig environment, string percentile, PromValue value, PromValue baseline, double maxMs, double factor, string requestsText)
    {
        string check = $"A.{percentile.ToLowerInvariant()}-latency";
        if (!value.HasValue)
        {
            return Result(environment, check, Verdict.Inconclusive, $"{percentile} unknown: {value.Problem}", new Dictionary<string, string> { ["requests"] = requestsText });
        }
        double ms = value.Value!.Value * 1000;
        double ceilingMs = maxMs;
        if (baseline.HasValue)
        {
            ceilingMs = Math.Min(ceilingMs, Math.Max(baseline.Value!.Value * 1000 * factor, 50));
        }
        bool ok = ms <= ceilingMs;
        string key = percentile.ToLowerInvariant() + "_ms";
        return Result(environment, check, ok ? Verdict.Pass : Verdict.Fail,
            ok ? $"{percentile} {ms:0} ms within {ceilingMs:0} ms" : $"{percentile} {ms:0} ms above {ceilingMs:0} ms",
            new Dictionary<string, string> { ["requests"] = requestsText, [key] = ms.ToString("0", CultureInfo.InvariantCulture), ["limit_ms"] = ceilingMs.ToString("0", CultureInfo.InvariantCulture) });
    }

    private static string DurationParser(TimeSpan window) => Configuration.Binding.DurationParser.Format(window);

    internal static CheckResult Result(EnvironmentConfig environment, string check, Verdict verdict, string summary, IReadOnlyDictionary<string, string> evidence) => new()
    {
        Environment = environment.Name,
        Section = check.StartsWith("A.", StringComparison.Ordinal) ? CheckSection.Health : check.StartsWith("B.", StringComparison.Ordinal) ? CheckSection.PolicyInvariants : check.StartsWith("C.", StringComparison.Ordinal) ? CheckSection.Contract : CheckSection.Observability,
        Check = check,
        Verdict = verdict,
        Summary = summary,
        Evidence = evidence,
    };
}
