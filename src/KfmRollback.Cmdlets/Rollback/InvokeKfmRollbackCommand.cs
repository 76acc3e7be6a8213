using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Rollback;

namespace KfmRollback.Cmdlets.Rollback;

/// <summary>Rolls the API back to its last-known-good (runbook steps 2-5), in one environment or a fleet.</summary>
[Cmdlet(VerbsLifecycle.Invoke, "KfmRollback", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = RollbackParameters.PreviousSet)]
[OutputType(typeof(RollbackResult))]
public sealed class InvokeKfmRollbackCommand : RollbackParameters
{
    private readonly List<RollbackRequest> _requests = new();

    protected override void ProcessRecordCore()
    {
        // Requests are built (and checked) per input; the work runs once all input is in, so a fleet
        // is planned whole before any environment changes.
        foreach (var environment in ResolveEnvironments())
        {
            _requests.Add(BuildRequest(environment));
        }
    }

    protected override void EndProcessingCore()
    {
        if (_requests.Count == 0) { return; }
        var engine = RollbackEngine.Default;
        var plans = RunAsync(token => engine.PlanManyAsync(_requests, ThrottleLimit, Reporter, token));
        var failed = plans.Where(p => p.Error is not null).ToList();
        if (failed.Count == 1 && plans.Count == 1) { throw failed[0].Error!; }
        if (failed.Count > 0)
        {
            failed.ForEach(f => WriteError(ErrorRecords.From(f.Error!)));
            throw new Engine.Core.KfmException("FleetPlanFailed", Engine.Core.KfmErrorKind.InvalidOperation,
                $"{failed.Count} of {plans.Count} environments could not be planned ({string.Join(", ", failed.Select(f => f.Request.Environment.Name))}), so none was changed. Resolve the errors above, then run again.");
        }

        var approved = new List<FleetPlan>();
        foreach (var item in plans)
        {
            switch (DecideChange(Target(item.Request), $"{item.Request.Method} rollback: {item.Plan!.Summary}"))
            {
                case ChangeMode.WhatIf:
                    item.Plan.Changes.ToList().ForEach(c => WriteWhatIf($"{item.Request.Environment.Name}: {c}"));
                    if (item.Plan.NoOp) { WriteWhatIf($"{item.Request.Environment.Name}: {item.Plan.Summary}"); }
                    break;
                case ChangeMode.Apply:
                    approved.Add(item);
                    break;
            }
        }
        RunAsync(async token =>
        {
            await engine.RunManyAsync(approved, ThrottleLimit, Reporter, result => OnPipelineThread(() => Write(result)), token).ConfigureAwait(false);
            return true;
        });
        WriteProgress(new ProgressRecord(1, "Rolling back", "done") { RecordType = ProgressRecordType.Completed });
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
        Progress = (status, percent) => OnPipelineThread(() => WriteProgress(new ProgressRecord(1 + _requests.IndexOf(request), $"Rolling back {request.Environment.Name}", status) { PercentComplete = percent })),
        Timeline = TimelineWriter(request.IncidentId, request.Environment),
    };

    private static string Target(RollbackRequest request) => request.Method switch
    {
        RollbackMethod.GitOps => $"GitOps repository of {request.Environment.Name} ({request.Environment.Gitops.Branch}:{request.Environment.Gitops.File})",
        _ => $"deployment {request.Environment.Cluster.Namespace}/{request.Environment.Cluster.Deployment} in {request.Environment.Name}",
    };
}
