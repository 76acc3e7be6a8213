using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Rollback;

namespace KfmRollback.Cmdlets.Rollback;

/// <summary>
/// Follows a rollback applied earlier to the end (runbook step 2 past "pull request opened"): for
/// GitOps the merge, the controlled thaw, the reconcile of exactly that revision and the rollout.
/// </summary>
[Cmdlet(VerbsLifecycle.Wait, "KfmRollback", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(RollbackResult))]
public sealed class WaitKfmRollbackCommand : KfmEnvironmentCmdlet
{
    /// <summary>The result of Invoke-KfmRollback (PendingMerge or Succeeded).</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true)]
    public RollbackResult InputObject { get; set; } = null!;

    [Parameter]
    public MergeStrategyName? MergeWith { get; set; }

    [Parameter]
    [DurationTransformation]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(30);

    protected override void ProcessRecordCore()
    {
        var environment = RequireEnvironment();
        var request = new RollbackRequest
        {
            Environment = environment,
            Method = InputObject.Method,
            IncidentId = InputObject.IncidentId ?? IncidentId,
            Actor = Actor.Current(),
            Reason = InputObject.Reason,
            Wait = true,
            MergeWith = MergeWith.ToEngine(),
            Timeout = Timeout,
        };
        RollbackRules.Validate(request);
        string action = MergeWith is null ? "wait for the merge, then deploy exactly the merged commit (controlled thaw)" : $"merge ({MergeWith}) and deploy exactly the merged commit (controlled thaw)";
        if (DecideChange($"{InputObject.Method} rollback of {environment.Name} ({InputObject.Branch ?? InputObject.RolloutTarget})", action) != ChangeMode.Apply)
        {
            return;
        }
        var reporter = new RollbackReporter
        {
            Verbose = message => OnPipelineThread(() => WriteVerbose(message)),
            Progress = (status, percent) => OnPipelineThread(() => WriteProgress(new ProgressRecord(1, $"Waiting for the rollback of {environment.Name}", status) { PercentComplete = percent })),
            Timeline = TimelineWriter(request.IncidentId, environment),
        };
        RollbackResult result = RunAsync(token => RollbackEngine.Default.AwaitAsync(request, InputObject, reporter, token));
        WriteProgress(new ProgressRecord(1, $"Waiting for the rollback of {environment.Name}", "done") { RecordType = ProgressRecordType.Completed });
        if (result.Error is { } error) { WriteError(ErrorRecords.From(error)); }
        WriteObject(result);
    }
}
