using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Verification;
using KfmRollback.Engine.Tests.Support;
using Xunit;

namespace KfmRollback.Engine.Tests.Verification;

/// <summary>One lab with a real Prometheus (/usr/bin/prometheus, 1 s scrapes) and steady traffic for the verdict tests; Argo's self-heal off, as it would put a hand-made deploy back.</summary>
public sealed class VerdictLab : EngineLab
{
    public VerdictLab() : base(new LabSetup { TrafficPerSecond = 20, Prometheus = true, ArgoSelfHeal = false }) { }

    /// <summary>Deploys <paramref name="build"/> and returns when the API serves it (the moment it starts serving, before the rollout ends).</summary>
    public async Task<DateTimeOffset> ServingAsync(string build)
    {
        await SetImageAsync(Host.Images.Get(build).Image);
        DateTime until = DateTime.UtcNow.AddSeconds(60);
        while (Host.KfmApi.CurrentBuild().entry?.Name != build || Host.KfmApi.CurrentBuild().readyPods < 2)
        {
            Assert.True(DateTime.UtcNow < until, $"the API did not start serving {build}");
            await Task.Delay(100);
        }
        return DateTimeOffset.UtcNow;
    }

    /// <summary>The lab's Prometheus with the verdict tests' windows; <paramref name="sameTimeOffset"/> is the baseline's same_time_offset.</summary>
    public EnvironmentConfig MetricsEnvironment(int minRequests = 40, string? sameTimeOffset = null) => Configure().Block("prometheus", $"""
        url: {Host.PrometheusUrl}
        baseline_window: 20s
        evaluation_window: 60s
        thresholds:
          min_requests: {minRequests}
          error_ratio_floor: 0.02
        baseline:
          min_window: 8s
          deploy_settle: 2s
          slo_step: 2s
          lookback: 10m
        """ + (sameTimeOffset is null ? "" : $"\n  same_time_offset: {sameTimeOffset}")).Environment();
}

/// <summary>
/// Checklist A's metrics against a real Prometheus scraping the stand-in API: the baseline refuses a window
/// with an incident in it, the 5xx verdict is sequential, and Mann-Whitney sees a shift P95 does not.
/// </summary>
public sealed class VerdictLabTests(VerdictLab lab) : IClassFixture<VerdictLab>
{
    private static CheckResult Check(IReadOnlyList<CheckResult> results, string name) => results.Single(r => r.Check == name);

