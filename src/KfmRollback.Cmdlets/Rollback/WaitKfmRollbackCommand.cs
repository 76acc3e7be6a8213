using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Rollback;

namespace KfmRollback.Cmdlets.Rollback;

/// <summary>
/// Follows a rollback applied earlier to the end (runbook step 2 past "pull request opened"): for
/// GitOps the merge, the controlled thaw, the reconcile of exactly that revision and the rollout.
/// Given -IncidentId instead of a result, it follows the incident's run the journal records (an
/// Invoke-KfmRollback -Wait interrupted after its change).
/// </summary>
[Cmdlet(VerbsLifecycle.Wait, "KfmRollback", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = ResultSet)]
[OutputType(typeof(RollbackResult))]
public sealed class WaitKfmRollbackCommand : KfmEnvironmentCmdlet
{
    private const string ResultSet = "Result";
    private const string RunSet = "Run";

    /// <summary>The result of Invoke-KfmRollback (PendingMerge or Succeeded).</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = ResultSet)]
    public RollbackResult InputObject { get; set; } = null!;

    /// <summary>With -IncidentId and no result: the method of the incident's run to follow.</summary>
    [Parameter(Mandatory = true, ParameterSetName = RunSet)]
    public RollbackMethodName Method { get; set; }

    [Parameter]
    public MergeStrategyName? MergeWith { get; set; }

    [Parameter]
    [DurationTransformation]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(30);

    protected override void ProcessRecordCore()
    {
        var environment = RequireEnvironment();
        RollbackResult? input = ParameterSetName == ResultSet ? InputObject : null;
        if (input is null && string.IsNullOrWhiteSpace(IncidentId))
        {
            throw new KfmException("RollbackIncidentRequired", KfmErrorKind.InvalidArgument,
                "Wait-KfmRollback follows a result piped in, or an incident's run from the journal: pass -IncidentId with -Method.");
        }
        var request = new RollbackRequest
        {
            Environment = environment,
            Method = input?.Method ?? Method.ToEngine(),
            IncidentId = input?.IncidentId ?? IncidentId,
            Actor = Actor.Current(),
            Reason = input?.Reason,
            Wait = true,
            MergeWith = MergeWith.ToEngine(),
            Timeout = Timeout,
        };
        RollbackRules.Validate(request, EngineContext.TextSafety);
        string action = MergeWith is null ? "wait for the merge, then deploy exactly the merged commit (controlled thaw)" : $"merge ({MergeWith}) and deploy exactly the merged commit (controlled thaw)";
        string what = input is null ? $"run of incident {request.IncidentId}" : input.Branch ?? input.RolloutTarget ?? "its result";
        if (DecideChange($"{request.Method} rollback of {environment.Name} ({what})", action) != ChangeMode.Apply)
        {
            return;
        }
        var reporter = new RollbackReporter
        {
            Verbose = message => OnPipelineThread(() => WriteVerbose(message)),
            Progress = (status, percent) => OnPipelineThread(() => WriteProgress(new ProgressRecord(1, $"Waiting for the rollback of {environment.Name}", status) { PercentComplete = percent })),
            Timeline = TimelineWriter(request.IncidentId, environment),
            Warning = message => OnPipelineThread(() => WriteWarning(message)),
        };
        RollbackResult result = RunAsync(token => RollbackEngine().AwaitAsync(request, input, reporter, token));
        WriteProgress(new ProgressRecord(1, $"Waiting for the rollback of {environment.Name}", "done") { RecordType = ProgressRecordType.Completed });
        if (result.Error is { } error) { WriteError(ErrorRecords.From(error)); }
        WriteObject(result);
    }
}
