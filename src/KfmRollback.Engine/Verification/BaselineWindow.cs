using System.Globalization;
using KfmRollback.Engine.Adapters.Prometheus;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Incidents;

namespace KfmRollback.Engine.Verification;

/// <summary>A span of time, [From, To).</summary>
public sealed record TimeWindow(DateTimeOffset From, DateTimeOffset To)
{
    public TimeSpan Length => To - From;
    public bool Overlaps(TimeWindow other) => From < other.To && other.From < To;
    public override string ToString() => $"{Utc(From)} to {Utc(To)}";
    internal static string Utc(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}

/// <summary>A period that cannot serve as a baseline, and why (an incident, a deploy, an SLO breach).</summary>
public sealed record BaselineExclusion(TimeWindow Window, string Why);

/// <summary>What is known of the environment's past that rules baseline windows out: recorded incidents, deploys.</summary>
public sealed record BaselineHistory(IReadOnlyList<BaselineExclusion> Known)
{
    public static readonly BaselineHistory None = new(Array.Empty<BaselineExclusion>());

    /// <summary>
    /// The journal's incidents of <paramref name="environment"/> (or of no environment), each from its start
    /// to its last timeline entry: the time the API was not known to be good.
    /// </summary>
    public static BaselineHistory FromIncidents(IEnumerable<Incident> incidents, string environment) =>
        new(incidents.Where(i => i.Environment is null || string.Equals(i.Environment, environment, StringComparison.Ordinal))
            .Select(i => new BaselineExclusion(new TimeWindow(i.StartedAt, new[] { i.OpenedAt, i.StartedAt }.Concat(i.Timeline.Select(t => t.At)).Max()),
                $"incident {i.IncidentId}"))
            .ToList());

    /// <summary>This history with deploys added: each ReplicaSet creation and the settling time after it.</summary>
    public BaselineHistory WithDeploys(IEnumerable<(string Name, DateTimeOffset Created)> deploys, TimeSpan settle) =>
        new(Known.Concat(deploys.Select(d => new BaselineExclusion(new TimeWindow(d.Created, d.Created + settle), $"deploy of ReplicaSet {d.Name}"))).ToList());
}

/// <summary>The baseline a comparison used, or why there is none (then the comparison is inconclusive).</summary>
public sealed record BaselineChoice(TimeWindow? Window, string Reason, IReadOnlyList<BaselineExclusion> Refused)
{
    public bool Found => Window is not null;

    /// <summary>The evidence every checklist-A metric check carries: which window, and why.</summary>
    public void AddTo(IDictionary<string, string> evidence)
    {
        if (Window is { } w)
        {
            evidence["baseline_from"] = TimeWindow.Utc(w.From);
            evidence["baseline_to"] = TimeWindow.Utc(w.To);
        }
        evidence["baseline_reason"] = Reason;
    }
}

/// <summary>
/// Checklist A's baseline: a verified-good window. The latest window of at most
/// <c>prometheus.baseline_window</c> (at least <c>baseline.min_window</c>) that ends no later than the
/// incident's start and overlaps no recorded incident, no deploy (plus <c>baseline.deploy_settle</c>) and no
/// SLO breach (a Prometheus sample over <c>baseline.slo_error_ratio</c> or <c>baseline.slo_p95_ms</c>).
/// With <c>baseline.same_time_offset</c>, the same time that long ago is preferred when it is clean.
/// </summary>
public sealed class BaselineFinder
{
    private const int MaxRounds = 32;
    private readonly PrometheusConfig _prometheus;
    private readonly PrometheusClient _client;

    public BaselineFinder(PrometheusConfig prometheus, PrometheusClient client)
    {
        _prometheus = prometheus;
        _client = client;
    }

