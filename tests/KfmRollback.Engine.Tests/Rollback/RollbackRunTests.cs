using KfmRollback.Engine.Adapters.Kubernetes;
using k8s;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Incidents;
using KfmRollback.Engine.Receipts;
using KfmRollback.Engine.Refs;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Rollback.Runs;
using KfmRollback.Engine.Tests.Configuration;
using KfmRollback.Engine.Tests.Support;

namespace KfmRollback.Engine.Tests.Rollback;

/// <summary>
/// The engine's run records with an in-memory mechanism (what the target system does does not
/// matter here; what the engine records, resumes and refuses does): a rerun never sends a change
/// twice, whatever point the earlier attempt stopped at.
/// </summary>
public sealed class RollbackRunTests : IDisposable
{
    private const string Bad = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    private const string Good = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    private const string Older = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    private readonly TempDirectory _dir = new();
    private readonly ManualClock _clock = new(new DateTimeOffset(2026, 7, 4, 14, 0, 0, TimeSpan.Zero));
    private readonly EnvironmentConfig _environment = ConfigTestSupport.Load(ConfigTestSupport.Minimal).GetEnvironment("prod");
    private readonly FakeMechanism _mechanism = new();
    private readonly IncidentJournal _journal;

    public RollbackRunTests()
    {
        _journal = new IncidentJournal(_dir.File("journal/incidents.ndjson"), new PolicySafeText(), _clock);
        _journal.Open(new IncidentRequest { IncidentId = "INC-1", Commander = "alice", Reason = "5xx after deploy" }, "alice");
    }

    private RollbackEngine Engine(IncidentJournal? journal = null)
    {
        var runs = new RunJournal(journal ?? _journal, new LastKnownGoodAuthority(journal ?? _journal, _ => VerifiedReceiptSet.None), _clock);
        // The cluster client only carries the quarantine annotation here: nothing listens, so marking is best effort and says so.
        var unreachable = new Kubernetes(new KubernetesClientConfiguration { Host = "http://127.0.0.1:9" });
        return new RollbackEngine(new RollbackMechanisms((_, _) => _mechanism, _ => unreachable), _clock, _ => runs);
    }

    private RollbackRequest Request(string incident = "INC-1", RollbackTarget? target = null, bool wait = true) => new()
    {
        Environment = _environment,
        Method = RollbackMethod.Cluster,
        IncidentId = incident,
        Actor = "job@automation",
        Target = target ?? RollbackTarget.Previous,
        Wait = wait,
    };

    private static async Task<RollbackResult> Run(RollbackEngine engine, RollbackRequest request, RollbackReporter? reporter = null, CancellationToken cancellationToken = default)
    {
        reporter ??= new RollbackReporter();
        MechanismPlan plan = await engine.PlanAsync(request, reporter, cancellationToken);
        return await engine.RunAsync(request, plan, reporter, cancellationToken);
    }

    private IncidentRun RunOf(string incident = "INC-1") => Assert.Single(_journal.Get(incident).Runs);

    [Fact]
    public async Task A_rerun_of_a_finished_run_sends_nothing_and_says_what_was_done_when_and_by_whom()
    {
        RollbackResult first = await Run(Engine(), Request());
        Assert.Equal(RollbackOutcome.Succeeded, first.Outcome);
        Assert.Equal(Good, _mechanism.Current);

        // The fake's "previous" is now the bad build, exactly kubectl's undo hazard: the journal must stop it.
        _mechanism.Previous = Bad;
        RollbackResult again = await Run(Engine(), Request());

        Assert.Equal(RollbackOutcome.NoOp, again.Outcome);
        Assert.Equal(1, _mechanism.Applies);
        Assert.Equal(Good, _mechanism.Current);
        Assert.Equal($"already rolled back from {Bad} to {Good} at 2026-07-04 14:00:00 UTC by job@automation (incident INC-1, run INC-1/prod/cluster#1); nothing was sent again", again.Detail);
        Assert.Equal(new[] { RunPhases.Planned, RunPhases.Applying, RunPhases.Applied, RunPhases.Awaited }, RunOf().Records.Select(r => r.Phase));
    }

