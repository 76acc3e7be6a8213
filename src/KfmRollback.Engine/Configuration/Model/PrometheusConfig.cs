using KfmRollback.Engine.Configuration.Binding;

namespace KfmRollback.Engine.Configuration;

/// <summary>Metrics used to judge a rollback (checklist A): error ratio and latency against a
/// pre-incident baseline and absolute limits.</summary>
public sealed class PrometheusConfig : IConfigSection
{
    /// <summary>Prometheus base URL (the HTTP API lives under /api/v1/query).</summary>
    [RequiredKey]
    public Uri Url { get; init; } = null!;

    /// <summary>Environment variable holding a bearer token for Prometheus, if it needs one.</summary>
    [EnvVarName]
    public string? TokenEnv { get; init; }

    /// <summary>File holding a bearer token for Prometheus, if it needs one.</summary>
    [LocalPath]
    public string? TokenFile { get; init; }

    /// <summary>Label matchers selecting the API's series; replaces <c>{selector}</c> in the queries.</summary>
    public string Selector { get; init; } = "job=\"kfm-api\"";

    /// <summary>PromQL templates.</summary>
    public PrometheusQueries Queries { get; init; } = new();

    /// <summary>Length of the pre-incident window the rollback is compared against.</summary>
    public TimeSpan BaselineWindow { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>Length of the post-rollback window that is judged.</summary>
    public TimeSpan EvaluationWindow { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Pass/fail limits.</summary>
    public PrometheusThresholds Thresholds { get; init; } = new();

    /// <summary>How a verified-good baseline window is chosen (docs/verification.md).</summary>
    public PrometheusBaseline Baseline { get; init; } = new();

    /// <summary>The statistics of the verdict: Mann-Whitney on latency, the sequential test on 5xx (docs/verification.md).</summary>
    public PrometheusStatistics Statistics { get; init; } = new();

    /// <summary>Fills a query template: <c>{selector}</c> → <see cref="Selector"/>, <c>{window}</c> → e.g. "10m".</summary>
    public string Render(string template, TimeSpan window) =>
        template.Replace("{selector}", Selector, StringComparison.Ordinal)
                .Replace("{window}", DurationParser.Format(window), StringComparison.Ordinal);

    void IConfigSection.Validate(ValidationScope scope)
    {
        scope.AtMostOne("token_env", "token_file");
        scope.CredentialsTravelSafely("url", Url, TokenEnv is not null || TokenFile is not null, "the bearer token of token_env/token_file");
        if (Selector.Contains('{') || Selector.Contains('}'))
            throw scope.Invalid("selector", "must be bare label matchers such as job=\"kfm-api\" (no braces).");
    }
}

/// <summary>PromQL templates; <c>{selector}</c> and <c>{window}</c> are filled in by <see cref="PrometheusConfig.Render"/>.</summary>
public sealed class PrometheusQueries : IConfigSection
{
    /// <summary>
    /// Share of 5xx responses. No 5xx series at all means none happened (<c>or vector(0)</c>); a
    /// ratio over zero traffic is still empty and counts as "no data".
    /// </summary>
    public string ErrorRatio { get; init; } =
        "(sum(rate(http_requests_total{{selector},code=~\"5..\"}[{window}])) or vector(0)) / sum(rate(http_requests_total{{selector}}[{window}]))";

    /// <summary>95th percentile latency in seconds.</summary>
    public string P95 { get; init; } =
        "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{selector}}[{window}])))";

    /// <summary>99th percentile latency in seconds.</summary>
    public string P99 { get; init; } =
        "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{selector}}[{window}])))";

    /// <summary>Number of requests in the window (enough samples to judge?).</summary>
    public string RequestCount { get; init; } =
        "sum(increase(http_requests_total{{selector}}[{window}]))";

    /// <summary>Number of 5xx responses in the window (the sequential test counts them).</summary>
    public string ErrorCount { get; init; } =
        "sum(increase(http_requests_total{{selector},code=~\"5..\"}[{window}])) or vector(0)";

    /// <summary>Requests per latency bucket in the window, one series per <c>le</c> (Mann-Whitney ranks them).</summary>
    public string LatencyBuckets { get; init; } =
        "sum by (le) (increase(http_request_duration_seconds_bucket{{selector}}[{window}]))";

    void IConfigSection.Validate(ValidationScope scope)
    {
        // Without {window} every evaluation would look at the same fixed range and the baseline
        // comparison would compare a window with itself.
        foreach (var (key, query) in new[] { ("error_ratio", ErrorRatio), ("p95", P95), ("p99", P99), ("request_count", RequestCount), ("error_count", ErrorCount), ("latency_buckets", LatencyBuckets) })
            if (!query.Contains("{window}", StringComparison.Ordinal))
                throw scope.Invalid(key, "must use the {window} placeholder for its range, e.g. [{window}].");
    }
}

/// <summary>Limits a rollback must meet; a window with too few requests is inconclusive, never a pass.</summary>
public sealed class PrometheusThresholds : IConfigSection
{
    /// <summary>Absolute ceiling on the 5xx ratio (0–1).</summary>
    [Range(0, 1)]
    public double MaxErrorRatio { get; init; } = 0.01;

    /// <summary>Allowed relative increase over the baseline ratio (0.5 = +50%).</summary>
    [Range(0, 100)]
    public double MaxErrorRatioIncrease { get; init; } = 0.5;

    /// <summary>Lowest 5xx limit a near-zero baseline gives (the sequential test needs about 6/limit clean requests to pass).</summary>
    [Range(0.0001, 1)]
    public double ErrorRatioFloor { get; init; } = 0.001;

    /// <summary>Absolute ceiling on P95 latency in milliseconds.</summary>
    [Range(1, 600000)]
    public double MaxP95Ms { get; init; } = 500;

    /// <summary>Allowed P95 relative to the baseline (1.2 = 20% slower).</summary>
    [Range(1, 100)]
    public double P95Factor { get; init; } = 1.2;

    /// <summary>Absolute ceiling on P99 latency in milliseconds.</summary>
    [Range(1, 600000)]
    public double MaxP99Ms { get; init; } = 1000;

    /// <summary>Allowed P99 relative to the baseline (1.5 = 50% slower): the tail is noisier than P95.</summary>
    [Range(1, 100)]
    public double P99Factor { get; init; } = 1.5;

    /// <summary>Fewest requests in a window for its numbers to count.</summary>
    [Range(1, int.MaxValue)]
    public int MinRequests { get; init; } = 100;

    void IConfigSection.Validate(ValidationScope scope) { }
}

/// <summary>
/// A baseline is a verified-good window: before the incident, clear of every recorded incident, every
/// deploy (and its settling time) and every SLO breach. Without one, the comparison is inconclusive.
/// </summary>
public sealed class PrometheusBaseline : IConfigSection
{
    /// <summary>SLO on the 5xx ratio (0–1): a window with a sample above it is no baseline. Default: thresholds.max_error_ratio.</summary>
    [Range(0, 1)]
    public double? SloErrorRatio { get; init; }

    /// <summary>SLO on P95 in milliseconds: a window with a sample above it is no baseline. Default: thresholds.max_p95_ms.</summary>
    [Range(1, 600000)]
    public double? SloP95Ms { get; init; }

    /// <summary>Time after a deploy (a ReplicaSet created) that is no baseline: the rollout and its settling.</summary>
    public TimeSpan DeploySettle { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Shortest clean window that may serve as a baseline (at most baseline_window is used).</summary>
    public TimeSpan MinWindow { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How far before the incident to look for a clean window.</summary>
    public TimeSpan Lookback { get; init; } = TimeSpan.FromHours(24);

    /// <summary>Resolution of the SLO-breach scan over a candidate window.</summary>
    public TimeSpan SloStep { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Optional: compare with the same time this long ago (e.g. 7d, same time last week) when that window is clean.</summary>
    public TimeSpan? SameTimeOffset { get; init; }

    void IConfigSection.Validate(ValidationScope scope) { }
}

/// <summary>The statistics of checklist A (docs/verification.md cites where each default comes from).</summary>
public sealed class PrometheusStatistics : IConfigSection
{
    /// <summary>Confidence of the Hodges-Lehmann interval of the latency shift (Kayenta NetflixACAJudge: 0.98).</summary>
    [Range(0.5, 0.9999)]
    public double LatencyConfidence { get; init; } = 0.98;

    /// <summary>The shift counts only when the interval's lower end exceeds tolerance × the estimate (Kayenta: 0.25).</summary>
    [Range(0, 10)]
    public double LatencyTolerance { get; init; } = 0.25;

    /// <summary>Mean ratio (rolled back / baseline) a shift must reach to fail (Kayenta's effect-size threshold: 1.0).</summary>
    [Range(1, 100)]
    public double LatencyEffectSize { get; init; } = 1.0;

    /// <summary>Fewest latency samples (requests) per side (spinnaker: at least 50 points a metric).</summary>
    [Range(2, int.MaxValue)]
    public int MinSamples { get; init; } = 50;

    /// <summary>Sequential test on 5xx: chance of failing a build whose ratio is half the limit.</summary>
    [Range(0.0001, 0.5)]
    public double Alpha { get; init; } = 0.05;

    /// <summary>Sequential test on 5xx: chance of passing a build whose ratio is at the limit.</summary>
    [Range(0.0001, 0.5)]
    public double Beta { get; init; } = 0.05;

    void IConfigSection.Validate(ValidationScope scope) { }
}