    public async Task<BaselineChoice> FindAsync(DateTimeOffset incidentStart, BaselineHistory history, CancellationToken cancellationToken)
    {
        PrometheusBaseline settings = _prometheus.Baseline;
        var refused = new List<BaselineExclusion>();
        var exclusions = history.Known.ToList();
        if (settings.SameTimeOffset is { } offset)
        {
            DateTimeOffset end = incidentStart - offset;
            var candidate = new TimeWindow(end - _prometheus.BaselineWindow, end);
            BaselineChoice? lastWeek = await CleanAsync(candidate, exclusions, refused, cancellationToken).ConfigureAwait(false);
            if (lastWeek is not null)
            {
                return lastWeek with { Reason = $"same time {Configuration.Binding.DurationParser.Format(offset)} earlier, clear of incidents, deploys and SLO breaches" + Refusals(refused) };
            }
        }
        DateTimeOffset limit = incidentStart - settings.Lookback;
        DateTimeOffset to = incidentStart;
        for (int round = 0; round < MaxRounds && to - settings.MinWindow >= limit; round++)
        {
            // The latest stretch before `to` that no exclusion touches, at most baseline_window long.
            DateTimeOffset from = to - _prometheus.BaselineWindow;
            foreach (BaselineExclusion exclusion in exclusions.Where(e => e.Window.From < to && e.Window.To > from).OrderByDescending(e => e.Window.To))
            {
                if (exclusion.Window.To >= to) { continue; }
                if (exclusion.Window.To > from)
                {
                    // The full window would overlap it: only the stretch after it may serve.
                    Refuse(refused, exclusion);
                    from = exclusion.Window.To;
                }
            }
            BaselineExclusion? covering = exclusions.Where(e => e.Window.From < to && e.Window.To >= to).OrderBy(e => e.Window.From).FirstOrDefault();
            if (covering is not null)
            {
                Refuse(refused, covering);
                to = covering.Window.From;
                continue;
            }
            var candidate = new TimeWindow(from, to);
            if (candidate.Length < settings.MinWindow)
            {
                // Too short between two exclusions: look before the earlier one.
                BaselineExclusion? before = exclusions.Where(e => e.Window.To <= to && e.Window.To >= from).OrderByDescending(e => e.Window.To).FirstOrDefault();
                if (before is null) { break; }
                Refuse(refused, before);
                to = before.Window.From;
                continue;
            }
            BaselineChoice? choice = await CleanAsync(candidate, exclusions, refused, cancellationToken).ConfigureAwait(false);
            if (choice is not null)
            {
                string how = candidate.To == incidentStart ? "the window just before the incident" : "the latest clean window before the incident";
                return choice with { Reason = how + ", clear of incidents, deploys and SLO breaches" + Refusals(refused) };
            }
        }
        string why = refused.Count == 0
            ? $"no window of at least {Configuration.Binding.DurationParser.Format(settings.MinWindow)} in the {Configuration.Binding.DurationParser.Format(settings.Lookback)} before the incident"
            : $"no clean window of at least {Configuration.Binding.DurationParser.Format(settings.MinWindow)} in the {Configuration.Binding.DurationParser.Format(settings.Lookback)} before the incident" + Refusals(refused);
        return new BaselineChoice(null, why, refused);
    }

    /// <summary>The candidate as a choice when Prometheus shows no SLO breach in it; else the breach joins the exclusions.</summary>
    private async Task<BaselineChoice?> CleanAsync(TimeWindow candidate, List<BaselineExclusion> exclusions, List<BaselineExclusion> refused, CancellationToken cancellationToken)
    {
        if (exclusions.FirstOrDefault(e => e.Window.Overlaps(candidate)) is { } overlap)
        {
            Refuse(refused, overlap);
            return null;
        }
        // A window is only a baseline where Prometheus saw traffic: the stretch before its first sample is not one.
        DateTimeOffset? traffic = await FirstTrafficAsync(candidate, cancellationToken).ConfigureAwait(false);
        if (traffic is not { } firstTraffic || candidate.To - firstTraffic < _prometheus.Baseline.MinWindow)
        {
            var silent = new BaselineExclusion(new TimeWindow(candidate.From, traffic ?? candidate.To), "no traffic recorded");
            exclusions.Add(silent);
            Refuse(refused, silent);
            return null;
        }
        candidate = candidate with { From = firstTraffic };
        BaselineExclusion? breach = await SloBreachAsync(candidate, cancellationToken).ConfigureAwait(false);
        if (breach is null)
        {
            return new BaselineChoice(candidate, "", refused);
        }
        exclusions.Add(breach);
        Refuse(refused, breach);
        return null;
    }