    [Fact]
    public async Task Verification_of_an_applied_run_finishes_it_so_a_rerun_changes_nothing()
    {
        RollbackResult applied = await Run(Engine(), Request(wait: false));
        var runs = new RunJournal(_journal, new LastKnownGoodAuthority(_journal, _ => VerifiedReceiptSet.None), _clock);
        Assert.True(runs.RecordVerified(applied, passed: true, "Verified: A pass, B pass, C pass, D pass", "bob"));
        Assert.Equal(RunPhases.Verified, RunOf().Phase);

        RollbackResult rerun = await Run(Engine(), Request(wait: true));
        Assert.Equal(RollbackOutcome.NoOp, rerun.Outcome);
        Assert.Equal(0, _mechanism.Awaits);
        Assert.False(runs.RecordVerified(applied with { IncidentId = "INC-404" }, true, "x", "bob"));
    }

    [Fact]
    public async Task A_finished_run_whose_target_system_moved_since_starts_the_next_run_never_towards_the_quarantined_build()
    {
        await Run(Engine(), Request());
        _mechanism.Current = Older; // someone deployed something else after the rollback (or a thaw redeployed)
        _mechanism.Previous = Bad;  // and kubectl's "previous" is the build rolled away from

        RollbackResult next = await Run(Engine(), Request());

        Assert.Equal(RollbackOutcome.Succeeded, next.Outcome);
        Assert.Equal(Good, next.RollbackTargetRef);
        Assert.Equal(Good, _mechanism.Current);
        Assert.Equal(2, _mechanism.Applies);
        Assert.Equal(new[] { "INC-1/prod/cluster#1", "INC-1/prod/cluster#2" }, _journal.Get("INC-1").Runs.Select(r => r.RunId));
    }

    [Fact]
    public async Task A_run_killed_after_its_change_is_awaited_by_the_rerun_never_applied_twice()
    {
        RollbackResult applied = await Run(Engine(), Request(wait: false));
        Assert.Equal(RollbackOutcome.Succeeded, applied.Outcome);
        _mechanism.Previous = Bad;

        RollbackResult rerun = await Run(Engine(), Request(wait: true));

        Assert.Equal(RollbackOutcome.Succeeded, rerun.Outcome);
        Assert.Equal(1, _mechanism.Applies);
        Assert.Equal(1, _mechanism.Awaits);
        Assert.Equal("kfm-api-good", _mechanism.AwaitedTarget);
        Assert.Equal(2, RunOf().Attempts.Count);
        Assert.Equal(RunPhases.Awaited, RunOf().Phase);
    }

    [Fact]
    public async Task A_run_whose_change_went_out_before_it_was_recorded_is_finished_from_its_write_ahead_record()
    {
        // The earlier attempt wrote "applying" and sent the patch, then died: no "applied" record.
        _mechanism.DieAfterApply = true;
        await Assert.ThrowsAsync<InvalidOperationException>(() => Run(Engine(), Request()));
        Assert.Equal(RunPhases.Applying, RunOf().Phase);
        Assert.Equal(Good, _mechanism.Current);
        _mechanism.DieAfterApply = false;
        _mechanism.Previous = Bad; // a fresh "previous" now would be the bad build

        RollbackResult rerun = await Run(Engine(), Request());

        Assert.Equal(RollbackOutcome.Succeeded, rerun.Outcome);
        Assert.Equal(1, _mechanism.Applies);
        Assert.Equal(Good, _mechanism.PlannedTargets[^1]);
        // The rerun recorded what the first attempt could not, and sent nothing.
        Assert.Equal(new[] { RunPhases.Applied, RunPhases.Awaited }, RunOf().Records.Where(r => r.Attempt == RunOf().Attempts[1]).Select(r => r.Phase));
    }

