using KfmRollback.Engine.Adapters.Kubernetes;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Rollback.Preflight;
using KfmRollback.Engine.Incidents;
using KfmRollback.Engine.Refs;
using KfmRollback.Engine.Rollback.Runs;

namespace KfmRollback.Engine.Rollback;

/// <summary>
/// The one entry point for every rollback (runbook steps 2-5): validate the request, find its run
/// in the incident's journal, let the method's mechanism plan it, then apply exactly that plan and,
/// with -Wait, await its rollout, recording each phase before and after each step. A rerun of the
/// same incident (Azure Automation restarting a job, an operator after a dropped VPN, a fresh
/// sandbox reading the same journal) resumes its run or returns the finished result instead of
/// acting again: never kubectl's second undo that flips back to the bad build. Fleets go through
/// the same path: every environment is planned (freeze checks included) before any is changed,
/// then applied with a throttle, each result reported as it ends.
/// </summary>
public sealed class RollbackEngine
{
    private readonly RollbackMechanisms _mechanisms;
    private readonly IClock _clock;
    private readonly Func<Configuration.EnvironmentConfig, RunJournal?> _journals;
    private readonly PhaseHook _hook;
    private readonly RollbackPreflight _preflight;
    private readonly ITextSafety _textSafety;

    /// <param name="runs">Each environment's incident journal (run records, the last-known-good authority); null: nothing recorded or resumed (tests of a mechanism alone).</param>
    /// <param name="hook">TEST-ONLY pause points (<see cref="PhaseHook"/>).</param>
    /// <param name="preflight">The checks every plan gets before any change (server dry runs, the target in the registry).</param>
    /// <param name="textSafety">The policy-safe text rule for reasons (the engine context's); null: the module's rule.</param>
    public RollbackEngine(RollbackMechanisms mechanisms, IClock? clock = null, Func<Configuration.EnvironmentConfig, RunJournal?>? runs = null, PhaseHook? hook = null, RollbackPreflight? preflight = null,
        ITextSafety? textSafety = null)
    {
        _mechanisms = mechanisms;
        _textSafety = textSafety ?? new PolicySafeText();
        _clock = clock ?? SystemClock.Instance;
        _journals = runs ?? (_ => null);
        _hook = hook ?? PhaseHook.None;
        _preflight = preflight ?? new RollbackPreflight();
    }

    public async Task<MechanismPlan> PlanAsync(RollbackRequest request, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        RollbackRules.Validate(request, _textSafety);
        RunPlanning run = Prepare(request, reporter);
        IRollbackMechanism mechanism = _mechanisms.For(request.Method, request.Environment);
        RunResume? resume = run.Request.Resume;
        if (resume is { Stage: RunStage.Finished })
        {
            if (await FinishedAsync(mechanism, run, resume, cancellationToken).ConfigureAwait(false) is { } finished)
            {
                return finished;
            }
            // The run finished, and the target system moved away from its target since (a later deploy,
            // a thaw that redeployed): this is the incident's next run, planned afresh by the authority,
            // which never picks a quarantined build.
            reporter.Say($"Run {resume.Run.RunId} finished, but {request.Environment.Name} no longer runs its target {resume.TargetRef}: planning the incident's next run.");
            RunContext next = run.Context with { RunId = RunContext.Id(request.IncidentId!, request.Environment.Name, request.Method, Number(resume.Run.RunId) + 1) };
            run = run with { Request = run.Request with { Resume = null, Run = next }, Context = next, Kind = RunPlanKind.Plan };
        }
        if (resume is { Stage: RunStage.Applied })
        {
            return Applied(run, resume);
        }
        MechanismPlan plan = await mechanism.PlanAsync(run.Request, reporter, cancellationToken).ConfigureAwait(false);
        plan = plan with { Preflight = await _preflight.RunAsync(mechanism, run.Request, plan, cancellationToken).ConfigureAwait(false) };
        EnvironmentTrust trust = (run.Request.Trust ?? EnvironmentTrust.Empty(request.Environment.Name)).With(plan.Quarantine);
        QuarantineEntry? forced = null;
        if (!plan.NoOp && plan.TargetRef != plan.CurrentRef && trust.QuarantineOf(plan.TargetRef) is { } entry)
        {
            if (!request.Force)
            {
                throw trust.Refusal(entry, $"pass it explicitly (-ToRef {entry.Digest} or its -ToRevision) with -Force -ForceReason '<why it is safe now>'; the override is recorded on the incident and releases the quarantine.");
            }
            forced = entry;
        }
        return plan with { Run = run with { ForcedQuarantine = forced } };
    }

    /// <summary>The result -WhatIf shows: the plan's changes, nothing sent.</summary>
    public static RollbackResult Preview(RollbackRequest request, MechanismPlan plan) =>
        plan.ToResult(request, plan.NoOp ? RollbackOutcome.NoOp : RollbackOutcome.Planned, plan.PlannedAt, plan.Summary, plan.Changes);

