using System.Globalization;
using KfmRollback.Engine.Adapters.Prometheus;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Configuration.Binding;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Verification;

/// <summary>
/// Checklist A's metrics against a verified-good baseline (<see cref="BaselineFinder"/>): the 5xx ratio by
/// a sequential test (<see cref="SequentialTest"/>), P95 and P99 against their limits, and the latency
/// distribution by Mann-Whitney (<see cref="LatencyDistribution"/>). The window judged is the time since the
/// rollout converged when that is known, else <c>evaluation_window</c>.
/// Without a valid baseline every comparison is inconclusive with the reason; an absolute limit still fails.
/// </summary>
public static class MetricChecks
{
    /// <param name="evidenceWait">
    /// In a wait, after the convergence: how long this call may wait for the requests the sequential 5xx test
    /// still needs (<see cref="AwaitEvidenceAsync"/>). Zero judges once, at <paramref name="now"/>.
    /// </param>
    public static async Task<IReadOnlyList<CheckResult>> RunAsync(EnvironmentConfig environment, DateTimeOffset incidentStart, DateTimeOffset now,
        BaselineHistory history, DateTimeOffset? since, CancellationToken cancellationToken, TimeSpan evidenceWait = default, IClock? clock = null)
    {
        using var client = new PrometheusClient(environment.Prometheus);
        IReadOnlyList<CheckResult> results = await JudgeAsync(environment, client, incidentStart, now, history, since, cancellationToken).ConfigureAwait(false);
        return evidenceWait > TimeSpan.Zero && since is not null
            ? await AwaitEvidenceAsync(environment, client, incidentStart, history, since.Value, results, evidenceWait, clock ?? SystemClock.Instance, cancellationToken).ConfigureAwait(false)
            : results;
    }

    /// <summary>How often a round that waits for its evidence asks Prometheus for the request count.</summary>
    public static readonly TimeSpan EvidencePoll = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// A round whose metrics only lack requests (the sequential test undecided, or fewer than min_requests, and
    /// nothing failed) and whose missing requests should come within <paramref name="evidenceWait"/> at the rate
    /// counted so far asks Prometheus for the count every <see cref="EvidencePoll"/> and judges again, over the
    /// window up to then, the moment the count reaches what the test needs. So a clean build passes when its
    /// evidence exists, not at the next round; the round's other sections run meanwhile, so their evidence is
    /// no older than this wait. Without the requests in time, the round keeps its first judgement.
    /// </summary>
    private static async Task<IReadOnlyList<CheckResult>> AwaitEvidenceAsync(EnvironmentConfig environment, PrometheusClient client, DateTimeOffset incidentStart,
        BaselineHistory history, DateTimeOffset since, IReadOnlyList<CheckResult> results, TimeSpan evidenceWait, IClock clock, CancellationToken cancellationToken)
    {
        PrometheusConfig prometheus = environment.Prometheus;
        if (results.Any(r => r.Verdict == Verdict.Fail)
            || results.FirstOrDefault(r => r.Check == ErrorRatioCheck) is not { Verdict: Verdict.Inconclusive, Reading: { Requests: { } counted and > 0, Window: { } window } reading })
        {
            return results;
        }
        double needed = reading.ErrorTest is { } test ? (test.Verdict == Verdict.Inconclusive ? test.RequestsToPass : 0)
            : counted < prometheus.Thresholds.MinRequests ? prometheus.Thresholds.MinRequests : 0;
        if (needed <= counted || TimeSpan.FromSeconds((needed - counted) / (counted / window.TotalSeconds)) > evidenceWait)
        {
            return results;
        }
        DateTimeOffset until = clock.UtcNow + evidenceWait;
        while (clock.UtcNow + EvidencePoll <= until)
        {
            await Task.Delay(EvidencePoll, cancellationToken).ConfigureAwait(false);
            DateTimeOffset at = clock.UtcNow;
            PromValue count = await client.QueryAsync(prometheus.Render(prometheus.Queries.RequestCount, Window(prometheus, at, since)), at, cancellationToken).ConfigureAwait(false);
            if (count.HasValue && count.Value >= needed)
            {
                return await JudgeAsync(environment, client, incidentStart, at, history, since, cancellationToken).ConfigureAwait(false);
            }
        }
        return results;
    }

    /// <summary>The 5xx check's name, which a wait's schedule and stop rules look for.</summary>
    internal const string ErrorRatioCheck = "A.error-ratio";