    [Fact]
    public async Task A_check_forced_by_an_attempt_that_died_after_its_change_is_still_in_the_resumed_runs_result()
    {
        // The registry is down in the same outage (nothing listens): registry-digest refuses unless forced.
        EnvironmentConfig environment = ConfigTestSupport.Load(ConfigTestSupport.Minimal.Replace(
            "    prometheus:\n", $"    registry: {{ url: 'http://127.0.0.1:{LoopbackPorts.Free()}/', repository: kfm/api }}\n    prometheus:\n")).GetEnvironment("prod");
        const string why = "registry down in the same outage; the target ran an hour ago";
        RollbackRequest forced = Request() with { Environment = environment, Force = true, ForceReason = why };
        _mechanism.DieAfterApply = true;
        await Assert.ThrowsAsync<InvalidOperationException>(() => Run(Engine(), forced));
        _mechanism.DieAfterApply = false;

        // The rerun (a restarted job, without -Force: the change is already out) finishes the run from its records.
        RollbackResult rerun = await Run(Engine(), Request() with { Environment = environment });

        Assert.Equal(RollbackOutcome.Succeeded, rerun.Outcome);
        Assert.Equal(1, _mechanism.Applies);
        ForcedCheck check = Assert.Single(rerun.ForcedChecks);
        Assert.Equal(("registry-digest", "PreflightRegistryUnavailable", why), (check.Check, check.ErrorId, check.Reason));
        RunRecord applying = Assert.Single(RunOf().Records, r => r.Phase == RunPhases.Applying);
        Assert.Equal(why, applying.Reason);
    }

    [Fact]
    public async Task Another_target_while_a_run_may_be_mid_change_is_refused()
    {
        _mechanism.DieAfterApply = true;
        await Assert.ThrowsAsync<InvalidOperationException>(() => Run(Engine(), Request()));
        _mechanism.DieAfterApply = false;
        var error = await Assert.ThrowsAsync<KfmException>(() => Run(Engine(), Request(target: new RollbackTarget(null, Older))));
        Assert.Equal("RollbackRunInProgress", error.ErrorId);
        Assert.Contains("Finish that run first", error.Message);
        Assert.Equal(1, _mechanism.Applies);
    }

    [Fact]
    public async Task Another_target_after_a_change_went_out_is_the_incidents_next_run()
    {
        await Run(Engine(), Request(wait: false));
        RollbackResult next = await Run(Engine(), Request(target: new RollbackTarget(null, Older)));
        Assert.Equal(RollbackOutcome.Succeeded, next.Outcome);
        Assert.Equal(new[] { "INC-1/prod/cluster#1", "INC-1/prod/cluster#2" }, _journal.Get("INC-1").Runs.Select(r => r.RunId));
    }

    [Fact]
    public async Task A_new_target_after_a_finished_run_is_a_new_run_of_the_incident()
    {
        await Run(Engine(), Request());
        RollbackResult second = await Run(Engine(), Request(target: new RollbackTarget(null, Older)));
        Assert.Equal(RollbackOutcome.Succeeded, second.Outcome);
        Assert.Equal(new[] { "INC-1/prod/cluster#1", "INC-1/prod/cluster#2" }, _journal.Get("INC-1").Runs.Select(r => r.RunId));
        // Good was rolled away from now: quarantined, so a new incident never lands on it by default.
        Assert.NotNull(new LastKnownGoodAuthority(_journal, _ => VerifiedReceiptSet.None).Quarantined(_environment, Good));
    }

