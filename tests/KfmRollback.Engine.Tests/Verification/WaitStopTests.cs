using KfmRollback.Engine.Adapters.Http;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Tests.Configuration;
using KfmRollback.Engine.Verification;

namespace KfmRollback.Engine.Tests.Verification;

/// <summary>
/// -Wait stops once waiting cannot change anything, and never on a failing or still-open check that
/// waiting can fix; every check that did not pass says what would change it.
/// </summary>
public sealed class WaitStopTests
{
    private static CheckResult Check(string name, Verdict verdict, bool settled = false) => new()
    {
        Environment = "prod", Section = CheckSection.Observability, Check = name, Verdict = verdict, Summary = "s", Settled = settled,
    };

    private static VerificationSummary Summary(params CheckResult[] results) => new() { Environment = "prod", Results = results };

    /// <summary>The minimal environment with an authenticated caller and restricted ids read from variables named per test.</summary>
    private static EnvironmentConfig Environment_(string restrictedVariable) => ConfigTestSupport.Load(ConfigTestSupport.Minimal
        .Replace("          anon:\n            anonymous: true\n", "          public-user:\n            token_env: KFM_TEST_WAIT_TOKEN\n", StringComparison.Ordinal)
        .Replace("          - path: /api/v1/datasets",
            $"          - path: /api/v1/datasets/{{id}}\n        restricted_ids_env: {restrictedVariable}", StringComparison.Ordinal))
        .GetEnvironment("prod");

    [Fact]
    public void Stops_when_all_pass_or_the_rest_is_not_configured()
    {
        Assert.True(VerificationRunner.NothingToWaitFor(Summary(Check("A.error-ratio", Verdict.Pass))));
        Assert.True(VerificationRunner.NothingToWaitFor(Summary(Check("A.error-ratio", Verdict.Pass), Check("D.traces", Verdict.Inconclusive, settled: true))));
    }

    [Fact]
    public void Keeps_waiting_on_an_open_or_failing_check_and_on_nothing_at_all()
    {
        Assert.False(VerificationRunner.NothingToWaitFor(Summary(Check("A.error-ratio", Verdict.Inconclusive))));
        Assert.False(VerificationRunner.NothingToWaitFor(Summary(Check("A.error-ratio", Verdict.Fail), Check("D.traces", Verdict.Inconclusive, settled: true))));
        Assert.False(VerificationRunner.NothingToWaitFor(Summary()));
    }

    [Fact]
    public void No_restricted_ids_is_settled_and_names_the_variable_to_set()
    {
        const string Variable = "KFM_TEST_WAIT_RESTRICTED_UNSET";
        Environment.SetEnvironmentVariable(Variable, null);
        var leak = Check("B.existence-leak/api/v1/datasets/{id}", Verdict.Inconclusive) with { Section = CheckSection.PolicyInvariants };

        CheckResult decided = Assert.Single(WaitingRules.Apply(Environment_(Variable), new[] { leak }));

        Assert.True(decided.Settled, "no restricted id can arrive by waiting");
        Assert.Contains("$" + Variable, decided.NextStep, StringComparison.Ordinal);
        Assert.True(VerificationRunner.NothingToWaitFor(Summary(Check("A.error-ratio", Verdict.Pass), decided)));
    }

    [Fact]
    public void With_restricted_ids_an_inconclusive_leak_check_is_still_waited_for()
    {
        const string Variable = "KFM_TEST_WAIT_RESTRICTED_SET";
        Environment.SetEnvironmentVariable(Variable, "some_restricted_dataset");
        try
        {
            var leak = Check("B.existence-leak/api/v1/datasets/{id}", Verdict.Inconclusive) with { Section = CheckSection.PolicyInvariants };
            CheckResult decided = Assert.Single(WaitingRules.Apply(Environment_(Variable), new[] { leak }));
            Assert.False(decided.Settled);
            Assert.False(string.IsNullOrWhiteSpace(decided.NextStep));
        }
        finally
        {
            Environment.SetEnvironmentVariable(Variable, null);
        }
    }

