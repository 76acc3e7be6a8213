using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine;
using KfmRollback.Engine.Cluster;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Freeze;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Rollback.Cluster;

namespace KfmRollback.Cmdlets.Rollback;

/// <summary>Rolls the API back to its last-known-good (runbook steps 2-5).</summary>
[Cmdlet(VerbsLifecycle.Invoke, "KfmRollback", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = PreviousSet)]
[OutputType(typeof(RollbackResult))]
public sealed class InvokeKfmRollbackCommand : KfmEnvironmentCmdlet
{
    private const string PreviousSet = "Previous";
    private const string RevisionSet = "ToRevision";
    private const string RefSet = "ToRef";
    private const string RevertSet = "Revert";

    [Parameter(Mandatory = true)]
    public RollbackMethodName Method { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public RollbackSurfaceName[] Surface { get; set; } = { RollbackSurfaceName.Image };

    [Parameter(Mandatory = true, ParameterSetName = RevisionSet)]
    public long ToRevision { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = RefSet, ValueFromPipelineByPropertyName = true)]
    [Alias("LastKnownGoodRef")]
    public string ToRef { get; set; } = string.Empty;

    /// <summary>GitOps: revert this deploy commit instead of pinning a digest.</summary>
    [Parameter(Mandatory = true, ParameterSetName = RevertSet)]
    public string Revert { get; set; } = string.Empty;

    /// <summary>GitOps: what the rollback affects, for the commit trailer and the PR.</summary>
    [Parameter]
    public string BlastRadius { get; set; } = "api";

    /// <summary>GitOps: push straight to the deploy branch (only where gitops.allow_direct_push allows it).</summary>
    [Parameter]
    public SwitchParameter DirectPush { get; set; }