    [Fact]
    public async Task The_digest_rolled_away_from_is_quarantined_before_the_change_and_a_new_incident_keeps_the_good_build()
    {
        _mechanism.ObserveJournal = () => new LastKnownGoodAuthority(_journal, _ => VerifiedReceiptSet.None).Quarantined(_environment, Bad);
        await Run(Engine(), Request());
        Assert.NotNull(_mechanism.SeenAtApply);
        Assert.Equal("INC-1", _mechanism.SeenAtApply!.IncidentId);

        _journal.Open(new IncidentRequest { IncidentId = "INC-2", Commander = "bob", Reason = "later" }, "bob");
        _mechanism.Previous = Bad;
        RollbackResult next = await Run(Engine(), Request("INC-2"));
        Assert.Equal(RollbackOutcome.NoOp, next.Outcome);
        Assert.Equal(Good, _mechanism.Current);
        Assert.Equal(1, _mechanism.Applies);

        // A mechanism that proposed the quarantined digest anyway is stopped by the engine.
        _mechanism.IgnoreTrust = true;
        var refused = await Assert.ThrowsAsync<KfmException>(() => Run(Engine(), Request("INC-2")));
        Assert.Equal("RollbackTargetQuarantined", refused.ErrorId);
        Assert.Equal(1, _mechanism.Applies);
    }

    [Fact]
    public async Task A_quarantined_target_is_refused_unless_forced_with_a_reason_and_forcing_releases_it_on_the_record()
    {
        await Run(Engine(), Request());
        _journal.Open(new IncidentRequest { IncidentId = "INC-3", Commander = "bob", Reason = "later" }, "bob");
        var refused = await Assert.ThrowsAsync<KfmException>(() => Run(Engine(), Request("INC-3", new RollbackTarget(null, Bad))));
        Assert.Equal("RollbackTargetQuarantined", refused.ErrorId);
        Assert.Contains("INC-1", refused.Message);
        Assert.Contains("-Force -ForceReason", refused.Message);

        var timeline = new List<string>();
        var reporter = new RollbackReporter { Timeline = (_, text) => timeline.Add(text) };
        RollbackResult forced = await Run(Engine(), Request("INC-3", new RollbackTarget(null, Bad)) with { Force = true, ForceReason = "the 5xx was the CDN, not this build" }, reporter);
        Assert.Equal(RollbackOutcome.Succeeded, forced.Outcome);
        Assert.Contains(timeline, t => t.StartsWith("FORCED Cluster rollback of prod to quarantined", StringComparison.Ordinal) && t.EndsWith("the 5xx was the CDN, not this build; the quarantine is released", StringComparison.Ordinal));
        Assert.Null(new LastKnownGoodAuthority(_journal, _ => VerifiedReceiptSet.None).Quarantined(_environment, Bad));
    }

    [Fact]
    public async Task A_journal_that_fails_after_the_change_never_hides_it()
    {
        var backend = new FlakyJournal(_dir.File("flaky"));
        var journal = new IncidentJournal(backend, "flaky journal", new PolicySafeText(), _clock);
        journal.Open(new IncidentRequest { IncidentId = "INC-1", Commander = "alice", Reason = "5xx after deploy" }, "alice");
        _mechanism.ObserveJournal = () => { backend.Fail = true; return null; };
        var reporter = new RollbackReporter { Timeline = (role, text) => journal.AppendTimeline("INC-1", role, text, "job@automation") };

        RollbackResult result = await Run(Engine(journal), Request(), reporter);

        Assert.Equal(RollbackOutcome.Succeeded, result.Outcome);
        Assert.NotEmpty(result.Changes);
        Assert.Equal("IncidentJournalWriteFailed", result.Error!.ErrorId);
        Assert.Contains("json-patch deployment kfm/kfm-api", result.Error.Message);
        Assert.Contains("disk full", result.Error.Message);
        Assert.Equal(1, _mechanism.Awaits); // the wait (and Helm's finishing writes) still happen
        backend.Fail = false;
        RunRecord applying = Assert.Single(journal.Get("INC-1").Runs).Records[1];
        Assert.Equal(RunPhases.Applying, applying.Phase); // the write-ahead record lists the change
        Assert.Equal("json-patch", Assert.Single(applying.Changes).Action);

        // Once the journal takes writes again, the same command records what went out and sends nothing.
        RollbackResult rerun = await Run(Engine(journal), Request(), new RollbackReporter { Timeline = (role, text) => journal.AppendTimeline("INC-1", role, text, "job@automation") });
        Assert.Null(rerun.Error);
        Assert.Equal(1, _mechanism.Applies);
        Assert.Equal(RunPhases.Awaited, Assert.Single(journal.Get("INC-1").Runs).Phase);
    }