    [Theory]
    [InlineData("A.error-ratio", Verdict.Fail, "Enable-KfmFailClosed")]
    [InlineData("A.error-ratio", Verdict.Inconclusive, "-Timeout")]
    [InlineData("A.deployment-stable", Verdict.Inconclusive, "Wait-KfmRollback")]
    [InlineData("B.safety-fields", Verdict.Fail, "fail closed now")]
    [InlineData("C.no-breaking-change", Verdict.Fail, "-ToRevision")]
    [InlineData("D.traces", Verdict.Inconclusive, "observability.traces")]
    public void Every_check_that_did_not_pass_gets_the_step_that_would_change_it(string check, Verdict verdict, string step)
    {
        CheckResult decided = Assert.Single(WaitingRules.Apply(Environment_("KFM_TEST_WAIT_RESTRICTED_UNSET"), new[] { Check(check, verdict) }));
        Assert.False(decided.Settled, "waiting can change these");
        Assert.Contains(step, decided.NextStep, StringComparison.Ordinal);
    }

    [Fact]
    public void A_check_settled_at_its_source_keeps_its_own_next_step_and_a_pass_gets_none()
    {
        var notConfigured = Check("C.no-breaking-change", Verdict.Inconclusive, settled: true) with { NextStep = "record a known-good build's contract" };
        IReadOnlyList<CheckResult> decided = WaitingRules.Apply(Environment_("KFM_TEST_WAIT_RESTRICTED_UNSET"), new[] { notConfigured, Check("A.error-ratio", Verdict.Pass) });
        Assert.Equal("record a known-good build's contract", decided[0].NextStep);
        Assert.True(decided[0].Settled);
        Assert.Null(decided[1].NextStep);
    }

    [Fact]
    public void The_progress_line_names_the_checks_not_passing_and_which_waiting_cannot_fix()
    {
        string line = VerificationRunner.NotPassing(Summary(
            Check("A.error-ratio", Verdict.Fail), Check("A.p95-latency", Verdict.Pass), Check("D.traces", Verdict.Inconclusive, settled: true)));
        Assert.Equal("A.error-ratio (fail), D.traces (inconclusive, waiting cannot fix)", line);
        string many = VerificationRunner.NotPassing(Summary(Enumerable.Range(1, 6).Select(i => Check($"C.smoke{i}", Verdict.Fail)).ToArray()), max: 4);
        Assert.EndsWith("and 2 more", many, StringComparison.Ordinal);
    }

    /// <summary>An open 5xx check with <paramref name="requests"/> counted and <paramref name="toPass"/> needed (typed, as MetricChecks reads them).</summary>
    private static CheckResult Counting(double requests, long toPass) => Check("A.error-ratio", Verdict.Inconclusive) with
    {
        Section = CheckSection.Health,
        Reading = new CheckReading { Requests = requests, ErrorTest = new SequentialTest.Outcome(Verdict.Inconclusive, 0, -2.8, 2.8, 0.01, 0.02, toPass) },
    };

    [Fact]
    public void The_schedule_and_the_restart_watch_read_the_typed_figures_not_the_evidence_text()
    {
        var interval = TimeSpan.FromSeconds(5);
        // Evidence reworded for people (thousands separators, arrows, words): the typed readings decide, as before.
        var reworded = new Dictionary<string, string> { ["requests"] = "1,000 requests", ["sprt_requests_to_pass"] = "about 1.3k", ["restarts"] = "3 → 5 (2 containers)" };
        CheckResult errors = Counting(100, 130) with { Evidence = reworded };
        Assert.Equal(TimeSpan.FromSeconds(3) - WaitingRules.EvidenceLead, WaitingRules.NextRound(Summary(errors), TimeSpan.FromSeconds(10), interval));
        CheckResult stable = Check("A.deployment-stable", Verdict.Pass) with { Section = CheckSection.Health, Evidence = reworded, Reading = new CheckReading { Restarts = 7 } };
        Assert.Equal(7, HealthChecks.RestartsSeen(Summary(stable, errors)));
        // Text alone, without the typed readings, schedules nothing and watches nothing: it is never parsed back.
        var textOnly = new Dictionary<string, string> { ["requests"] = "100", ["sprt_requests_to_pass"] = "130", ["restarts"] = "0 -> 7" };
        Assert.Equal(2 * WaitingRules.ShortestRound, WaitingRules.NextRound(Summary(errors with { Evidence = textOnly, Reading = null }), TimeSpan.FromSeconds(10), interval));
        Assert.Null(HealthChecks.RestartsSeen(Summary(stable with { Evidence = textOnly, Reading = null })));
    }

