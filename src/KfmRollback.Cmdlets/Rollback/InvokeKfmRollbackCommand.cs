using KfmRollback.Engine.Adapters.Http;
using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Verification;

namespace KfmRollback.Cmdlets.Rollback;

/// <summary>Rolls the API back to its last-known-good (runbook steps 2-5), in one environment, many, or a fleet in waves.</summary>
[Cmdlet(VerbsLifecycle.Invoke, "KfmRollback", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(RollbackResult))]
public sealed class InvokeKfmRollbackCommand : RollbackParameters
{
    private readonly List<(RollbackRequest Request, int Wave)> _requests = new();

    /// <summary>
    /// From Test-KfmDrift: the kind of drift this input is. Only a digest difference (which also binds
    /// the live digest as -ToRef) re-aligns Git; any other drift item is skipped, never rolled back.
    /// </summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Drift { get; set; }

    protected override void ProcessRecordCore()
    {
        if (!string.IsNullOrWhiteSpace(Drift))
        {
            if (Method != RollbackMethodName.GitOps)
            {
                throw new KfmException("DriftNeedsGitOps", KfmErrorKind.InvalidArgument,
                    $"A drift item re-aligns Git with production; pipe it to Invoke-KfmRollback -Method GitOps (got -Method {Method}).", Drift);
            }
            if (string.IsNullOrWhiteSpace(ToRef) || ToRevision is not null)
            {
                WriteVerbose($"Drift '{Drift}' is not a digest difference: nothing to re-align by rollback.");
                return;
            }
        }
        // Requests are built (and checked) per input; the work runs once all input is in, so a fleet
        // is planned whole before any environment changes.
        foreach (var (environment, wave) in Targets())
        {
            _requests.Add((BuildRequest(environment), wave));
        }
    }

    protected override void EndProcessingCore()
    {
        if (_requests.Count == 0) { return; }
        var engine = RollbackEngine();
        var plans = RunAsync(token => engine.PlanManyAsync(_requests.Select(r => r.Request).ToList(), ThrottleLimit, Reporter, token));
        var failed = plans.Where(p => p.Error is not null).ToList();
        if (failed.Count == 1 && plans.Count == 1) { throw failed[0].Error!; }
        if (failed.Count > 0)
        {
            failed.ForEach(f => WriteError(ErrorRecords.From(f.Error!)));
            throw new KfmException("FleetPlanFailed", KfmErrorKind.InvalidOperation,
                $"{failed.Count} of {plans.Count} environments could not be planned ({string.Join(", ", failed.Select(f => f.Request.Environment.Name))}), so none was changed. Resolve the errors above, then run again.");
        }
        foreach (FleetPlan plan in plans)
        {
            plan.Plan!.Preflight.ToList().ForEach(c => WriteVerbose($"{plan.Request.Environment.Name}: preflight {c}"));
            plan.Plan.Preflight.Where(c => c.Verdict == Engine.Rollback.Preflight.PreflightVerdict.Forced).ToList()
                .ForEach(c => WriteWarning($"{plan.Request.Environment.Name}: preflight {c.Check} refused the target ({c.ErrorId}: {c.Saw}); -Force overrides it, and the timeline and the receipt record it."));
        }
        // A failed preflight refuses like a failed plan, the whole fleet before any change (-WhatIf shows it instead).
        var refused = plans.Where(p => p.Plan!.Preflight.Any(c => c.Failed)).ToList();
        if (refused.Count > 0 && !WhatIfRequested())
        {
            if (plans.Count == 1) { throw refused[0].Plan!.Preflight.First(c => c.Failed).ToException(); }
            refused.ForEach(r => WriteError(ErrorRecords.From(r.Plan!.Preflight.First(c => c.Failed).ToException())));
            throw new KfmException("FleetPlanFailed", KfmErrorKind.InvalidOperation,
                $"The preflight failed in {refused.Count} of {plans.Count} environments ({string.Join(", ", refused.Select(f => f.Request.Environment.Name))}), so none was changed. Resolve the errors above, then run again.");
        }
        var waves = plans.Select((plan, i) => (Plan: plan, _requests[i].Wave)).Where(p => Approve(p.Plan))
            .GroupBy(p => p.Wave).OrderBy(g => g.Key).Select(g => (IReadOnlyList<FleetPlan>)g.Select(p => p.Plan).ToList()).ToList();
        var fleet = FleetConfig;
        Func<Engine.Configuration.EnvironmentConfig, CancellationToken, Task<string?>>? verify = fleet?.Verify == true
            ? WaveVerification.HealthAndPolicy(EngineContext, IncidentId, TryGetIncident(plans[0].Request.Environment)?.StartedAt ?? plans[0].Plan!.PlannedAt.AddMinutes(-30),
                BaselineHistory.FromIncidents(OpenJournal(plans[0].Request.Environment).ReadAll(), plans[0].Request.Environment.Name), fleet.BakeTime)
            : null;
        RunAsync(async token =>
        {
            await engine.RunWavesAsync(waves, ThrottleLimit, fleet?.BakeTime ?? TimeSpan.Zero, verify, Reporter,
                result => OnPipelineThread(() => Write(result)), message => OnPipelineThread(() => WriteVerbose(message)), token).ConfigureAwait(false);
            return true;
        });
        WriteProgress(new ProgressRecord(1, "Rolling back", "done") { RecordType = ProgressRecordType.Completed });
    }

    /// <summary>-WhatIf prints the plan's every change; -Confirm asks per environment.</summary>
    private bool Approve(FleetPlan item)
    {
        string name = item.Request.Environment.Name;
        switch (DecideChange(Target(item.Request), $"{item.Request.Method} rollback: {item.Plan!.Summary}"))
        {
            case ChangeMode.WhatIf:
                item.Plan.Changes.ToList().ForEach(c => WriteWhatIf($"{name}: {c}"));
                if (item.Plan.NoOp) { WriteWhatIf($"{name}: {item.Plan.Summary}"); }
                foreach (var check in item.Plan.Preflight)
                {
                    WriteWhatIf($"{name}: preflight {check}");
                    if (check.Failed) { WriteError(ErrorRecords.From(check.ToException())); }
                }
                return false;
            case ChangeMode.Apply:
                return true;
            default:
                return false;
        }
    }

    private void Write(RollbackResult result)
    {
        if (result.Error is { } error) { WriteError(ErrorRecords.From(error)); }
        else if (result.Outcome == RollbackOutcome.NoOp) { WriteWarning(result.Detail); }
        WriteObject(result);
    }

    private RollbackReporter Reporter(RollbackRequest request) => new()
    {
        Verbose = message => OnPipelineThread(() => WriteVerbose($"{request.Environment.Name}: {message}")),
        Progress = (status, percent) => OnPipelineThread(() => WriteProgress(new ProgressRecord(1 + _requests.FindIndex(r => r.Request == request), $"Rolling back {request.Environment.Name}", status) { PercentComplete = percent })),
        Timeline = TimelineWriter(request.IncidentId, request.Environment),
        Warning = message => OnPipelineThread(() => WriteWarning(message)),
    };
}