    [Fact]
    public async Task A_journal_that_cannot_take_the_write_ahead_record_stops_the_run_before_any_change()
    {
        var backend = new FlakyJournal(_dir.File("flaky"));
        var journal = new IncidentJournal(backend, "flaky journal", new PolicySafeText(), _clock);
        journal.Open(new IncidentRequest { IncidentId = "INC-1", Commander = "alice", Reason = "5xx after deploy" }, "alice");
        backend.Fail = true;
        var error = await Assert.ThrowsAsync<KfmException>(() => Run(Engine(journal), Request()));
        Assert.Equal("IncidentJournalNotWritable", error.ErrorId);
        Assert.Equal(0, _mechanism.Applies);
    }

    [Fact]
    public async Task Ctrl_C_while_waiting_after_the_change_is_recorded_with_how_to_resume()
    {
        using var stop = new CancellationTokenSource();
        _mechanism.OnAwait = () => stop.Cancel();
        var timeline = new List<string>();
        var reporter = new RollbackReporter { Timeline = (_, text) => timeline.Add(text) };
        var interrupted = await Assert.ThrowsAsync<RollbackInterruptedException>(() => Run(Engine(), Request(), reporter, stop.Token));

        Assert.Contains("Interrupted after the Cluster rollback of prod", interrupted.Message);
        Assert.Contains("the rollout continues", interrupted.Message);
        Assert.Contains("run the same command again", interrupted.Message);
        Assert.Contains(timeline, t => t.Contains("Interrupted after", StringComparison.Ordinal));
        Assert.Equal(RunPhases.Interrupted, RunOf().Phase);

        _mechanism.OnAwait = null;
        RollbackResult resumed = await Run(Engine(), Request());
        Assert.Equal(RollbackOutcome.Succeeded, resumed.Outcome);
        Assert.Equal(1, _mechanism.Applies);
    }

    [Fact]
    public async Task Wait_KfmRollback_by_incident_follows_the_interrupted_run_from_its_records()
    {
        using var stop = new CancellationTokenSource();
        _mechanism.OnAwait = () => stop.Cancel();
        await Assert.ThrowsAsync<RollbackInterruptedException>(() => Run(Engine(), Request(), null, stop.Token));
        _mechanism.OnAwait = null;

        RollbackResult awaited = await Engine().AwaitAsync(Request(), null, new RollbackReporter(), CancellationToken.None);

        Assert.Equal(RollbackOutcome.Succeeded, awaited.Outcome);
        Assert.Equal("kfm-api-good", _mechanism.AwaitedTarget);
        Assert.Equal(Bad, awaited.CurrentRef);
        Assert.Equal(Good, awaited.RollbackTargetRef);
        Assert.Equal(1, _mechanism.Applies);
        Assert.Equal(RunPhases.Awaited, RunOf().Phase);
        var nothing = await Assert.ThrowsAsync<KfmException>(() => Engine().AwaitAsync(Request() with { Method = RollbackMethod.Helm }, null, new RollbackReporter(), CancellationToken.None));
        Assert.Equal("RollbackNothingToAwait", nothing.ErrorId);
    }