    /// <summary>Every metric check, over the window that ends at <paramref name="now"/>.</summary>
    private static async Task<IReadOnlyList<CheckResult>> JudgeAsync(EnvironmentConfig environment, PrometheusClient client, DateTimeOffset incidentStart, DateTimeOffset now,
        BaselineHistory history, DateTimeOffset? since, CancellationToken cancellationToken)
    {
        PrometheusConfig prometheus = environment.Prometheus;
        PrometheusThresholds limits = prometheus.Thresholds;
        TimeSpan window = Window(prometheus, now, since);
        Task<PromValue> Ask(string template, TimeSpan w, DateTimeOffset at) => client.QueryAsync(prometheus.Render(template, w), at, cancellationToken);

        // Independent queries, asked at once: the checklist waits for the slowest, not the sum.
        Task<BaselineChoice> baselineQuery = new BaselineFinder(prometheus, client).FindAsync(incidentStart, history, cancellationToken);
        Task<PromValue> requestsQuery = Ask(prometheus.Queries.RequestCount, window, now);
        Task<PromValue> errorsQuery = Ask(prometheus.Queries.ErrorCount, window, now);
        Task<PromValue> p95Query = Ask(prometheus.Queries.P95, window, now);
        Task<PromValue> p99Query = Ask(prometheus.Queries.P99, window, now);
        Task<PromVector> bucketsQuery = client.QueryVectorAsync(prometheus.Render(prometheus.Queries.LatencyBuckets, window), now, cancellationToken);
        await Task.WhenAll(baselineQuery, requestsQuery, errorsQuery, p95Query, p99Query, bucketsQuery).ConfigureAwait(false);
        BaselineChoice baseline = baselineQuery.Result;
        PromValue requests = requestsQuery.Result;

        PromValue baseRatio = new(null, baseline.Reason), baseP95 = baseRatio, baseP99 = baseRatio;
        PromVector baseBuckets = new(Array.Empty<(IReadOnlyDictionary<string, string>, double)>(), baseline.Reason);
        if (baseline.Window is { } b)
        {
            Task<PromValue> r = Ask(prometheus.Queries.ErrorRatio, b.Length, b.To), p95 = Ask(prometheus.Queries.P95, b.Length, b.To), p99 = Ask(prometheus.Queries.P99, b.Length, b.To);
            Task<PromVector> buckets = client.QueryVectorAsync(prometheus.Render(prometheus.Queries.LatencyBuckets, b.Length), b.To, cancellationToken);
            await Task.WhenAll(r, p95, p99, buckets).ConfigureAwait(false);
            (baseRatio, baseP95, baseP99, baseBuckets) = (r.Result, p95.Result, p99.Result, buckets.Result);
        }

        string windowText = DurationParser.Format(window) + (since is not null ? " since the rollout converged" : "");
        Dictionary<string, string> Evidence(string? requestsText = null)
        {
            var evidence = new Dictionary<string, string> { ["window"] = windowText };
            if (requestsText is not null) { evidence["requests"] = requestsText; }
            baseline.AddTo(evidence);
            return evidence;
        }
        if (!requests.HasValue || requests.Value < limits.MinRequests)
        {
            string why = requests.HasValue
                ? $"only {requests.Value:0} requests in the last {windowText} (need {limits.MinRequests})"
                : $"request count unknown: {requests.Problem}";
            // The count read, when there is one, is what a wait schedules by (its evidence text is not read back).
            var reading = requests.HasValue ? new CheckReading { Requests = requests.Value, Window = window } : null;
            return new[] { ErrorRatioCheck, "A.p95-latency", "A.p99-latency", "A.latency-distribution" }
                .Select(check => HealthChecks.Result(environment, check, Verdict.Inconclusive, why, Evidence()) with { Reading = check == ErrorRatioCheck ? reading : null }).ToList();
        }
        string requestsText = requests.Value!.Value.ToString("0", CultureInfo.InvariantCulture);
        return new[]
        {
            ErrorCheck(environment, prometheus, requests.Value.Value, window, errorsQuery.Result, baseRatio, baseline, Evidence(requestsText)),
            PercentileCheck(environment, "P95", p95Query.Result, baseP95, baseline, limits.MaxP95Ms, limits.P95Factor, Evidence(requestsText)),
            PercentileCheck(environment, "P99", p99Query.Result, baseP99, baseline, limits.MaxP99Ms, limits.P99Factor, Evidence(requestsText)),
            DistributionCheck(environment, prometheus.Statistics, bucketsQuery.Result, baseBuckets, baseline, Evidence(requestsText)),
        };
    }