    /// <summary>The start of the first step in the window with requests in it; null when Prometheus saw none.</summary>
    private async Task<DateTimeOffset?> FirstTrafficAsync(TimeWindow window, CancellationToken cancellationToken)
    {
        TimeSpan step = _prometheus.Baseline.SloStep;
        DateTimeOffset first = window.From + step <= window.To ? window.From + step : window.To;
        PromRange counts = await _client.QueryRangeAsync(_prometheus.Render(_prometheus.Queries.RequestCount, step), first, window.To, step, cancellationToken).ConfigureAwait(false);
        PromSample? sample = counts.Samples.FirstOrDefault(s => s.Value > 0);
        return sample is null ? null : sample.At - step < window.From ? window.From : sample.At - step;
    }

    /// <summary>The first sample in the window over an SLO, as an exclusion of one step before it; null when none.</summary>
    private async Task<BaselineExclusion?> SloBreachAsync(TimeWindow window, CancellationToken cancellationToken)
    {
        PrometheusBaseline settings = _prometheus.Baseline;
        TimeSpan step = settings.SloStep;
        double ratioSlo = settings.SloErrorRatio ?? _prometheus.Thresholds.MaxErrorRatio;
        double p95Slo = (settings.SloP95Ms ?? _prometheus.Thresholds.MaxP95Ms) / 1000;
        // Each sample covers the step before it, so the scan starts one step into the window.
        DateTimeOffset first = window.From + step <= window.To ? window.From + step : window.To;
        Task<PromRange> ratios = _client.QueryRangeAsync(_prometheus.Render(_prometheus.Queries.ErrorRatio, step), first, window.To, step, cancellationToken);
        Task<PromRange> p95s = _client.QueryRangeAsync(_prometheus.Render(_prometheus.Queries.P95, step), first, window.To, step, cancellationToken);
        await Task.WhenAll(ratios, p95s).ConfigureAwait(false);
        PromSample? ratio = ratios.Result.Samples.FirstOrDefault(s => s.Value > ratioSlo);
        PromSample? p95 = p95s.Result.Samples.FirstOrDefault(s => s.Value > p95Slo);
        PromSample? breach = new[] { ratio, p95 }.Where(s => s is not null).OrderBy(s => s!.At).FirstOrDefault();
        if (breach is null)
        {
            return null;
        }
        string what = breach == ratio
            ? $"SLO breach: 5xx ratio {ratio!.Value!.Value.ToString("P1", CultureInfo.InvariantCulture)} over {ratioSlo.ToString("P1", CultureInfo.InvariantCulture)} at {TimeWindow.Utc(ratio.At)}"
            : $"SLO breach: P95 {(p95!.Value!.Value * 1000).ToString("0", CultureInfo.InvariantCulture)} ms over {(p95Slo * 1000).ToString("0", CultureInfo.InvariantCulture)} ms at {TimeWindow.Utc(p95.At)}";
        return new BaselineExclusion(new TimeWindow(breach.At - step, breach.At), what);
    }

    private static void Refuse(List<BaselineExclusion> refused, BaselineExclusion exclusion)
    {
        if (!refused.Contains(exclusion)) { refused.Add(exclusion); }
    }

    private static string Refusals(IReadOnlyList<BaselineExclusion> refused) =>
        refused.Count == 0 ? "" : "; refused: " + string.Join("; ", refused.Take(4).Select(r => $"{r.Why} ({r.Window})")) + (refused.Count > 4 ? $"; and {refused.Count - 4} more" : "");
}