    [Fact]
    public async Task A_lock_lost_before_apply_stops_the_run_and_is_recorded()
    {
        _mechanism.Lock = new FakeLock { LostTo = "bob@laptop (INC-9; run INC-9/prod/cluster#1; attempt 0badf00d)" };
        var error = await Assert.ThrowsAsync<KfmException>(() => Run(Engine(), Request()));
        Assert.Equal("RollbackLockLost", error.ErrorId);
        Assert.Equal(0, _mechanism.Applies);
        Assert.Equal(RunPhases.LockLost, RunOf().Phase);
        Assert.Equal(_mechanism.Lock.LostTo, RunOf().Progress!.Holder);
    }

    [Fact]
    public async Task Breaking_another_holders_lock_is_journaled_with_the_old_holder_and_the_reason()
    {
        _mechanism.Lock = new FakeLock { Takeover = LeaseTakeover.Broken, PreviousHolder = "bob@laptop (INC-9; run INC-9/prod/cluster#1; attempt 0badf00d)" };
        var reporter = new RollbackReporter { Timeline = (role, text) => _journal.AppendTimeline("INC-1", role, text, "job@automation") };
        await Run(Engine(), Request() with { BreakLockReason = "bob's job was killed at 14:01" }, reporter);
        RunRecord broken = Assert.Single(RunOf().Records, r => r.Phase == RunPhases.LockBroken);
        Assert.Equal(_mechanism.Lock.PreviousHolder, broken.Holder);
        Assert.Equal("bob's job was killed at 14:01", broken.Reason);
        Assert.Contains(_journal.Get("INC-1").Timeline, t => t.Event.StartsWith("Broke the rollback lock", StringComparison.Ordinal) && t.Event.Contains("bob@laptop", StringComparison.Ordinal));
    }

    public void Dispose() => _dir.Dispose();

    /// <summary>The local journal whose appends fail on demand, as a full disk does (reads still work).</summary>
    private sealed class FlakyJournal(string root) : KfmRollback.Engine.Adapters.Journal.IJournalBackend
    {
        private readonly KfmRollback.Engine.Adapters.Journal.NdjsonFileJournal _files = new(root);
        public bool Fail { get; set; }
        public string Description => _files.Description;
        public string Locate(string stream) => _files.Locate(stream);
        public KfmRollback.Engine.Adapters.Journal.JournalRead Read(string stream) => _files.Read(stream);
        public IReadOnlyList<string> List(string kind) => _files.List(kind);

        public KfmRollback.Engine.Adapters.Journal.JournalAppend Append(string stream, IReadOnlyList<System.Text.Json.Nodes.JsonObject> records, string? expectedVersion = null) => Fail
            ? throw new KfmRollback.Engine.Adapters.Journal.JournalWriteException(Locate(stream), new IOException("No space left on device (disk full)"))
            : _files.Append(stream, records, expectedVersion);
    }

    private sealed class FakeLock : IRollbackLock
    {
        public string Description => "lease kfm/kfm-rollback-kfm-api";
        public string? PreviousHolder { get; init; }
        public LeaseTakeover Takeover { get; init; } = LeaseTakeover.Free;
        public string? LostTo { get; init; }

        public Task EnsureHeldAsync(CancellationToken cancellationToken) => LostTo is null
            ? Task.CompletedTask
            : throw new KfmException("RollbackLockLost", KfmErrorKind.ResourceBusy, $"held by {LostTo}");

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>A Deployment that runs <see cref="Current"/> and whose "previous" is <see cref="Previous"/>.</summary>
    private sealed class FakeMechanism : IRollbackMechanism
    {
        public string Current { get; set; } = Bad;
        public string Previous { get; set; } = Good;
        public int Applies { get; private set; }
        public int Awaits { get; private set; }
        public string? AwaitedTarget { get; private set; }
        public bool DieAfterApply { get; set; }
        public Action? OnAwait { get; set; }
        public Func<QuarantineEntry?>? ObserveJournal { get; set; }
        public QuarantineEntry? SeenAtApply { get; private set; }
        public List<string> PlannedTargets { get; } = new();
        public FakeLock Lock { get; set; } = new();
        /// <summary>Propose <see cref="Previous"/> whatever the authority says (a mechanism with a bug).</summary>
        public bool IgnoreTrust { get; set; }