    /// <summary>
    /// The time since the rollout converged, to the millisecond and at least a second (the sequential test's
    /// evidence grows with it, so it is not capped: -Timeout bounds the wait); evaluation_window when the
    /// convergence is not known. Not rounded to whole seconds: that dropped up to a second of the rolled-back
    /// build's requests from every round, and so from the verdict's evidence.
    /// </summary>
    public static TimeSpan Window(PrometheusConfig prometheus, DateTimeOffset now, DateTimeOffset? since) =>
        since is { } s ? TimeSpan.FromMilliseconds(Math.Max(1000, Math.Floor((now - s).TotalMilliseconds))) : prometheus.EvaluationWindow;

    private static CheckResult ErrorCheck(EnvironmentConfig environment, PrometheusConfig prometheus, double requests, TimeSpan window, PromValue errors, PromValue baseRatio,
        BaselineChoice baseline, Dictionary<string, string> evidence)
    {
        const string Check = ErrorRatioCheck;
        PrometheusThresholds limits = prometheus.Thresholds;
        if (!errors.HasValue)
        {
            return HealthChecks.Result(environment, Check, Verdict.Inconclusive, $"5xx count unknown: {errors.Problem}", evidence) with { Reading = new CheckReading { Requests = requests, Window = window } };
        }
        bool compared = baseRatio.HasValue;
        double limit = compared ? Math.Min(limits.MaxErrorRatio, Math.Max(baseRatio.Value!.Value * (1 + limits.MaxErrorRatioIncrease), limits.ErrorRatioFloor)) : limits.MaxErrorRatio;
        SequentialTest.Outcome test = SequentialTest.ErrorRatio(requests, errors.Value!.Value, limit, limits.MinRequests, prometheus.Statistics.Alpha, prometheus.Statistics.Beta);
        double ratio = requests > 0 ? errors.Value.Value / requests : 0;
        evidence["errors"] = Math.Round(errors.Value.Value).ToString("0", CultureInfo.InvariantCulture);
        evidence["ratio"] = ratio.ToString("0.####", CultureInfo.InvariantCulture);
        evidence["limit"] = limit.ToString("0.####", CultureInfo.InvariantCulture);
        if (compared) { evidence["baseline_ratio"] = baseRatio.Value!.Value.ToString("0.####", CultureInfo.InvariantCulture); }
        test.AddTo(evidence);
        var reading = new CheckReading { Requests = requests, Window = window, ErrorTest = test };
        string counts = $"{evidence["errors"]} 5xx of {requests:0} requests ({ratio.ToString("P2", CultureInfo.InvariantCulture)})";
        if (test.Verdict == Verdict.Fail)
        {
            return HealthChecks.Result(environment, Check, Verdict.Fail, $"{counts}: the sequential test puts the 5xx ratio at or above {limit.ToString("P2", CultureInfo.InvariantCulture)}", evidence) with { Reading = reading };
        }
        if (!compared)
        {
            return NoBaseline(environment, Check, $"{counts}; no baseline to compare with: {baseRatio.Problem}", evidence) with { Reading = reading };
        }
        return (test.Verdict == Verdict.Pass
            ? HealthChecks.Result(environment, Check, Verdict.Pass, $"{counts}: the sequential test shows it below {limit.ToString("P2", CultureInfo.InvariantCulture)} (baseline {baseRatio.Value!.Value.ToString("P2", CultureInfo.InvariantCulture)})", evidence)
            : HealthChecks.Result(environment, Check, Verdict.Inconclusive, $"{counts}: not yet enough requests to tell it from {limit.ToString("P2", CultureInfo.InvariantCulture)} (sequential test undecided: it passes at {test.RequestsToPass} requests if no more 5xx come)", evidence))
            with { Reading = reading };
    }

