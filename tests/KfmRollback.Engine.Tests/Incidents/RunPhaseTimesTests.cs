using System.Text.Json.Nodes;
using KfmRollback.Engine.Aftermath;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Incidents;
using KfmRollback.Engine.Receipts;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Rollback.Runs;
using KfmRollback.Engine.Safety;
using KfmRollback.Engine.Tests.Support;

namespace KfmRollback.Engine.Tests.Incidents;

/// <summary>Issue 21 item 1: a run's phases and time to safe, read from what the journal recorded.</summary>
public sealed class RunPhaseTimesTests : IDisposable
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 7, 3, 0, 0, TimeSpan.Zero);
    private const string Run = "INC-21/prod/cluster#1";
    private readonly TempDirectory _dir = new();
    private readonly ManualClock _clock = new(T0);

    public void Dispose() => _dir.Dispose();

    private sealed class AnyText : ITextSafety
    {
        public void EnsurePolicySafe(string? text, string field) { }
    }

    /// <summary>An incident that started 60 s before it was opened, froze, planned, applied, converged and was verified.</summary>
    private IncidentJournal Journal(string verifiedOutcome = "Passed", bool freeze = true)
    {
        var journal = new IncidentJournal(_dir.File("journal/incidents.ndjson"), new AnyText(), _clock);
        journal.Open(new IncidentRequest { IncidentId = "INC-21", Commander = "alice", Reason = "5xx after deploy", Environment = "prod", StartedAt = T0.AddSeconds(-60) }, "ops");
        if (freeze)
        {
            journal.AppendTimeline("INC-21", "OPS", "Freeze requested for prod: argocd Application argocd/kfm-api, killswitch kfm-api", "ops", T0.AddSeconds(3));
            journal.AppendTimeline("INC-21", "OPS", "Froze argocd Application argocd/kfm-api (prod)", "ops", T0.AddSeconds(5));
            journal.AppendTimeline("INC-21", "OPS", "Froze killswitch kfm-api (prod)", "ops", T0.AddSeconds(6));
        }
        void Record(string phase, DateTimeOffset at, DateTimeOffset? startedAt = null, DateTimeOffset? completedAt = null, string? outcome = null) =>
            journal.RecordRun("INC-21", new RunRecord
            {
                RunId = Run, Attempt = "a1", Environment = "prod", Method = "Cluster", Phase = phase, At = at,
                StartedAt = startedAt, CompletedAt = completedAt, Outcome = outcome,
            });
        Record(RunPhases.Planned, T0.AddSeconds(9), startedAt: T0.AddSeconds(8));
        Record(RunPhases.Applying, T0.AddSeconds(10));
        Record(RunPhases.Applied, T0.AddSeconds(11), startedAt: T0.AddSeconds(8), completedAt: T0.AddSeconds(11), outcome: "Succeeded");
        Record(RunPhases.Awaited, T0.AddSeconds(31), completedAt: T0.AddSeconds(30), outcome: "Succeeded");
        Record(RunPhases.Verified, T0.AddSeconds(40), startedAt: T0.AddSeconds(31), outcome: verifiedOutcome);
        return journal;
    }

    [Fact]
    public void Every_phase_has_its_start_and_end_from_the_journal_and_the_time_to_safe_is_verified_minus_start_and_apply()
    {
        RunPhaseTimes times = Assert.Single(RunPhaseTimes.Of(Journal().Get("INC-21")));

        Assert.Equal(SafetyPhases.All, times.Phases.Select(p => p.Phase));
        void Span(string phase, int from, int to)
        {
            RunPhase p = times.Phase(phase)!;
            Assert.Equal(T0.AddSeconds(from), p.Start);
            Assert.Equal(T0.AddSeconds(to), p.End);
            Assert.Null(p.Note);
        }
        Span(SafetyPhases.Detect, -60, 0);
        Span(SafetyPhases.Freeze, 3, 6);
        Span(SafetyPhases.Decide, 8, 9);
        Span(SafetyPhases.Apply, 10, 11);
        Span(SafetyPhases.Converge, 11, 30);
        Span(SafetyPhases.Verified, 31, 40);
        Assert.Equal(TimeSpan.FromSeconds(100), times.TimeToSafe);
        Assert.Equal(TimeSpan.FromSeconds(30), times.TimeToSafeFromApply);
        Assert.Equal("safe after 1m 40.0s from incident start (30.0s from apply)", times.TimeToSafeText);
        Assert.All(times.Phases, p => Assert.Equal($"{Run}: {times.TimeToSafeText}", p.TimeToSafeText));
    }

    [Fact]
    public void A_failed_verification_is_not_safe_and_says_so()
    {
        RunPhaseTimes times = RunPhaseTimes.Latest(Journal(verifiedOutcome: "Failed").Get("INC-21"), "prod")!;

        Assert.Null(times.TimeToSafe);
        Assert.Null(times.TimeToSafeFromApply);
        Assert.Equal("verification did not pass: not safe", times.TimeToSafeText);
        Assert.Null(RunPhaseTimes.Latest(Journal(verifiedOutcome: "Failed").Get("INC-21"), "staging"));
    }

    [Fact]
    public void The_freeze_runs_from_the_request_that_led_to_the_first_freeze()
    {
        IncidentJournal journal = Journal(freeze: false);
        // A request that froze nothing new (already held) long before, then the one that froze.
        journal.AppendTimeline("INC-21", "OPS", "Freeze requested for prod: argocd Application argocd/kfm-api", "ops", T0.AddSeconds(1));
        journal.AppendTimeline("INC-21", "OPS", "Freeze requested for prod: argocd Application argocd/kfm-api", "ops", T0.AddSeconds(4));
        journal.AppendTimeline("INC-21", "OPS", "Froze argocd Application argocd/kfm-api (prod)", "ops", T0.AddSeconds(5));
        RunPhase freeze = RunPhaseTimes.Latest(journal.Get("INC-21"), "prod")!.Phase(SafetyPhases.Freeze)!;
        Assert.Equal((T0.AddSeconds(4), T0.AddSeconds(5)), (freeze.Start!.Value, freeze.End!.Value));
    }

    [Fact]
    public void In_a_journal_written_before_freeze_requests_were_recorded_the_freeze_runs_from_the_first_freeze()
    {
        IncidentJournal older = Journal(freeze: false);
        older.AppendTimeline("INC-21", "OPS", "Froze argocd Application argocd/kfm-api (prod)", "ops", T0.AddSeconds(5));
        RunPhase old = RunPhaseTimes.Latest(older.Get("INC-21"), "prod")!.Phase(SafetyPhases.Freeze)!;
        Assert.Equal((T0.AddSeconds(5), T0.AddSeconds(5)), (old.Start!.Value, old.End!.Value));
    }

    [Fact]
    public void A_freeze_after_the_change_is_not_the_runs_freeze()
    {
        IncidentJournal journal = Journal(freeze: false);
        journal.AppendTimeline("INC-21", "OPS", "Froze argocd Application argocd/kfm-api (prod)", "ops", T0.AddSeconds(50));

        RunPhase freeze = RunPhaseTimes.Latest(journal.Get("INC-21"), "prod")!.Phase(SafetyPhases.Freeze)!;

        Assert.Null(freeze.Start);
        Assert.Equal("no freeze recorded before the change", freeze.Note);
    }

    [Fact]
    public void Test_KfmRollback_records_when_verification_started_on_the_run()
    {
        IncidentJournal journal = Journal();
        _clock.UtcNow = T0.AddSeconds(90);
        var rollback = new RollbackResult { Environment = "prod", Method = RollbackMethod.Cluster, Outcome = RollbackOutcome.Succeeded, StartedAt = T0.AddSeconds(8), IncidentId = "INC-21" };

        Assert.True(new RunJournal(journal, clock: _clock).RecordVerified(rollback, passed: true, "Verified A pass", "ops", startedAt: T0.AddSeconds(70)));

        RunPhase verified = RunPhaseTimes.Latest(journal.Get("INC-21"), "prod")!.Phase(SafetyPhases.Verified)!;
        Assert.Equal(T0.AddSeconds(70), verified.Start);
        Assert.Equal(T0.AddSeconds(90), verified.End);
    }

    [Fact]
    public void The_receipt_carries_the_phases_and_time_to_safe_in_its_schema_checked_extension()
    {
        RunPhaseTimes times = RunPhaseTimes.Latest(Journal().Get("INC-21"), "prod")!;
        var input = new ReceiptInput
        {
            IncidentId = "INC-21", RequestedBy = "alice", ApprovedBy = "bob", StartedAt = T0, CompletedAt = T0.AddSeconds(40), Environment = "prod",
            Reason = "5xx after deploy", CurrentRef = "sha256:" + new string('1', 64), RollbackTargetRef = "sha256:" + new string('2', 64),
            ChangedSurfaces = new[] { "api" }, Health = "pass", PolicyInvariants = "pass", ContractSmoke = "pass", Phases = times,
        };

        JsonObject json = ReceiptJson.ToJsonObject(new ReceiptFactory().Create(input));

        JsonNode phases = json["kfm_integrity"]!["phases"]!;
        Assert.Equal(Run, (string?)phases["run"]);
        Assert.Equal(100_000, (long)phases["time_to_safe_ms"]!);
        Assert.Equal(30_000, (long)phases["time_to_safe_from_apply_ms"]!);
        JsonArray spans = phases["spans"]!.AsArray();
        Assert.Equal(SafetyPhases.All, spans.Select(s => (string?)s!["phase"]));
        Assert.Equal("2026-12-07T02:59:00.000Z", (string?)spans[0]!["start"]);
        // The runbook's own fields are unchanged.
        Assert.Equal("2026-12-07T03:00:00Z", (string?)json["started_at"]);
        // The schema refuses a phase it does not know.
        phases["spans"]![0]!["phase"] = "lunch";
        Assert.Equal("ReceiptSchemaInvalid", Assert.Throws<KfmException>(() => ReceiptSchema.Validate(json)).ErrorId);
    }

    [Fact]
    public void The_report_has_a_phase_table_and_a_phase_chart_next_to_the_plots()
    {
        Incident incident = Journal().Get("INC-21");
        var plan = new FollowUpPlan { IncidentId = "INC-21", Environment = "prod", Title = "t", Items = Array.Empty<string>(), GovernanceReview = false, GovernanceReasons = Array.Empty<string>(), Body = "" };

        IncidentReportFiles files = IncidentReport.Write(incident, Array.Empty<EvidenceBundle>(), null, plan, Redactor.Default, _dir.File("report"));

        EvidencePlot chart = Assert.Single(files.Plots);
        Assert.StartsWith("phases-", chart.Name);
        byte[] png = File.ReadAllBytes(chart.PngPath);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        Assert.Contains("<svg", File.ReadAllText(chart.SvgPath));
        Assert.Contains("## Phases and time to safe", File.ReadAllText(files.MarkdownPath));
        string html = File.ReadAllText(files.HtmlPath);
        Assert.Contains("<tr><td>INC-21/prod/cluster#1</td><td>converge</td><td>2026-12-07 03:00:11.000</td><td>2026-12-07 03:00:30.000</td><td>19.0s</td><td></td></tr>", html);
        Assert.Contains("<p>INC-21/prod/cluster#1: safe after 1m 40.0s from incident start (30.0s from apply).</p>", html);
        Assert.Contains("No metric samples were captured", html);
        Assert.Contains($"data:image/png;base64,{Convert.ToBase64String(png)}", html);
    }
}