    [Fact]
    public void The_next_round_comes_when_the_sequential_test_should_have_its_requests()
    {
        var interval = TimeSpan.FromSeconds(5);
        // 100 requests in the 10 s since convergence, 130 needed: 30 more at 10/s is 3 s away, and the round
        // starts the lead before it, so its other sections are done when its metrics have the requests.
        Assert.Equal(TimeSpan.FromSeconds(2), WaitingRules.NextRound(Summary(Counting(100, 130)), TimeSpan.FromSeconds(10), interval));
        // Never later than the interval, never sooner than a scrape can bring anything new.
        Assert.Equal(interval, WaitingRules.NextRound(Summary(Counting(10, 290)), TimeSpan.FromSeconds(10), interval));
        Assert.Equal(WaitingRules.ShortestRound, WaitingRules.NextRound(Summary(Counting(289, 290)), TimeSpan.FromSeconds(10), interval));
    }

    [Fact]
    public void The_rate_is_the_one_counted_between_the_last_two_rounds_when_there_are_two()
    {
        var interval = TimeSpan.FromSeconds(5);
        // 100 at 10 s, then 160 at 12 s: 30/s lately (13.3/s on average), 90 more needed: 3 s, not 6.75 (less the lead).
        var previous = (Summary(Counting(100, 250)), TimeSpan.FromSeconds(10));
        Assert.Equal(TimeSpan.FromSeconds(2), WaitingRules.NextRound(Summary(Counting(160, 250)), TimeSpan.FromSeconds(12), interval, previous));
        // A previous round with no count (fewer than min_requests) leaves the average since the convergence: 20/s, 50 more.
        var uncounted = (Summary(Check("A.error-ratio", Verdict.Inconclusive)), TimeSpan.FromSeconds(2));
        Assert.Equal(TimeSpan.FromSeconds(1.5), WaitingRules.NextRound(Summary(Counting(80, 130)), TimeSpan.FromSeconds(4), interval, uncounted));
    }

    [Fact]
    public void Without_a_rate_yet_the_next_round_is_two_scrapes_away_and_before_convergence_the_interval()
    {
        var interval = TimeSpan.FromSeconds(5);
        TimeSpan twoScrapes = 2 * WaitingRules.ShortestRound;
        // Converged this very round, no requests counted yet, or fewer than min_requests (no count in the evidence).
        Assert.Equal(twoScrapes, WaitingRules.NextRound(Summary(Counting(100, 130)), TimeSpan.Zero, interval));
        Assert.Equal(twoScrapes, WaitingRules.NextRound(Summary(Counting(0, 290)), TimeSpan.FromSeconds(4), interval));
        Assert.Equal(twoScrapes, WaitingRules.NextRound(Summary(Check("A.error-ratio", Verdict.Inconclusive)), TimeSpan.FromSeconds(4), interval));
        // Not converged yet: nothing is counted, the rollout is what is waited for.
        Assert.Equal(interval, WaitingRules.NextRound(Summary(Counting(100, 130)), null, interval));
        // A decided 5xx test leaves the other checks to the interval.
        Assert.Equal(interval, WaitingRules.NextRound(Summary(Counting(100, 130) with { Verdict = Verdict.Pass }), TimeSpan.FromSeconds(10), interval));
    }

    [Fact]
    public void A_count_taken_after_the_rounds_start_is_read_over_its_own_window()
    {
        var interval = TimeSpan.FromSeconds(5);
        // The round began 10 s after the convergence but its metrics waited and counted 110 over 11 s: 10/s, 40
        // more needed is 4 s after the count, which ended 1 s after the round's start: 5 s, less the lead.
        CheckResult waited = Counting(110, 150) with { Reading = Counting(110, 150).Reading! with { Window = TimeSpan.FromSeconds(11) } };
        Assert.Equal(TimeSpan.FromSeconds(4), WaitingRules.NextRound(Summary(waited), TimeSpan.FromSeconds(10), interval));
        // The rate between two rounds runs between the ends of their counts, not their starts: 60 in 2 s is 30/s.
        CheckResult earlier = Counting(50, 150) with { Reading = Counting(50, 150).Reading! with { Window = TimeSpan.FromSeconds(9) } };
        Assert.Equal(TimeSpan.FromSeconds(1) + TimeSpan.FromSeconds(40.0 / 30) - WaitingRules.EvidenceLead,
            WaitingRules.NextRound(Summary(waited), TimeSpan.FromSeconds(10), interval, (Summary(earlier), TimeSpan.FromSeconds(8))));
    }
}