    /// <summary>A percentile within its absolute ceiling and within factor × baseline (never below 50 ms, so a near-zero baseline does not fail noise).</summary>
    private static CheckResult PercentileCheck(EnvironmentConfig environment, string percentile, PromValue value, PromValue baseline, BaselineChoice choice,
        double maxMs, double factor, Dictionary<string, string> evidence)
    {
        string check = $"A.{percentile.ToLowerInvariant()}-latency";
        if (!value.HasValue)
        {
            return HealthChecks.Result(environment, check, Verdict.Inconclusive, $"{percentile} unknown: {value.Problem}", evidence);
        }
        double ms = value.Value!.Value * 1000;
        double ceilingMs = baseline.HasValue ? Math.Min(maxMs, Math.Max(baseline.Value!.Value * 1000 * factor, 50)) : maxMs;
        evidence[percentile.ToLowerInvariant() + "_ms"] = ms.ToString("0", CultureInfo.InvariantCulture);
        evidence["limit_ms"] = ceilingMs.ToString("0", CultureInfo.InvariantCulture);
        if (ms > ceilingMs)
        {
            return HealthChecks.Result(environment, check, Verdict.Fail, $"{percentile} {ms:0} ms above {ceilingMs:0} ms", evidence);
        }
        if (!baseline.HasValue)
        {
            return NoBaseline(environment, check, $"{percentile} {ms:0} ms within the absolute {ceilingMs:0} ms; no baseline to compare with: {baseline.Problem}", evidence);
        }
        evidence["baseline_" + percentile.ToLowerInvariant() + "_ms"] = (baseline.Value!.Value * 1000).ToString("0", CultureInfo.InvariantCulture);
        return HealthChecks.Result(environment, check, Verdict.Pass, $"{percentile} {ms:0} ms within {ceilingMs:0} ms", evidence);
    }

    /// <summary>Mann-Whitney over the requests' latency buckets, baseline against now (Kayenta's rule, <see cref="LatencyDistribution"/>).</summary>
    private static CheckResult DistributionCheck(EnvironmentConfig environment, PrometheusStatistics statistics, PromVector current, PromVector baseline,
        BaselineChoice choice, Dictionary<string, string> evidence)
    {
        const string Check = "A.latency-distribution";
        if (!choice.Found)
        {
            return NoBaseline(environment, Check, "no baseline to compare the latency distribution with: " + choice.Reason, evidence);
        }
        LatencyHistogram now = Histogram(current), before = Histogram(baseline);
        evidence["n_baseline"] = before.Count.ToString("0", CultureInfo.InvariantCulture);
        evidence["n_current"] = now.Count.ToString("0", CultureInfo.InvariantCulture);
        if (now.Count < statistics.MinSamples || before.Count < statistics.MinSamples)
        {
            string? problem = current.Problem ?? baseline.Problem;
            return HealthChecks.Result(environment, Check, Verdict.Inconclusive,
                $"{before.Count:0} baseline and {now.Count:0} current latency samples (need {statistics.MinSamples} a side){(problem is null ? "" : ": " + problem)}", evidence);
        }
        LatencyDistribution.Outcome outcome = LatencyDistribution.Compare(before, now, statistics.LatencyConfidence, statistics.LatencyTolerance, statistics.LatencyEffectSize);
        foreach (var (key, value) in outcome.Evidence()) { evidence[key] = value; }
        string figures = $"shift {outcome.ShiftSeconds * 1000:0.#} ms ({statistics.LatencyConfidence:P0} interval {outcome.LowerSeconds * 1000:0.#} to {outcome.UpperSeconds * 1000:0.#} ms), mean ×{outcome.MeanRatio:0.##}, U {outcome.U:0}, p {outcome.PValue:0.####}, n {outcome.BaselineCount:0}/{outcome.CurrentCount:0}";
        return outcome.High
            ? HealthChecks.Result(environment, Check, Verdict.Fail, "latency distribution is slower than the baseline: " + figures, evidence)
            : HealthChecks.Result(environment, Check, Verdict.Pass, "latency distribution not slower than the baseline beyond tolerance: " + figures, evidence);
    }

    private static LatencyHistogram Histogram(PromVector vector) =>
        LatencyHistogram.FromCumulative(vector.Series
            .Where(s => s.Labels.ContainsKey("le"))
            .Select(s => (s.Labels["le"] == "+Inf" ? double.PositiveInfinity : double.Parse(s.Labels["le"], NumberStyles.Float, CultureInfo.InvariantCulture), s.Value)));

    /// <summary>No valid baseline: inconclusive, and waiting does not find one (the past does not change).</summary>
    private static CheckResult NoBaseline(EnvironmentConfig environment, string check, string summary, Dictionary<string, string> evidence) =>
        HealthChecks.Result(environment, check, Verdict.Inconclusive, summary, evidence) with
        {
            Settled = true,
            NextStep = "no verified-good baseline: pass -IncidentStart at the time the bad build started serving, or widen prometheus.baseline.lookback (see docs/verification.md)",
        };
}