        public RollbackMethod Method => RollbackMethod.Cluster;

        public IReadOnlyList<AccessRequirement> Requirements(RollbackRequest request) => Array.Empty<AccessRequirement>();

        public Task<MechanismPlan> PlanAsync(RollbackRequest request, RollbackReporter reporter, CancellationToken cancellationToken)
        {
            string target = request.Target.Digest ?? Previous;
            if (request.Target.IsPrevious && !IgnoreTrust && request.Trust is { } trust)
            {
                // As every real mechanism does: "previous" is the authority's choice.
                LastKnownGoodChoice choice = trust.Choose(Current, new[] { new RefCandidate(Previous, 4, "revision 4") }, LastKnownGoodSources.PreviousRevision, sameDigest: true);
                target = choice.IsCurrent ? Current : choice.Digest ?? Previous;
            }
            PlannedTargets.Add(target);
            var changes = target == Current
                ? Array.Empty<PlannedChange>()
                : new[] { new PlannedChange("image", "deployment kfm/kfm-api", "json-patch", $"[{{\"op\":\"replace\",\"path\":\"/spec/template\",\"value\":\"{target}\"}}]") };
            return Task.FromResult(new MechanismPlan
            {
                Method = RollbackMethod.Cluster,
                Environment = request.Environment.Name,
                CurrentRef = Current,
                TargetRef = target,
                FromRevision = 5,
                ToRevision = 4,
                Changes = changes,
                Summary = changes.Length == 0 ? "skipped rollback (current template already matches)" : $"would patch deployment kfm/kfm-api to {target}",
                PlannedAt = DateTimeOffset.UnixEpoch,
            });
        }

        public Task<IRollbackLock> LockAsync(RollbackRequest request, RollbackReporter reporter, CancellationToken cancellationToken) => Task.FromResult<IRollbackLock>(Lock);

        // An in-memory Deployment has no apiserver to dry-run against: nothing to preflight but the registry (none configured).
        public Task<IReadOnlyList<KfmRollback.Engine.Rollback.Preflight.PreflightCheck>> DryRunAsync(RollbackRequest request, MechanismPlan plan, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<KfmRollback.Engine.Rollback.Preflight.PreflightCheck>>(Array.Empty<KfmRollback.Engine.Rollback.Preflight.PreflightCheck>());

        public Task<string?> CurrentRefAsync(RollbackRequest request, CancellationToken cancellationToken) => Task.FromResult<string?>(Current);

        public Task<RollbackResult> ApplyAsync(RollbackRequest request, MechanismPlan plan, RollbackReporter reporter, CancellationToken cancellationToken)
        {
            SeenAtApply = ObserveJournal?.Invoke();
            Applies++;
            Current = plan.TargetRef!;
            reporter.Record("OPS", $"Cluster rollback of kfm/kfm-api: {plan.CurrentRef} → {plan.TargetRef}");
            if (DieAfterApply)
            {
                throw new InvalidOperationException("the process died right after the patch");
            }
            return Task.FromResult(plan.ToResult(request, RollbackOutcome.Succeeded, DateTimeOffset.UnixEpoch, "rollback applied", plan.Changes) with { RolloutTarget = "kfm-api-good" });
        }

        public Task<RollbackResult> AwaitAsync(RollbackRequest request, RollbackResult applied, RollbackReporter reporter, CancellationToken cancellationToken)
        {
            Awaits++;
            AwaitedTarget = applied.RolloutTarget;
            reporter.Progress?.Invoke("1 of 3 updated replicas are available", 30);
            OnAwait?.Invoke();
            cancellationToken.ThrowIfCancellationRequested();
            reporter.Record("OPS", "Rollout of kfm/kfm-api complete");
            return Task.FromResult(applied with { Detail = "successfully rolled out" });
        }
    }
}
