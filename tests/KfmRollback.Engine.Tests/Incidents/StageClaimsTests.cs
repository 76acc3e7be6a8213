using KfmRollback.Engine.Adapters.Http;
using KfmRollback.Engine.Aftermath;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Freeze;
using KfmRollback.Engine.Incidents;
using KfmRollback.Engine.Tests.Configuration;
using KfmRollback.Engine.Verification;

namespace KfmRollback.Engine.Tests.Incidents;

/// <summary>
/// Incident updates claim only what the timeline supports. The freeze and verification lines come from
/// the code that writes them (FreezeService, TimelineMarkers.VerifiedLine); the rollback lines are
/// the rollback mechanisms' words, which the lab tests (Pester) produce for real.
/// </summary>
public sealed class StageClaimsTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 15, 14, 0, 0, TimeSpan.Zero);
    private readonly List<TimelineEntry> _timeline = new();
    private int _minute;

    private void Add(string text, string role = "OPS") => _timeline.Add(new TimelineEntry(T0.AddMinutes(_minute++), role, text, "tester"));

    private Incident Incident() => new()
    {
        IncidentId = "INC-7", Commander = "alice", Reason = "5xx after deploy", StartedAt = T0, OpenedBy = "tester", OpenedAt = T0,
        Timeline = _timeline.ToList(), JournalPath = "/journal",
    };

    /// <summary>Freeze lines as Start-KfmFreeze writes them.</summary>
    private async Task FreezeAsync(FreezeAction action, bool freeze = true)
    {
        EnvironmentConfig environment = ConfigTestSupport.Load(ConfigTestSupport.Minimal).GetEnvironment("prod");
        var mechanisms = new FreezeMechanisms(_ => throw new InvalidOperationException("no cluster"), _ => new Scripted(action, environment.Name));
        var killSwitchOnly = new[] { FreezeKind.Killswitch };
        var config = ConfigTestSupport.Load(ConfigTestSupport.Minimal.Replace("        - kind: argocd\n          name: kfm-api", "        - kind: killswitch", StringComparison.Ordinal)
            .Replace("      image_name: kfm-api", "      image_name: kfm-api\n      kill_switch_path: FREEZE", StringComparison.Ordinal)).GetEnvironment("prod");
        var freezes = new FreezeService(mechanisms, new PolicySafeText(), SystemClock.Instance);
        await freezes.ApplyAsync(config, killSwitchOnly, freeze, freezes.Request("INC-7", "test"), dryRun: false, (role, text) => Add(text, role), default);
    }

    private void Verified(params (string Check, Verdict Verdict)[] results) =>
        Add(TimelineMarkers.VerifiedLine(new VerificationSummary
        {
            Environment = "prod",
            Results = results.Select(r => new CheckResult
            {
                Environment = "prod", Check = r.Check, Verdict = r.Verdict, Summary = "s",
                Section = r.Check[0] switch { 'A' => CheckSection.Health, 'B' => CheckSection.PolicyInvariants, 'C' => CheckSection.Contract, _ => CheckSection.Observability },
            }).ToList(),
        }));

    private static readonly (string, Verdict)[] AllPass = { ("A.error-ratio", Verdict.Pass), ("B.error-model", Verdict.Pass), ("C.spec-diff", Verdict.Pass), ("D.traces", Verdict.Pass) };

    private void RolledBackAndRolledOut()
    {
        Add("Cluster rollback of kfm/kfm-api (image): revision 5 → template of revision 4 (sha256:d49d44c11309 → sha256:6bee652533e4)");
        Add("Rollout of kfm/kfm-api complete: deployment \"kfm-api\" successfully rolled out");
    }

    [Fact]
    public async Task Resolved_is_refused_after_a_failed_verification_naming_the_failing_checks_and_offering_Verifying()
    {
        await FreezeAsync(FreezeAction.Froze);
        RolledBackAndRolledOut();
        Verified(("A.error-ratio", Verdict.Pass), ("B.existence-leak/api/v1/datasets/{id}", Verdict.Fail), ("C.no-breaking-change", Verdict.Inconclusive), ("D.traces", Verdict.Pass));

        var e = Assert.Throws<KfmException>(() => IncidentUpdates.ComposeFor(Incident(), IncidentStage.Resolved, Array.Empty<ImpactArea>(), null, T0.AddHours(1)));

        Assert.Equal(StageClaims.NotVerified, e.ErrorId);
        Assert.Equal(KfmErrorKind.InvalidOperation, e.Kind);
        Assert.Contains("B.existence-leak/api/v1/datasets/{id} fail", e.Message, StringComparison.Ordinal);
        Assert.Contains("C.no-breaking-change inconclusive", e.Message, StringComparison.Ordinal);
        Assert.Contains("-Stage Verifying", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Resolved_is_posted_once_a_verification_after_the_rollout_passes()
    {
        await FreezeAsync(FreezeAction.Froze);
        RolledBackAndRolledOut();
        Verified(("A.error-ratio", Verdict.Fail), ("B.error-model", Verdict.Pass), ("C.spec-diff", Verdict.Pass), ("D.traces", Verdict.Pass));
        Verified(AllPass);

        IncidentUpdate update = IncidentUpdates.ComposeFor(Incident(), IncidentStage.Resolved, Array.Empty<ImpactArea>(), null, T0.AddHours(1));
        Assert.Contains("have been verified", update.Text, StringComparison.Ordinal);
        Assert.Equal(IncidentStage.Resolved, StageClaims.Fitting(TimelineFacts.Read(_timeline)));
    }

    [Fact]
    public async Task The_re_align_after_an_emergency_rollback_does_not_make_the_verification_stale()
    {
        await FreezeAsync(FreezeAction.Froze);
        RolledBackAndRolledOut();
        Verified(AllPass);
        // Test-KfmDrift | Invoke-KfmRollback -Method GitOps -Wait: Git pinned to what runs, synced once.
        Add("GitOps rollback of prod: branch ops/rollback-api-INC-7 pushed, pull request (none)");
        Add("GitOps rollback of prod: Succeeded");
        StageClaims.Require(IncidentStage.Resolved, Incident());

        // A GitOps rollback that is the first rollout of the incident is a rollout of its own.
        _timeline.Clear();
        await FreezeAsync(FreezeAction.Froze);
        Verified(AllPass);
        Add("GitOps rollback of prod: branch ops/rollback-api-INC-7 pushed, pull request (none)");
        Add("GitOps rollback of prod: Succeeded");
        Assert.Equal(StageClaims.NotVerified, Assert.Throws<KfmException>(() => StageClaims.Require(IncidentStage.Resolved, Incident())).ErrorId);
    }

    [Fact]
    public async Task A_verification_recorded_before_the_rollout_finished_supports_no_Resolved()
    {
        await FreezeAsync(FreezeAction.Froze);
        Verified(AllPass);
        RolledBackAndRolledOut();

        var e = Assert.Throws<KfmException>(() => StageClaims.Require(IncidentStage.Resolved, Incident()));
        Assert.Equal(StageClaims.NotVerified, e.ErrorId);
        Assert.Contains("no verification was recorded after the rollout finished", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Resolved_is_refused_while_the_API_fails_closed_and_FailedClosed_fits()
    {
        await FreezeAsync(FreezeAction.Froze);
        RolledBackAndRolledOut();
        Verified(AllPass);
        Add("FAILED CLOSED prod (maintenance-flag, configmap kfm/kfm-api-config): policy invariants broken");

        var e = Assert.Throws<KfmException>(() => StageClaims.Require(IncidentStage.Resolved, Incident()));
        Assert.Equal(StageClaims.Unsupported, e.ErrorId);
        Assert.Contains("-Stage FailedClosed", e.Message, StringComparison.Ordinal);
        StageClaims.Require(IncidentStage.FailedClosed, Incident());

        Add("Serving again in prod: fail-closed (maintenance-flag) lifted, prior state restored");
        Assert.Throws<KfmException>(() => StageClaims.Require(IncidentStage.FailedClosed, Incident()));
    }

    [Fact]
    public async Task Each_open_stage_needs_its_own_event_and_says_which_is_missing()
    {
        var none = Assert.Throws<KfmException>(() => StageClaims.Require(IncidentStage.Identified, Incident()));
        Assert.Equal(StageClaims.Unsupported, none.ErrorId);
        Assert.Contains("holds no freeze", none.Message, StringComparison.Ordinal);
        Assert.Contains("Start-KfmFreeze", none.Message, StringComparison.Ordinal);

        await FreezeAsync(FreezeAction.Froze);
        StageClaims.Require(IncidentStage.Identified, Incident());
        var notYet = Assert.Throws<KfmException>(() => StageClaims.Require(IncidentStage.RollingBack, Incident()));
        Assert.Contains("-Stage Identified", notYet.Message, StringComparison.Ordinal);

        Add("Cluster rollback of kfm/kfm-api (image): revision 5 → template of revision 4 (sha256:d49d44c11309 → sha256:6bee652533e4)");
        StageClaims.Require(IncidentStage.RollingBack, Incident());
        Assert.Throws<KfmException>(() => StageClaims.Require(IncidentStage.Identified, Incident())); // "preparing a rollback" is past
        var verifying = Assert.Throws<KfmException>(() => StageClaims.Require(IncidentStage.Verifying, Incident()));
        Assert.Contains("no finished rollout", verifying.Message, StringComparison.Ordinal);

        Add("Rollout of kfm/kfm-api FAILED: ReplicaSet \"kfm-api-7b\" has timed out progressing");
        Assert.Contains("the rollout failed", Assert.Throws<KfmException>(() => StageClaims.Require(IncidentStage.Verifying, Incident())).Message, StringComparison.Ordinal);
        Add("Rollout of kfm/kfm-api complete: deployment \"kfm-api\" successfully rolled out");
        StageClaims.Require(IncidentStage.Verifying, Incident());
    }

    [Fact]
    public async Task A_freeze_released_to_another_incident_no_longer_supports_deploys_paused()
    {
        await FreezeAsync(FreezeAction.Joined);
        StageClaims.Require(IncidentStage.Identified, Incident());
        await FreezeAsync(FreezeAction.Released, freeze: false);
        Assert.Empty(TimelineFacts.Read(_timeline).StillFrozen);
        Assert.Throws<KfmException>(() => StageClaims.Require(IncidentStage.Identified, Incident()));
    }

    [Theory]
    [InlineData("Froze argocd Application argocd/kfm-api (prod)")]
    [InlineData("Cluster rollback of kfm/kfm-api (image): revision 5 → template of revision 4 (a → b)")]
    [InlineData("Rollout of kfm/kfm-api complete: done")]
    [InlineData("GitOps rollback of prod: Succeeded")]
    [InlineData("Verified prod: A pass, B pass, C pass, D pass")]
    [InlineData("FAILED CLOSED prod (maintenance-flag, x): why")]
    [InlineData("Freeze requested for prod: argocd Application argocd/kfm-api")]
    public void The_forms_the_steps_record_are_reserved_to_them(string text)
    {
        var e = Assert.Throws<KfmException>(() => TimelineFacts.EnsureNotStepEvent(text));
        Assert.Equal("TimelineEventReserved", e.ErrorId);
        Assert.DoesNotContain(text, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Froze deploys")]
    [InlineData("Rolled back by hand with kubectl rollout undo")]
    [InlineData("Verified with the data team that the catalog is fine")]
    public void A_persons_own_words_are_not(string text) => TimelineFacts.EnsureNotStepEvent(text);

    [Fact]
    public void A_hand_typed_event_does_not_prove_a_freeze()
    {
        Add("Froze deploys", role: "IC");   // a person's words, not the freeze step's "Froze <target> (<environment>)"
        Assert.Empty(TimelineFacts.Read(_timeline).StillFrozen);
        Assert.Throws<KfmException>(() => StageClaims.Require(IncidentStage.Identified, Incident()));
        Assert.Null(StageClaims.Fitting(TimelineFacts.Read(_timeline)));
    }

    /// <summary>A freeze mechanism that reports the given action, for the timeline lines it causes.</summary>
    private sealed class Scripted(FreezeAction action, string environment) : IFreezeMechanism
    {
        public FreezeKind Kind => FreezeKind.Killswitch;
        public string Target => "git:FREEZE";
        public Task<FreezeState> GetAsync(CancellationToken cancellationToken) => Task.FromResult(State());
        public Task<FreezeState> FreezeAsync(FreezeRequest request, bool dryRun, CancellationToken cancellationToken) => Task.FromResult(State(request));
        public Task<FreezeState> ThawAsync(FreezeRequest request, bool dryRun, CancellationToken cancellationToken) => Task.FromResult(State(request));

        private FreezeState State(FreezeRequest? request = null) => new()
        {
            Environment = environment, Mechanism = Kind, Target = Target, Frozen = action is FreezeAction.Froze or FreezeAction.Joined or FreezeAction.Released,
            Changed = request is not null, Action = request is null ? FreezeAction.None : action,
            Holders = new[] { new FreezeHolder("INC-OTHER", "bob", T0, "other incident") },
        };
    }
}