    /// <summary>GitOps: credentials for the repository over HTTPS.</summary>
    [Parameter]
    [Credential]
    public PSCredential? Credential { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Container { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Reason { get; set; }

    [Parameter]
    public SwitchParameter Wait { get; set; }

    [Parameter]
    [DurationTransformation]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(10);

    [Parameter]
    public SwitchParameter Force { get; set; }

    [Parameter]
    public string? ForceReason { get; set; }

    protected override void ProcessRecordCore()
    {
        var environment = RequireEnvironment();
        if (Method == RollbackMethodName.GitOps)
        {
            RollBackThroughGit(environment);
            return;
        }
        if (ParameterSetName == RevertSet)
        {
            throw new KfmException("RollbackRevertNeedsGitOps", KfmErrorKind.InvalidArgument,
                "-Revert reverts a deploy commit in the GitOps repository; use it with -Method GitOps.", Revert);
        }
        if (ParameterSetName == RefSet && !ImageRefs.IsDigest(ToRef))
        {
            throw new KfmException("RollbackTargetNotDigest", KfmErrorKind.InvalidArgument,
                $"-ToRef must be an image digest (sha256: and 64 hex characters); '{ToRef}' is not. Get-KfmRolloutHistory shows the digest of each revision.", ToRef);
        }

        var request = new ClusterRollbackRequest
        {
            Environment = environment,
            IncidentId = IncidentId,
            Actor = Actor.Current(),
            Reason = Reason ?? TryGetIncident()?.Reason,
            Target = ParameterSetName switch
            {
                RevisionSet => new RollbackTarget(ToRevision, null),
                RefSet => new RollbackTarget(null, ToRef),
                _ => RollbackTarget.Previous,
            },
            Container = Container,
            Surfaces = Surface.ToEngine(),
            Force = Force,
            ForceReason = ForceReason,
            DryRun = false,
            Wait = Wait,
            Timeout = Timeout,
            ClusterFreezes = FreezeMechanisms.Default.ClusterControllers(environment),
        };

        string target = $"deployment {environment.Cluster.Namespace}/{environment.Cluster.Deployment} in {environment.Name}";
        ChangeMode change = DecideChange(target, $"Cluster rollback to {DescribeTarget()}");
        if (change == ChangeMode.Declined)
        {
            return;
        }
        bool whatIf = change == ChangeMode.WhatIf;

        request = request with { DryRun = whatIf };
        var reporter = new RollbackReporter
        {
            Verbose = VerboseSink,
            Progress = (status, percent) => OnPipelineThread(() => WriteProgress(new ProgressRecord(1, $"Rolling back {environment.Name}", status) { PercentComplete = percent })),
            Timeline = whatIf ? null : TimelineWriter(),
        };
        RollbackResult result = RunAsync(token => ClusterOperations.RollbackAsync(request, reporter, token));
        WriteProgress(new ProgressRecord(1, $"Rolling back {environment.Name}", "done") { RecordType = ProgressRecordType.Completed });

        if (whatIf)
        {
            // -WhatIf shows the exact change and stops; nothing was written.
            WriteWhatIf(result.Outcome == RollbackOutcome.NoOp ? result.Detail! : $"{result.Detail}; JSON patch:{System.Environment.NewLine}{result.Change}");
            return;
        }
        if (result.Error is { } error)
        {
            WriteError(ErrorRecords.From(error));
        }
        else if (result.Outcome == RollbackOutcome.NoOp)
        {
            WriteWarning(result.Detail);
        }
        WriteObject(result);
    }

    /// <summary>The preferred path: a rollback branch and pull request in the GitOps repository.</summary>
    private void RollBackThroughGit(KfmRollback.Engine.Configuration.EnvironmentConfig environment)
    {
        if (ParameterSetName == RevisionSet)
        {
            throw new KfmException("RollbackRevisionNeedsCluster", KfmErrorKind.InvalidArgument,
                "-ToRevision names a Deployment revision, which only -Method Cluster knows; with -Method GitOps use -ToRef <digest> or -Revert <commit>.", ToRevision);
        }
        if (string.IsNullOrWhiteSpace(IncidentId))
        {
            throw new KfmException("RollbackIncidentRequired", KfmErrorKind.InvalidArgument,
                "A GitOps rollback names its incident in the branch, commit and pull request: pass -IncidentId or pipe the incident in.");
        }
        string target = $"GitOps repository of {environment.Name} ({environment.Gitops.Branch}:{environment.Gitops.File})";
        ChangeMode change = DecideChange(target, ParameterSetName == RevertSet ? $"Revert {Revert} on a rollback branch and open a pull request" : $"Pin {(ParameterSetName == RefSet ? ToRef : "the last-known-good digest")} on a rollback branch and open a pull request");
        if (change == ChangeMode.Declined)
        {
            return;
        }
        string reason = Reason ?? TryGetIncident()?.Reason ?? "incident response";
        RollbackResult result = RunAsync(token => KfmRollback.Engine.GitOps.GitOpsOperations.RollbackAsync(environment, IncidentId!, reason,
            ParameterSetName == RefSet ? ToRef : null, ParameterSetName == RevertSet ? Revert : null, BlastRadius, change == ChangeMode.WhatIf, DirectPush,
            Credential?.UserName, Credential?.GetNetworkCredential().Password, token));
        if (change == ChangeMode.WhatIf)
        {
            WriteWhatIf($"{result.Detail}{System.Environment.NewLine}{result.Change}");
            return;
        }
        Action<string, string> timeline = TimelineWriter();
        timeline("OPS", result.Outcome switch
        {
            RollbackOutcome.PendingMerge => $"GitOps rollback of {environment.Name}: branch {result.Branch} pushed, pull request {result.PullRequestUrl ?? "(none)"}",
            RollbackOutcome.Succeeded => $"GitOps rollback of {environment.Name}: pushed {result.Commit} to {environment.Gitops.Branch}",
            _ => $"GitOps rollback of {environment.Name}: {result.Outcome}: {result.Detail}",
        });
        if (result.Error is { } error) { WriteError(ErrorRecords.From(error)); }
        WriteObject(result);
    }

    private string DescribeTarget() => ParameterSetName switch
    {
        RevisionSet => $"revision {ToRevision}",
        RefSet => ToRef,
        _ => "the previous revision",
    };
}