    /// <summary>
    /// Applies exactly <paramref name="plan"/>, then awaits its rollout when the request says -Wait;
    /// or, for a run the journal shows applied, awaits it without applying again.
    /// </summary>
    public async Task<RollbackResult> RunAsync(RollbackRequest request, MechanismPlan plan, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        RunPlanning run = plan.Run ?? Prepare(request, reporter);
        request = run.Request;
        IRollbackMechanism mechanism = _mechanisms.For(request.Method, request.Environment);
        RunResume? resume = request.Resume;
        if (run.Kind == RunPlanKind.Finished)
        {
            return plan.ToResult(request, RollbackOutcome.NoOp, _clock.UtcNow, plan.Summary, Array.Empty<PlannedChange>()) with
            {
                CurrentRef = resume!.CurrentRef,
                RollbackTargetRef = resume.TargetRef,
            };
        }
        if (run.Kind == RunPlanKind.Applied && !request.Wait)
        {
            return FromRun(request, resume!.Run) with { Outcome = RollbackOutcome.NoOp, Detail = plan.Summary, CompletedAt = _clock.UtcNow };
        }
        if (plan.NoOp && run.Kind == RunPlanKind.Plan && resume is not { Stage: RunStage.InFlight })
        {
            reporter.Record("OPS", $"{request.Method} rollback of {request.Environment.Name} skipped: {plan.Summary}");
            return plan.ToResult(request, RollbackOutcome.NoOp, _clock.UtcNow, plan.Summary, Array.Empty<PlannedChange>());
        }

        RollbackResult? applied = null;
        IRollbackLock? held = null;
        try
        {
            if (run.Kind == RunPlanKind.Plan && !plan.NoOp)
            {
                RollbackPreflight.ThrowIfFailed(plan.Preflight);
                Write(request, reporter, RunPhases.Planned, RunJournal.From(request, run.Context, RunPhases.Planned, plan, null) with { Named = run.Named }, critical: true);
                await _hook.ReachedAsync(PhaseHook.Planned, cancellationToken).ConfigureAwait(false);
            }
            held = await LockAsync(mechanism, request, run, reporter, cancellationToken).ConfigureAwait(false);
            await _hook.ReachedAsync(PhaseHook.Locked, cancellationToken).ConfigureAwait(false);

            if (run.Kind == RunPlanKind.Applied || plan.NoOp)
            {
                // The journal shows the change went out (or the target system already has it): finish the run, never send it again.
                applied = FromRun(request, resume!.Run, plan);
                if (resume.Run.Applied is null)
                {
                    Write(request, reporter, RunPhases.Applied, RunJournal.From(request, run.Context, RunPhases.Applied, null, applied));
                }
                reporter.Record("OPS", $"{request.Method} rollback of {request.Environment.Name}: resuming run {run.Context.RunId}, whose change was already sent ({Describe(applied)})");
                await AnnotateAsync(request, run, applied, reporter, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                RollbackResult result = await ApplyAsync(mechanism, request, plan, run, held, reporter, cancellationToken).ConfigureAwait(false);
                if (result.Changes.Count == 0 && result.Outcome == RollbackOutcome.Failed)
                {
                    // Nothing went out: the run says so, and a rerun starts afresh.
                    Write(request, reporter, RunPhases.Failed, RunJournal.From(request, run.Context, RunPhases.Failed, plan, result) with { Detail = "nothing was changed: " + result.Detail });
                    return JournalChecked(result, reporter);
                }
                applied = result;
                await _hook.ReachedAsync(PhaseHook.Applied, cancellationToken).ConfigureAwait(false);
            }

            // A GitOps rollback is PendingMerge until its pull request merges: -Wait follows it from there.
            if (request.Wait && applied.Outcome is RollbackOutcome.Succeeded or RollbackOutcome.PendingMerge)
            {
                CancellationToken token = cancellationToken;
                RollbackReporter waiting = reporter.Observing(() => _hook.Reached(PhaseHook.Awaiting, token));
                RollbackResult awaited = await mechanism.AwaitAsync(request, applied, waiting, cancellationToken).ConfigureAwait(false);
                awaited = await PolicyCasesAsync(request, awaited, reporter, cancellationToken).ConfigureAwait(false);
                awaited = LockLostDuring(request, run, held, awaited, reporter);
                Write(request, reporter, RunPhases.Awaited, RunJournal.From(request, run.Context, RunPhases.Awaited, null, awaited));
                return JournalChecked(awaited, reporter);
            }
            return JournalChecked(applied, reporter);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && applied is not null)
        {
            throw Interrupted(request, run, applied, reporter);
        }
        finally
        {
            if (held is not null)
            {
                await held.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Sends the plan: the write-ahead record first (no record, no change), then the change, then what went out.</summary>
    private async Task<RollbackResult> ApplyAsync(IRollbackMechanism mechanism, RollbackRequest request, MechanismPlan plan, RunPlanning run, IRollbackLock held, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        // Stop before Apply when the lock was taken or broken meanwhile.
        try
        {
            await held.EnsureHeldAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (KfmException ex) when (ex.ErrorId == "RollbackLockLost")
        {
            Write(request, reporter, RunPhases.LockLost, RunJournal.From(request, run.Context, RunPhases.LockLost, plan, null) with { Holder = held.LostTo, Detail = ex.Message });
            reporter.Record("OPS", $"{request.Method} rollback of {request.Environment.Name} stopped before any change: the rollback lock is now held by '{held.LostTo}'");
            throw;
        }
        // The preflight again just before the first write: a policy installed or a build deleted since the plan refuses here, not half-way.
        IReadOnlyList<PreflightCheck> preflight = await _preflight.RunAsync(mechanism, request, plan, cancellationToken).ConfigureAwait(false);
        if (preflight.FirstOrDefault(c => c.Failed) is { } failedCheck)
        {
            Write(request, reporter, RunPhases.Failed, RunJournal.From(request, run.Context, RunPhases.Failed, plan, null) with { Detail = $"nothing was changed: preflight {failedCheck.Check} failed ({failedCheck.ErrorId})" });
            throw failedCheck.ToException();
        }
        foreach (PreflightCheck overridden in preflight.Where(c => c.Verdict == PreflightVerdict.Forced))
        {
            reporter.Record("OPS", $"FORCED {request.Method} rollback of {request.Environment.Name} past preflight {overridden.Check} ({overridden.ErrorId}: {overridden.Target}): {request.ForceReason}");
        }
        QuarantineEntry? forced = run.ForcedQuarantine;
        if (forced is not null)
        {
            reporter.Record("OPS", $"FORCED {request.Method} rollback of {request.Environment.Name} to quarantined {ImageRefs.Short(forced.Digest)} ({forced}): {request.ForceReason}; the quarantine is released");
            Critical(() => _journals(request.Environment)?.RecordLift(request, run.Context, forced));
        }
        IReadOnlyList<Receipts.ForcedCheck> forcedChecks = RollbackPreflight.Forced(preflight, request.ForceReason);
        Write(request, reporter, RunPhases.Applying, RunJournal.From(request, run.Context, RunPhases.Applying, plan, null) with
        {
            Named = run.Named,
            Reason = forced is null && forcedChecks.Count == 0 ? null : request.ForceReason,
            ForcedChecks = forcedChecks.Count == 0 ? null : forcedChecks.Select(c => new RunForcedCheck(c.Check, c.ErrorId, c.Target)).ToList(),
        }, critical: true);
        if (Moves(request, plan.CurrentRef, plan.TargetRef))
        {
            Critical(() => _journals(request.Environment)?.RecordMove(request, run.Context, plan.CurrentRef!, plan.TargetRef!));
        }

        RollbackResult result = await mechanism.ApplyAsync(request, plan, reporter, cancellationToken).ConfigureAwait(false);
        result = result with { ForcedChecks = forcedChecks };
        bool sent = result.Changes.Count > 0;
        if (sent && result.Outcome is RollbackOutcome.Succeeded or RollbackOutcome.PendingMerge)
        {
            Write(request, reporter, RunPhases.Applied, RunJournal.From(request, run.Context, RunPhases.Applied, plan, result));
            await AnnotateAsync(request, run, result, reporter, cancellationToken).ConfigureAwait(false);
            if (forced is not null)
            {
                await LiftAnnotationAsync(request, forced.Digest, reporter, cancellationToken).ConfigureAwait(false);
            }
        }
        else if (sent)
        {
            Write(request, reporter, RunPhases.Failed, RunJournal.From(request, run.Context, RunPhases.Failed, plan, result));
        }
        return result;
    }

    /// <summary>Takes the mechanism's lock as this run's attempt, and journals a takeover or a broken lock with the old holder.</summary>
    private async Task<IRollbackLock> LockAsync(IRollbackMechanism mechanism, RollbackRequest request, RunPlanning run, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        IRollbackLock held = await mechanism.LockAsync(request, reporter, cancellationToken).ConfigureAwait(false);
        switch (held.Takeover)
        {
            case LeaseTakeover.Broken:
                reporter.Record("OPS", $"Broke the rollback lock ({held.Description}) held by '{held.PreviousHolder}': {request.BreakLockReason}");
                Write(request, reporter, RunPhases.LockBroken, new RunRecord
                {
                    RunId = run.Context.RunId, Attempt = run.Context.Attempt, Environment = request.Environment.Name, Method = request.Method.ToString(), Phase = RunPhases.LockBroken,
                    Holder = held.PreviousHolder, Reason = request.BreakLockReason, Detail = held.Description,
                }, critical: true);
                break;
            case LeaseTakeover.OwnRun:
            case LeaseTakeover.Expired:
                Write(request, reporter, RunPhases.Locked, new RunRecord
                {
                    RunId = run.Context.RunId, Attempt = run.Context.Attempt, Environment = request.Environment.Name, Method = request.Method.ToString(), Phase = RunPhases.Locked,
                    Holder = held.PreviousHolder,
                    Detail = held.Takeover == LeaseTakeover.OwnRun ? $"took over {held.Description} from this run's earlier attempt" : $"took over expired {held.Description}",
                });
                break;
        }
        if (request.BreakLockReason is not null && held.Takeover != LeaseTakeover.Broken)
        {
            reporter.Say($"-BreakLock: {held.Description} was not held by anyone else; nothing was broken.");
        }
        return held;
    }

    /// <summary>A lock lost while waiting is reported with the result (and journaled); the change itself stands.</summary>
    private RollbackResult LockLostDuring(RollbackRequest request, RunPlanning run, IRollbackLock? held, RollbackResult result, RollbackReporter reporter)
    {
        if (held?.LostTo is not { } holder)
        {
            return result;
        }
        string note = $"the rollback lock ({held.Description}) was lost while waiting: it is now held by '{holder}'";
        reporter.Warn($"{request.Environment.Name}: {note}.");
        reporter.Record("OPS", $"{request.Method} rollback of {request.Environment.Name}: {note}");
        Write(request, reporter, RunPhases.LockLost, RunJournal.From(request, run.Context, RunPhases.LockLost, null, result) with { Holder = holder, Detail = note });
        return result with { Detail = result.Detail is null ? note : $"{result.Detail}; {note}" };
    }

    /// <summary>
    /// Ctrl+C (or a stopped job) after a change: the rollout goes on without anyone waiting. Said on
    /// the timeline and in the run, with how to resume: the same command again finds the run.
    /// </summary>
    private RollbackInterruptedException Interrupted(RollbackRequest request, RunPlanning run, RollbackResult applied, RollbackReporter reporter)
    {
        string resume = request.IncidentId is null
            ? $"Wait-KfmRollback with the result of Invoke-KfmRollback (-Environment {request.Environment.Name})"
            : $"run the same command again (it finds run {run.Context.RunId} and waits without sending anything), or Wait-KfmRollback -Environment {request.Environment.Name} -IncidentId {request.IncidentId} -Method {request.Method}";
        string text = $"Interrupted after {Describe(applied)}; the rollout continues; resume: {resume}.";
        reporter.Record("OPS", $"{request.Method} rollback of {request.Environment.Name}: {text}");
        Write(request, reporter, RunPhases.Interrupted, RunJournal.From(request, run.Context, RunPhases.Interrupted, null, applied) with { Detail = text });
        return new RollbackInterruptedException($"{request.Environment.Name}: {text}", applied);
    }

    /// <summary>One line on what went out: the move and every change's object.</summary>
    private static string Describe(RollbackResult applied)
    {
        string move = applied.CurrentRef is not null && applied.RollbackTargetRef is not null && applied.CurrentRef != applied.RollbackTargetRef
            ? $"{ImageRefs.Short(applied.CurrentRef)} → {ImageRefs.Short(applied.RollbackTargetRef)}: " : "";
        return $"the {applied.Method} rollback of {applied.Environment} ({move}{string.Join("; ", applied.Changes.Select(c => $"{c.Action} {c.Object}").Distinct())})";
    }

    /// <summary>A result whose change went out while the journal could not record it says so: the change is never hidden.</summary>
    private static RollbackResult JournalChecked(RollbackResult result, RollbackReporter reporter)
    {
        if (reporter.JournalFailure is not { } failure || result.Error is not null && result.Error.ErrorId == "IncidentJournalWriteFailed")
        {
            return result;
        }
        string what = result.Changes.Count == 0 ? "nothing was changed" : $"these changes were made: {string.Join("; ", result.Changes.Select(c => $"{c.Action} {c.Object}").Distinct())}";
        var error = new KfmException("IncidentJournalWriteFailed", KfmErrorKind.WriteError,
            $"The {result.Method} rollback of {result.Environment} ended {result.Outcome} ({what}), but writing the incident journal failed: {failure.Message} " +
            "The run's write-ahead record lists the change; once the journal is writable, run the same command again: it finds the change and records it, sending nothing twice.", result.Environment, failure);
        return result with { Error = result.Error ?? error, Detail = result.Error is null ? $"{result.Detail}; the incident journal could not record it ({failure.ErrorId})" : result.Detail };
    }

    /// <summary>Writes a run record; a write that must precede a change (<paramref name="critical"/>) stops the run when it fails, any other is kept as the journal failure.</summary>
    private void Write(RollbackRequest request, RollbackReporter reporter, string phase, RunRecord record, bool critical = false)
    {
        if (_journals(request.Environment) is not { } runs || request.Run is not { Recorded: true } context)
        {
            return;
        }
        try
        {
            runs.Write(request, context, phase, record);
        }
        catch (KfmException ex) when (!critical)
        {
            reporter.Failed(ex);
        }
    }

    private static void Critical(Action write) => write();

    private static bool Moves(RollbackRequest request, string? from, string? to) =>
        request.Surfaces.HasFlag(Surfaces.RollbackSurfaces.Image) && ImageRefs.IsDigest(from) && ImageRefs.IsDigest(to) && from != to;

    /// <summary>The quarantine where controllers and people see it: the Deployment's and the GitOps controllers' annotations (best effort; the journal has it).</summary>
    private async Task AnnotateAsync(RollbackRequest request, RunPlanning run, RollbackResult result, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        if (!Moves(request, result.CurrentRef, result.RollbackTargetRef))
        {
            return;
        }
        var entry = new QuarantineEntry
        {
            Digest = result.CurrentRef!,
            Source = QuarantineSources.DeploymentAnnotation,
            IncidentId = request.IncidentId,
            RunId = run.Context.Recorded ? run.Context.RunId : null,
            At = _clock.UtcNow,
            Actor = request.Actor,
            MovedTo = result.RollbackTargetRef,
        };
        // Bookkeeping after the change: a Ctrl+C here must not lose the run its interruption record.
        await QuarantineMarks.AddAsync(_mechanisms.ClusterClient(request.Environment), request.Environment, entry, reporter, CancellationToken.None).ConfigureAwait(false);
    }

    private Task LiftAnnotationAsync(RollbackRequest request, string digest, RollbackReporter reporter, CancellationToken cancellationToken) =>
        QuarantineMarks.RemoveAsync(_mechanisms.ClusterClient(request.Environment), request.Environment, digest, reporter, cancellationToken);

    /// <summary>
    /// Fills in what the engine knows before a mechanism plans: the authority's knowledge of the
    /// environment, the run this request is (and what its earlier attempts did), and, for a run
    /// whose change may have gone out, its recorded target instead of a fresh "previous".
    /// </summary>
    private RunPlanning Prepare(RollbackRequest request, RollbackReporter reporter)
    {
        RunJournal? runs = _journals(request.Environment);
        EnvironmentTrust trust = runs?.Authority.For(request.Environment) ?? EnvironmentTrust.Empty(request.Environment.Name);
        foreach (string note in trust.Notes)
        {
            reporter.Warn($"{request.Environment.Name}: {note}.");
        }
        string named = Named(request.Target);
        IncidentRun? latest = runs?.Latest(request);
        bool recordable = runs?.CanRecord(request) == true;
        RunStage stage = latest is null ? RunStage.Fresh : RunResume.StageOf(latest);
        string attempt = RunContext.NewAttempt();
        RunContext context;
        RunResume? resume = null;
        if (!recordable)
        {
            // No incident in the journal: nothing to find or record; the lease still names the incident given.
            context = new RunContext(request.IncidentId is null ? "(no incident)" : RunContext.Id(request.IncidentId, request.Environment.Name, request.Method, 1), attempt, request.IncidentId, Recorded: false);
        }
        else if (latest is null)
        {
            context = new RunContext(RunContext.Id(request.IncidentId!, request.Environment.Name, request.Method, 1), attempt, request.IncidentId);
        }
        else if (stage is RunStage.Finished or RunStage.Applied && !SameTarget(request, named, latest))
        {
            // The run's change went out, and the operator names another target: a new run of this incident.
            context = new RunContext(RunContext.Id(request.IncidentId!, request.Environment.Name, request.Method, Number(latest.RunId) + 1), attempt, request.IncidentId);
        }
        else
        {
            context = new RunContext(latest.RunId, attempt, request.IncidentId);
            if (stage != RunStage.Fresh)
            {
                if (!SameTarget(request, named, latest))
                {
                    // Only a run killed mid-change gets here: whether its change went out is not known yet.
                    throw new KfmException("RollbackRunInProgress", KfmErrorKind.InvalidOperation,
                        $"Incident {request.IncidentId} already has a {request.Method} rollback of {request.Environment.Name} in progress (run {latest.RunId}, {latest.Phase} at {latest.LastAt.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC, " +
                        $"target {latest.TargetRef ?? latest.Named}), and this request names another target ({named}). Nothing was changed. " +
                        $"Finish that run first: run it again without a target (or with -ToRef {latest.TargetRef}), or Wait-KfmRollback -Environment {request.Environment.Name} -IncidentId {request.IncidentId} -Method {request.Method}.", latest.RunId);
                }
                resume = new RunResume(latest, stage);
            }
        }
        RollbackRequest prepared = request with { Trust = trust, Run = context, Resume = resume };
        if (resume is { Stage: RunStage.InFlight } && ImageRefs.IsImmutable(resume.TargetRef) && request.Target.RevertCommit is null)
        {
            // The change may have gone out: plan towards the recorded target, never a fresh "previous" (which now may be the bad build).
            prepared = prepared with { Target = ImageRefs.IsDigest(resume.TargetRef) ? new RollbackTarget(null, resume.TargetRef) { ReplicaSet = resume.RolloutTarget } : request.Target };
        }
        return new RunPlanning(prepared, context, named, resume?.Stage switch
        {
            RunStage.Finished => RunPlanKind.Finished,
            RunStage.Applied => RunPlanKind.Applied,
            _ => RunPlanKind.Plan,
        });
    }

    private static string Named(RollbackTarget target) =>
        target.RevertCommit is { } sha ? $"revert {sha}" : target.Digest ?? (target.IsPrevious ? "previous" : $"revision {target.Revision}");

    /// <summary>Whether a request names what the run's first request named (or the digest the run went to): then it is a rerun.</summary>
    private static bool SameTarget(RollbackRequest request, string named, IncidentRun run) =>
        request.Target.IsPrevious || named == run.Named || (request.Target.Digest is { } digest && digest == run.TargetRef);

    private static int Number(string runId) =>
        int.TryParse(runId[(runId.LastIndexOf('#') + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) ? n : 1;

    /// <summary>A finished run's rerun: nothing to send while the target system still runs its target; null when it moved since.</summary>
    private async Task<MechanismPlan?> FinishedAsync(IRollbackMechanism mechanism, RunPlanning run, RunResume resume, CancellationToken cancellationToken)
    {
        RollbackRequest request = run.Request;
        string? now = await mechanism.CurrentRefAsync(request, cancellationToken).ConfigureAwait(false);
        RunRecord? done = resume.Run.Records.LastOrDefault(r => r.Phase is RunPhases.Awaited or RunPhases.Verified) ?? resume.Run.Progress;
        RunRecord? applied = resume.Run.Applied;
        string when = $"{(applied ?? done)!.At.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC";
        if (resume.TargetRef is not null && now != resume.TargetRef)
        {
            return null;
        }
        return new MechanismPlan
        {
            Method = request.Method,
            Environment = request.Environment.Name,
            CurrentRef = resume.CurrentRef,
            TargetRef = resume.TargetRef,
            FromRevision = applied?.FromRevision,
            ToRevision = applied?.ToRevision,
            Changes = Array.Empty<PlannedChange>(),
            Summary = $"already rolled back from {resume.CurrentRef} to {resume.TargetRef} at {when} by {applied?.Actor ?? done?.Actor} (incident {request.IncidentId}, run {resume.Run.RunId}); nothing was sent again",
            PlannedAt = _clock.UtcNow,
            Run = run,
        };
    }

    /// <summary>A run whose change went out: nothing to plan or send; RunAsync awaits it (with -Wait).</summary>
    private MechanismPlan Applied(RunPlanning run, RunResume resume)
    {
        RollbackRequest request = run.Request;
        RunRecord record = resume.Run.Applied ?? resume.Run.Progress!;
        return new MechanismPlan
        {
            Method = request.Method,
            Environment = request.Environment.Name,
            CurrentRef = resume.CurrentRef,
            TargetRef = resume.TargetRef,
            FromRevision = record.FromRevision,
            ToRevision = record.ToRevision,
            Changes = Array.Empty<PlannedChange>(),
            Summary = $"already applied at {record.At.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC by {record.Actor} (run {resume.Run.RunId}, {resume.Run.Phase}: {ImageRefs.Short(resume.CurrentRef)} → {ImageRefs.Short(resume.TargetRef)}); " +
                (request.Wait ? "waiting for its rollout without sending anything again" : "nothing was sent again; -Wait (or Wait-KfmRollback) follows its rollout"),
            PlannedAt = _clock.UtcNow,
            Run = run,
        };
    }

    /// <summary>The result a run's records describe: what a killed attempt applied, for Await to follow.</summary>
    private RollbackResult FromRun(RollbackRequest request, IncidentRun run, MechanismPlan? plan = null)
    {
        RunRecord applied = run.Applied ?? run.Applying ?? run.Progress!;
        RollbackOutcome outcome = Enum.TryParse(applied.Outcome, out RollbackOutcome recorded) && recorded is RollbackOutcome.PendingMerge ? RollbackOutcome.PendingMerge : RollbackOutcome.Succeeded;
        return new RollbackResult
        {
            Environment = request.Environment.Name,
            IncidentId = request.IncidentId,
            Method = request.Method,
            ChangedSurfaces = applied.Surfaces.Count > 0 ? applied.Surfaces : Surfaces.SurfaceNames.ReceiptNames(request.Surfaces),
            Outcome = outcome,
            CurrentRef = run.CurrentRef ?? plan?.CurrentRef,
            RollbackTargetRef = run.TargetRef ?? plan?.TargetRef,
            FromRevision = applied.FromRevision ?? plan?.FromRevision,
            ToRevision = applied.ToRevision ?? plan?.ToRevision,
            StartedAt = run.StartedAt,
            CompletedAt = _clock.UtcNow,
            RolloutTarget = run.Records.LastOrDefault(r => r.RolloutTarget is not null)?.RolloutTarget,
            Branch = run.Records.LastOrDefault(r => r.Branch is not null)?.Branch,
            Commit = run.Records.LastOrDefault(r => r.Commit is not null)?.Commit,
            PullRequestUrl = run.Records.LastOrDefault(r => r.PullRequestUrl is not null)?.PullRequestUrl,
            Changes = applied.Changes.Select(c => new PlannedChange(c.Surface, c.Object, c.Action, $"sent by run {run.RunId} (content {c.ContentSha256})")).ToList(),
            Detail = $"already applied by run {run.RunId} ({applied.Phase} at {applied.At.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC)",
            Reason = request.Reason,
            Evidence = request.Evidence,
            // The attempt that forced a check may have died after its change: the receipt of the run still says so.
            ForcedChecks = run.Records.LastOrDefault(r => r.ForcedChecks is not null) is { } forcing
                ? forcing.ForcedChecks!.Select(c => new Receipts.ForcedCheck { Check = c.Check, ErrorId = c.ErrorId, Target = c.Target, Reason = forcing.Reason ?? "" }).ToList()
                : Array.Empty<Receipts.ForcedCheck>(),
        };
    }

    /// <summary>
    /// Runbook step 5's "AND ensure policy tests still cover allow/deny cases": after a policy rollback
    /// has rolled out, the environment's policy cases (policy_surface.cases_file) run against the API.
    /// A flipped case, or OPA running another bundle, fails the rollback with PolicyCasesFailed.
    /// </summary>
    private async Task<RollbackResult> PolicyCasesAsync(RollbackRequest request, RollbackResult applied, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        if (applied.Outcome != RollbackOutcome.Succeeded || !request.Surfaces.HasFlag(Surfaces.RollbackSurfaces.Policy)
            || request.Environment.PolicySurface?.CasesFile is not { } file)
        {
            return applied;
        }
        reporter.Say($"Running the policy cases of {request.Environment.Name} ({file}).");
        TimeSpan activation = request.Timeout < TimeSpan.FromMinutes(1) ? request.Timeout : TimeSpan.FromMinutes(1);
        IReadOnlyList<Verification.CheckResult> results;
        try
        {
            results = await Verification.PolicyCases.RunOnClusterAsync(_mechanisms.ClusterClient(request.Environment), request.Environment, file, activation, cancellationToken).ConfigureAwait(false);
        }
        catch (KfmException ex) when (ex.Kind is KfmErrorKind.ConnectionError or KfmErrorKind.InvalidArgument)
        {
            var error = new KfmException(PolicyCasesFailed, KfmErrorKind.InvalidOperation,
                $"The policy of {request.Environment.Name} was rolled back, but its policy cases could not run: {ex.Message}", request.Environment.Name, ex);
            reporter.Record("OPS", $"Policy cases of {request.Environment.Name} could not run after the policy rollback");
            return applied with { Outcome = RollbackOutcome.Failed, Detail = error.Message, Error = error, CompletedAt = _clock.UtcNow };
        }
        var failed = results.Where(r => r.Verdict == Verification.Verdict.Fail).Select(r => r.Check).ToList();
        int passed = results.Count(r => r.Verdict == Verification.Verdict.Pass && r.Check.StartsWith(Verification.PolicyCases.CasePrefix, StringComparison.Ordinal));
        if (failed.Count > 0)
        {
            string summary = string.Join("; ", results.Where(r => r.Verdict == Verification.Verdict.Fail).Select(r => r.Summary));
            var error = new KfmException(PolicyCasesFailed, KfmErrorKind.InvalidOperation,
                $"The policy of {request.Environment.Name} was rolled back, but the policy cases fail ({string.Join(", ", failed)}): {summary}. " +
                "The API may enforce the wrong policy: fail closed where it is unsafe (Enable-KfmFailClosed), then escalate.", request.Environment.Name);
            reporter.Record("OPS", $"Policy cases of {request.Environment.Name} failed after the policy rollback: {string.Join(", ", failed)}");
            return applied with { Outcome = RollbackOutcome.Failed, Detail = error.Message, Error = error, PolicyCases = results, CompletedAt = _clock.UtcNow };
        }
        string inconclusive = string.Join("; ", results.Where(r => r.Verdict == Verification.Verdict.Inconclusive).Select(r => r.Summary));
        string detail = $"{passed} policy case(s) pass" + (inconclusive.Length > 0 ? $"; inconclusive: {inconclusive}" : "");
        reporter.Record("OPS", $"Policy cases of {request.Environment.Name} after the policy rollback: {detail}");
        return applied with { PolicyCases = results, Detail = applied.Detail is null ? detail : $"{applied.Detail}; {detail}" };
    }

    /// <summary>Error id of a policy rollback whose policy cases fail afterwards.</summary>
    public const string PolicyCasesFailed = "PolicyCasesFailed";

    /// <summary>Wait-KfmRollback: awaits a result applied earlier (a PR merged later), under the mechanism's lock.</summary>
    public async Task<RollbackResult> AwaitAsync(RollbackRequest request, RollbackResult? applied, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        RollbackRules.Validate(request, _textSafety);
        RunPlanning run = Prepare(request, reporter);
        request = run.Request;
        if (applied is null)
        {
            // Wait-KfmRollback -IncidentId: the run's own records say what went out and what to follow.
            if (request.Resume is not { Stage: RunStage.Applied or RunStage.Finished or RunStage.InFlight } resume || resume.Run.Applied is null && resume.Run.Applying is null)
            {
                throw new KfmException("RollbackNothingToAwait", KfmErrorKind.ObjectNotFound,
                    $"Incident {request.IncidentId ?? "(none)"} has no {request.Method} rollback of {request.Environment.Name} in the journal whose change went out, so there is nothing to wait for. " +
                    "Pipe in the result of Invoke-KfmRollback, or run Invoke-KfmRollback (it resumes a run that was interrupted).", request.IncidentId);
            }
            applied = FromRun(request, resume.Run);
        }
        if (applied.Outcome is not (RollbackOutcome.Succeeded or RollbackOutcome.PendingMerge))
        {
            throw new KfmException("RollbackNothingToAwait", KfmErrorKind.InvalidArgument,
                $"The {applied.Method} rollback of {applied.Environment} is {applied.Outcome}: there is nothing to wait for. Pipe in a result that is Succeeded or PendingMerge.", applied.Outcome);
        }
        IRollbackMechanism mechanism = _mechanisms.For(request.Method, request.Environment);
        await using IRollbackLock held = await LockAsync(mechanism, request, run, reporter, cancellationToken).ConfigureAwait(false);
        try
        {
            RollbackResult awaited = await mechanism.AwaitAsync(request, applied, reporter, cancellationToken).ConfigureAwait(false);
            awaited = await PolicyCasesAsync(request, awaited, reporter, cancellationToken).ConfigureAwait(false);
            awaited = LockLostDuring(request, run, held, awaited, reporter);
            Write(request, reporter, RunPhases.Awaited, RunJournal.From(request, run.Context, RunPhases.Awaited, null, awaited));
            return JournalChecked(awaited, reporter);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw Interrupted(request, run, applied, reporter);
        }
    }

    /// <summary>
    /// Plans every request (at most <paramref name="throttle"/> at once); a request that cannot be
    /// planned carries its error, so the caller can refuse the whole fleet before anything changes.
    /// </summary>
    public async Task<IReadOnlyList<FleetPlan>> PlanManyAsync(IReadOnlyList<RollbackRequest> requests, int throttle, Func<RollbackRequest, RollbackReporter> reporters, CancellationToken cancellationToken)
    {
        var plans = new FleetPlan[requests.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, requests.Count), Options(throttle, cancellationToken), async (i, token) =>
        {
            try { plans[i] = new FleetPlan(requests[i], await PlanAsync(requests[i], reporters(requests[i]), token).ConfigureAwait(false), null); }
            catch (KfmException ex) { plans[i] = new FleetPlan(requests[i], null, ex); }
        }).ConfigureAwait(false);
        return plans;
    }

    /// <summary>Runs approved plans, at most <paramref name="throttle"/> at once, handing each result over as it ends.</summary>
    public async Task RunManyAsync(IReadOnlyList<FleetPlan> approved, int throttle, Func<RollbackRequest, RollbackReporter> reporters, Action<RollbackResult> completed, CancellationToken cancellationToken)
    {
        var interrupted = new System.Collections.Concurrent.ConcurrentQueue<RollbackInterruptedException>();
        try
        {
            await Parallel.ForEachAsync(approved, Options(throttle, cancellationToken), async (item, token) =>
            {
                RollbackResult result;
                try { result = await RunAsync(item.Request, item.Plan!, reporters(item.Request), token).ConfigureAwait(false); }
                catch (RollbackInterruptedException ex)
                {
                    interrupted.Enqueue(ex);
                    throw;
                }
                catch (KfmException ex)
                {
                    // One environment failing (a held lock, a timeout) must not hide the others' results.
                    result = item.Plan!.ToResult(item.Request, RollbackOutcome.Failed, _clock.UtcNow, ex.Message, Array.Empty<PlannedChange>()) with { Error = ex };
                }
                completed(result);
            }).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!interrupted.IsEmpty)
        {
            // Parallel.ForEachAsync reports a cancelled token as its own cancellation: what went out must not be lost with it.
            var all = interrupted.ToList();
            throw all.Count == 1 ? all[0] : new RollbackInterruptedException(string.Join(System.Environment.NewLine, all.Select(i => i.Message)), all[0].Applied);
        }
    }

    /// <summary>
    /// Runs a fleet wave by wave: a wave's environments at once (up to <paramref name="throttle"/>),
    /// then its bake time, then <paramref name="verify"/> on each; any failed rollback or verification
    /// stops the fleet there with FleetWaveFailed or FleetVerificationFailed, later waves untouched.
    /// </summary>
    /// <param name="verify">Verification of one environment: null when it passed, else why not (policy-safe words).</param>
    public async Task RunWavesAsync(IReadOnlyList<IReadOnlyList<FleetPlan>> waves, int throttle, TimeSpan bakeTime,
        Func<Configuration.EnvironmentConfig, CancellationToken, Task<string?>>? verify, Func<RollbackRequest, RollbackReporter> reporters,
        Action<RollbackResult> completed, Action<string> say, CancellationToken cancellationToken)
    {
        for (int w = 0; w < waves.Count; w++)
        {
            string later = w + 1 < waves.Count ? $" Waves {w + 2}-{waves.Count} were not started." : "";
            var failed = new List<string>();
            await RunManyAsync(waves[w], throttle, reporters, result =>
            {
                if (result.Outcome is not (RollbackOutcome.Succeeded or RollbackOutcome.NoOp or RollbackOutcome.PendingMerge))
                {
                    lock (failed) { failed.Add(result.Environment); }
                }
                completed(result);
            }, cancellationToken).ConfigureAwait(false);
            // Each failed result carries its own error; stopping matters only when later waves would follow.
            if (failed.Count > 0 && w + 1 < waves.Count)
            {
                throw new KfmException("FleetWaveFailed", KfmErrorKind.InvalidOperation,
                    $"Wave {w + 1} did not roll back in {string.Join(", ", failed.Order(StringComparer.Ordinal))}.{later} Fail closed where the API is unsafe (Enable-KfmFailClosed), then escalate.", w + 1);
            }
            if (bakeTime > TimeSpan.Zero)
            {
                say($"Wave {w + 1} rolled back; baking for {bakeTime} before verifying.");
                await Task.Delay(bakeTime, cancellationToken).ConfigureAwait(false);
            }
            if (verify is null)
            {
                continue;
            }
            foreach (FleetPlan item in waves[w])
            {
                if (await verify(item.Request.Environment, cancellationToken).ConfigureAwait(false) is { } why)
                {
                    throw new KfmException("FleetVerificationFailed", KfmErrorKind.InvalidOperation,
                        $"Wave {w + 1} failed verification in {item.Request.Environment.Name}: {why}.{later} Look at Test-KfmRollback -Environment {item.Request.Environment.Name}; fail closed if the API is unsafe.", item.Request.Environment.Name);
                }
            }
            say($"Wave {w + 1} verified.");
        }
    }

    private static ParallelOptions Options(int throttle, CancellationToken cancellationToken) =>
        new() { MaxDegreeOfParallelism = Math.Max(1, throttle), CancellationToken = cancellationToken };

    /// <summary>Test-KfmAccess: the permissions the method's mechanism needs, asked of the apiserver.</summary>
    public Task<IReadOnlyList<AccessCheck>> CheckAccessAsync(RollbackRequest request, CancellationToken cancellationToken)
    {
        IReadOnlyList<AccessRequirement> needs = _mechanisms.For(request.Method, request.Environment).Requirements(request)
            .Concat(Incidents.IncidentJournals.AccessNeeds(request.Environment)).ToList();
        if (needs.Count == 0)
        {
            throw new KfmException("AccessCheckUnsupported", KfmErrorKind.InvalidArgument,
                $"Test-KfmAccess checks Kubernetes permissions, which the {request.Method} method does not use; it needs push access to the GitOps repository.", request.Method);
        }
        return AccessPreflight.CheckAsync(_mechanisms.ClusterClient(request.Environment), request.Environment.Name, needs, cancellationToken);
    }
}

/// <summary>One environment of a fleet: its request and either its plan or why it could not be planned.</summary>
public sealed record FleetPlan(RollbackRequest Request, MechanismPlan? Plan, KfmException? Error);

/// <summary>How the engine treats a plan: send it, or (from the journal) await a change that went out, or report a finished run.</summary>
public enum RunPlanKind
{
    Plan,
    Applied,
    Finished,
}

/// <summary>The engine's preparation of a request, carried from PlanAsync to RunAsync on the plan.</summary>
public sealed record RunPlanning(RollbackRequest Request, RunContext Context, string Named, RunPlanKind Kind)
{
    /// <summary>A quarantined target the operator forced (-Force -ForceReason): recorded and released when applied.</summary>
    public QuarantineEntry? ForcedQuarantine { get; init; }
}

/// <summary>
/// Ctrl+C (or a stopped job) after a change went out: the rollout continues without anyone waiting.
/// The message says what went out and how to resume; the cmdlet prints it and stops the pipeline.
/// </summary>
public sealed class RollbackInterruptedException : OperationCanceledException
{
    public RollbackInterruptedException(string message, RollbackResult applied) : base(message) => Applied = applied;

    /// <summary>What had gone out when the interruption came.</summary>
    public RollbackResult Applied { get; }
}