    private static async Task<(CheckResult Result, DateTimeOffset At)> UntilDecided(EnvironmentConfig environment, DateTimeOffset incidentStart, BaselineHistory history, DateTimeOffset since)
    {
        DateTime until = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            DateTimeOffset now = DateTimeOffset.UtcNow;
            CheckResult result = Check(await MetricChecks.RunAsync(environment, incidentStart, now, history, since, CancellationToken.None), "A.error-ratio");
            if (result.Verdict != Verdict.Inconclusive || DateTime.UtcNow > until) { return (result, now); }
            await Task.Delay(1000);
        }
    }

    [Fact]
    public async Task ABaselineOverlappingAnEarlierIncidentIsRefusedAndTheSequentialVerdictDecidesEarly()
    {
        EnvironmentConfig environment = lab.MetricsEnvironment();
        DateTimeOffset goodSince = await lab.ServingAsync("good-1.5.1");
        await Task.Delay(TimeSpan.FromSeconds(22));   // the good window before the first incident

        // Incident 1: bad-5xx serves. The sequential test fails it once the minimum is in, not after a fixed window.
        DateTimeOffset firstIncident = await lab.ServingAsync("bad-5xx");
        var (failed, failedAt) = await UntilDecided(environment, firstIncident, BaselineHistory.None, firstIncident);
        Assert.True(failed.Verdict == Verdict.Fail, $"{failed.Verdict}: {failed.Summary}");
        double failedAfter = failed.Reading?.Requests ?? -1;
        // Never before min_requests (40); decided well inside the fixed 60 s window (1200 requests at 20/s). The bound
        // is loose because the requests counted are those when the poll ran, and a loaded machine polls late.
        Assert.InRange(failedAfter, 40, 600);
        await Task.Delay(TimeSpan.FromSeconds(4));

        // Rolled back: the good build serves again, and the incident is recorded until then.
        DateTimeOffset rolledBack = await lab.ServingAsync("good-1.5.1");
        var history = new BaselineHistory(new[] { new BaselineExclusion(new TimeWindow(firstIncident, rolledBack.AddSeconds(1)), "incident INC-VERDICT-1") });
        var (passed, passedAt) = await UntilDecided(environment, rolledBack, history, rolledBack);
        Assert.True(passed.Verdict == Verdict.Pass, $"{passed.Verdict}: {passed.Summary}");
        double passedAfter = passed.Reading?.Requests ?? -1;
        // At a 2 % limit a clean build passes after about 295 requests (each 5xx of the changeover adds ~70), never before min_requests.
        Assert.True(passedAfter >= 290, $"passed after {passedAfter} requests: {passed.Summary}");
        Assert.True(passedAt - rolledBack < environment.Prometheus.EvaluationWindow, $"passed after {passedAt - rolledBack}, not before the fixed window would have ended: {passed.Summary}");

        // Incident 2 starts 4 s after the rollback (as in the drill: thaw, then the next bad deploy): the 20 s before it
        // hold incident 1, and the 3 s after it are too short, so the good window before incident 1 is used.
        DateTimeOffset secondIncident = rolledBack.AddSeconds(4);
        IReadOnlyList<CheckResult> results = await MetricChecks.RunAsync(environment, secondIncident, DateTimeOffset.UtcNow, history, rolledBack, CancellationToken.None);
        CheckResult errors = Check(results, "A.error-ratio");
        Assert.Contains("refused: incident INC-VERDICT-1", errors.Evidence["baseline_reason"]);
        DateTimeOffset baselineTo = DateTimeOffset.Parse(errors.Evidence["baseline_to"], System.Globalization.CultureInfo.InvariantCulture);
        DateTimeOffset baselineFrom = DateTimeOffset.Parse(errors.Evidence["baseline_from"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(baselineTo <= firstIncident.AddSeconds(1) && baselineFrom >= goodSince.AddSeconds(-1), $"baseline {baselineFrom:O}..{baselineTo:O}, good from {goodSince:O}, incident at {firstIncident:O}");
        Assert.Equal("0", errors.Evidence["baseline_ratio"]);

        // Without the journal's record the incident is still no baseline: its 5xx breach the SLO.
        CheckResult unrecorded = Check(await MetricChecks.RunAsync(environment, secondIncident, DateTimeOffset.UtcNow, BaselineHistory.None, rolledBack, CancellationToken.None), "A.error-ratio");
        Assert.Contains("SLO breach: 5xx ratio", unrecorded.Evidence["baseline_reason"]);

        // With every earlier window ruled out there is no baseline: inconclusive with the reason, never a pass.
        var everything = new BaselineHistory(new[] { new BaselineExclusion(new TimeWindow(secondIncident.AddHours(-2), secondIncident), "incident INC-ALL") });
        IReadOnlyList<CheckResult> none = await MetricChecks.RunAsync(environment, secondIncident, DateTimeOffset.UtcNow, everything, rolledBack, CancellationToken.None);
        Assert.All(none, r =>
        {
            Assert.Equal(Verdict.Inconclusive, r.Verdict);
            Assert.Contains("no clean window", r.Evidence["baseline_reason"]);
        });
    }

    [Fact]
    public async Task A_round_that_may_wait_for_its_evidence_passes_once_Prometheus_has_counted_what_the_test_needs()
    {
        EnvironmentConfig environment = lab.MetricsEnvironment();
        await lab.ServingAsync("good-1.5.1");
        await Task.Delay(TimeSpan.FromSeconds(22));   // a clean baseline window of the good build
        DateTimeOffset converged = DateTimeOffset.UtcNow;

        // Three seconds in (about 60 of the hundreds of requests the sequential test needs at 20/s): too far off for
        // a two-second wait, so the round judges once, at its start, and stays inconclusive.
        await Task.Delay(TimeSpan.FromSeconds(3));
        DateTimeOffset early = DateTimeOffset.UtcNow;
        CheckResult far = Check(await MetricChecks.RunAsync(environment, converged, early, BaselineHistory.None, converged, CancellationToken.None, TimeSpan.FromSeconds(2)), "A.error-ratio");
        Assert.True(far.Verdict == Verdict.Inconclusive, $"{far.Verdict}: {far.Summary}");
        Assert.Equal(MetricChecks.Window(environment.Prometheus, early, converged), far.Reading?.Window);

        // Four seconds before the rest is due at the rate so far, it is due within an eight-second wait: the round asks
        // Prometheus until the count is there and judges then, over the longer window, not inconclusive at its start.
        double perSecond = far.Reading!.Requests!.Value / far.Reading.Window!.Value.TotalSeconds;
        TimeSpan due = TimeSpan.FromSeconds(far.Reading.ErrorTest!.RequestsToPass / perSecond) - TimeSpan.FromSeconds(4);
        await Task.Delay(converged + due - DateTimeOffset.UtcNow);
        DateTimeOffset late = DateTimeOffset.UtcNow;
        CheckResult atStart = Check(await MetricChecks.RunAsync(environment, converged, late, BaselineHistory.None, converged, CancellationToken.None), "A.error-ratio");
        Assert.True(atStart.Verdict == Verdict.Inconclusive, $"without the wait the round judges at its start: {atStart.Verdict}: {atStart.Summary}");
        CheckResult waited = Check(await MetricChecks.RunAsync(environment, converged, late, BaselineHistory.None, converged, CancellationToken.None, TimeSpan.FromSeconds(8)), "A.error-ratio");
        Assert.True(waited.Verdict == Verdict.Pass, $"{waited.Verdict}: {waited.Summary}");
        Assert.True(waited.Reading?.Window > MetricChecks.Window(environment.Prometheus, late, converged), $"judged over {waited.Reading?.Window}, not past the round's start");
        Assert.True(waited.Reading?.Requests >= waited.Reading?.ErrorTest?.RequestsToPass, $"passed on {waited.Reading?.Requests} requests: {waited.Summary}");
    }

    [Fact]
    public async Task TooLittleTrafficIsInconclusiveAndAShiftWithTheSameP95FailsMannWhitney()
    {
        EnvironmentConfig environment = lab.MetricsEnvironment();
        DateTimeOffset tailSince = await lab.ServingAsync("good-tail");
        await Task.Delay(TimeSpan.FromSeconds(24));
        DateTimeOffset incident = await lab.ServingAsync("bad-shift");
        var history = new BaselineHistory(new[] { new BaselineExclusion(new TimeWindow(tailSince.AddSeconds(-30), tailSince.AddSeconds(1)), "deploy of good-tail") });

        // Five seconds of traffic (~100 requests) against a minimum of 1000: every metric check is inconclusive, none passes.
        await Task.Delay(TimeSpan.FromSeconds(6));
        IReadOnlyList<CheckResult> thin = await MetricChecks.RunAsync(lab.MetricsEnvironment(minRequests: 1000), incident, DateTimeOffset.UtcNow, history, DateTimeOffset.UtcNow.AddSeconds(-5), CancellationToken.None);
        Assert.All(thin, r => Assert.True(r.Verdict == Verdict.Inconclusive && r.Summary.Contains("since the rollout converged (need 1000)", StringComparison.Ordinal), $"{r.Check}: {r.Verdict}: {r.Summary}"));

        await Task.Delay(TimeSpan.FromSeconds(8));
        IReadOnlyList<CheckResult> results = await MetricChecks.RunAsync(environment, incident, DateTimeOffset.UtcNow, history, incident.AddSeconds(2), CancellationToken.None);
        CheckResult p95 = Check(results, "A.p95-latency"), distribution = Check(results, "A.latency-distribution");
        Assert.True(p95.Verdict == Verdict.Pass, $"P95: {p95.Summary}");
        double now95 = double.Parse(p95.Evidence["p95_ms"], System.Globalization.CultureInfo.InvariantCulture), before95 = double.Parse(p95.Evidence["baseline_p95_ms"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Math.Abs(now95 - before95) <= 0.1 * before95, $"P95 {now95} ms against {before95} ms: the builds should share it");
        Assert.True(distribution.Verdict == Verdict.Fail, $"{distribution.Verdict}: {distribution.Summary}");
        foreach (string key in new[] { "u", "p", "shift_ms", "ci_low_ms", "mean_ratio", "n_baseline", "n_current" }) { Assert.True(distribution.Evidence.ContainsKey(key), key); }
        Assert.True(double.Parse(distribution.Evidence["n_current"], System.Globalization.CultureInfo.InvariantCulture) >= 50);

        // The healthy tail build against itself: no shift.
        DateTimeOffset back = await lab.ServingAsync("good-tail");
        await Task.Delay(TimeSpan.FromSeconds(10));
        var both = new BaselineHistory(history.Known.Append(new BaselineExclusion(new TimeWindow(incident, back.AddSeconds(1)), "incident bad-shift")).ToList());
        CheckResult same = Check(await MetricChecks.RunAsync(environment, incident, DateTimeOffset.UtcNow, both, back.AddSeconds(1), CancellationToken.None), "A.latency-distribution");
        Assert.True(same.Verdict == Verdict.Pass, $"{same.Verdict}: {same.Summary}");
    }

    [Fact]
    public async Task TheSameTimeEarlierIsTheBaselineWhenItIsCleanAndIsRefusedWhenNothingWasRecorded()
    {
        // A good build long enough for a clean 20 s window, found as the finder finds it (under a loaded machine a
        // missed scrape can spoil one window; the next one serves). The same-time candidate 15 s later is exactly it.
        await lab.ServingAsync("good-1.5.1");
        await Task.Delay(TimeSpan.FromSeconds(25));
        DateTime until = DateTime.UtcNow.AddSeconds(60);
        DateTimeOffset clean;
        while (true)
        {
            clean = DateTimeOffset.UtcNow;
            CheckResult before = Check(await MetricChecks.RunAsync(lab.MetricsEnvironment(), clean, clean, BaselineHistory.None, null, CancellationToken.None), "A.error-ratio");
            if (before.Evidence["baseline_reason"].StartsWith("the window just before the incident", StringComparison.Ordinal)) { break; }
            Assert.True(DateTime.UtcNow < until, "no clean window just before: " + before.Evidence["baseline_reason"]);
            await Task.Delay(TimeSpan.FromSeconds(5));
        }
        await Task.Delay(TimeSpan.FromSeconds(15));
        DateTimeOffset incident = clean.AddSeconds(15);
        CheckResult offset = Check(await MetricChecks.RunAsync(lab.MetricsEnvironment(sameTimeOffset: "15s"), incident, incident, BaselineHistory.None, null, CancellationToken.None), "A.error-ratio");
        Assert.True(offset.Evidence["baseline_reason"].StartsWith("same time 15s earlier", StringComparison.Ordinal), offset.Evidence["baseline_reason"]);
        Assert.Equal(TimeWindow.Utc(clean), offset.Evidence["baseline_to"]);

        // A week ago this lab did not exist: no traffic recorded, so the latest clean window serves instead.
        CheckResult lastWeek = Check(await MetricChecks.RunAsync(lab.MetricsEnvironment(sameTimeOffset: "7d"), incident, incident, BaselineHistory.None, null, CancellationToken.None), "A.error-ratio");
        Assert.DoesNotContain("same time", lastWeek.Evidence["baseline_reason"]);
        Assert.Contains("refused: no traffic recorded", lastWeek.Evidence["baseline_reason"]);
    }
}
