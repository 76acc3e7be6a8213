using KfmRollback.Engine.Receipts;
using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Rollback;

namespace KfmRollback.Cmdlets.Rollback;

/// <summary>
/// Invoke-KfmRollback's parameters and their translation into the engine's one request. The target
/// parameters all bind from the pipeline (an ApiRef's LastKnownGoodRef, a plan's ToRevision or
/// ToRef), where an empty property must not count as a choice, so they are not parameter sets:
/// which target and which method go together is the engine's RollbackRules, one rule for all.
/// </summary>
public abstract class RollbackParameters : KfmGitCmdlet
{
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true)]
    public RollbackMethodName Method { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public RollbackSurfaceName[] Surface { get; set; } = { RollbackSurfaceName.Image };

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public long? ToRevision { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("LastKnownGoodRef")]
    public string? ToRef { get; set; }

    /// <summary>GitOps: revert this deploy commit instead of pinning a digest.</summary>
    [Parameter]
    public string? Revert { get; set; }

    /// <summary>GitOps: what the rollback affects, for the commit trailer and the PR.</summary>
    [Parameter]
    public string BlastRadius { get; set; } = "api";

    /// <summary>GitOps: push straight to the deploy branch (only where gitops.allow_direct_push allows it).</summary>
    [Parameter]
    public SwitchParameter DirectPush { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Reason { get; set; }

    /// <summary>The decision tree's comparisons (from Get-KfmRollbackPlan), kept on the result for the receipt.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true, DontShow = true)]
    public object[]? Evidence { get; set; }

    [Parameter]
    public SwitchParameter Wait { get; set; }

    /// <summary>
    /// Cluster with -Wait: raise maxSurge to 100% (maxUnavailable 0) for this rollout only when the
    /// namespace's quota allows it, then restore the Deployment's own strategy (docs/rollback-runs.md).
    /// </summary>
    [Parameter]
    public SwitchParameter Fast { get; set; }

    /// <summary>GitOps with -Wait: merge the rollback PR this way once approved (where gitops.pr.auto_merge allows).</summary>
    [Parameter]
    public MergeStrategyName? MergeWith { get; set; }

    [Parameter]
    [DurationTransformation]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>A fleet from the configuration's fleets: its waves, bake time and verification.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Fleet { get; set; }

    /// <summary>How many environments of a fleet roll back at once.</summary>
    [Parameter]
    [ValidateRange(1, 256)]
    public int ThrottleLimit { get; set; } = 16;

    [Parameter]
    public SwitchParameter Force { get; set; }

    [Parameter]
    public string? ForceReason { get; set; }

    /// <summary>
    /// Take the rollback lock from another holder known dead (a killed job, a lost session), on the
    /// record: needs -Reason on the command line (a reason piped in from the incident does not count)
    /// and an incident; the old holder and the reason are journaled.
    /// </summary>
    [Parameter]
    public SwitchParameter BreakLock { get; set; }

    private string? _reasonOnCommandLine;

    /// <summary>Only what was typed on the command line can say why a lock may be broken, not the incident's reason bound from the pipeline.</summary>
    protected override void BeginProcessing()
    {
        _reasonOnCommandLine = MyInvocation.BoundParameters.ContainsKey(nameof(Reason)) ? Reason : null;
        base.BeginProcessing();
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    protected FleetConfig? FleetConfig => Fleet is null ? null : LoadConfig(required: true)!.GetFleet(Fleet);

    /// <summary>The environments to roll back, each with its wave (0 unless -Fleet orders them).</summary>
    protected IEnumerable<(EnvironmentConfig Environment, int Wave)> Targets()
    {
        if (Fleet is null)
        {
            return ResolveEnvironments().Select(e => (e, 0));
        }
        if (Environment is { Length: > 0 })
        {
            throw new KfmException("FleetWithEnvironment", KfmErrorKind.InvalidArgument,
                $"-Fleet {Fleet} names its environments in the configuration; drop -Environment, or drop -Fleet to choose environments yourself.", Fleet);
        }
        KfmConfig config = LoadConfig(required: true)!;
        return FleetConfig!.Waves.SelectMany((wave, i) => wave.Environments.Select(name => (config.GetEnvironment(name), i)));
    }

    private string BreakLockReason()
    {
        if (string.IsNullOrWhiteSpace(_reasonOnCommandLine))
        {
            throw new KfmException("BreakLockReasonMissing", KfmErrorKind.InvalidArgument,
                "-BreakLock takes another holder's rollback lock, on the record: say why that holder is known dead with -Reason '<why>' on the command line " +
                "(the incident's reason piped in does not count). The reason and the old holder are written to the incident's journal.");
        }
        if (string.IsNullOrWhiteSpace(IncidentId))
        {
            throw new KfmException("BreakLockIncidentRequired", KfmErrorKind.InvalidArgument,
                "-BreakLock is journaled with the old holder on an incident: pass -IncidentId (or pipe the incident in).");
        }
        if (Method == RollbackMethodName.GitOps)
        {
            throw new KfmException("BreakLockNeedsLease", KfmErrorKind.InvalidArgument,
                "-Method GitOps takes no lock (Git refuses a second non-forced push), so there is none to break. Drop -BreakLock.");
        }
        EngineContext.TextSafety.EnsurePolicySafe(_reasonOnCommandLine, "Reason");
        return _reasonOnCommandLine.Trim();
    }

    protected static string Target(RollbackRequest request) => request.Method switch
    {
        RollbackMethod.GitOps => $"GitOps repository of {request.Environment.Name} ({request.Environment.Gitops.Branch}:{request.Environment.Gitops.File})",
        RollbackMethod.Helm => $"Helm release {request.Environment.Helm?.Release} and deployment {request.Environment.Cluster.Namespace}/{request.Environment.Cluster.Deployment} in {request.Environment.Name}",
        _ => $"deployment {request.Environment.Cluster.Namespace}/{request.Environment.Cluster.Deployment} in {request.Environment.Name}",
    };

    protected RollbackRequest BuildRequest(EnvironmentConfig environment)
    {
        var request = new RollbackRequest
        {
            Environment = environment,
            Method = Method.ToEngine(),
            IncidentId = IncidentId,
            Actor = Actor.Current(),
            Reason = Reason ?? TryGetIncident(environment)?.Reason,
            Target = new RollbackTarget(ToRevision, NullIfEmpty(ToRef), NullIfEmpty(Revert)),
            Container = Container,
            Surfaces = Surface.ToEngine(),
            Force = Force,
            ForceReason = ForceReason,
            Wait = Wait,
            Fast = Fast,
            MergeWith = MergeWith.ToEngine(),
            Timeout = Timeout,
            BlastRadius = BlastRadius,
            DirectPush = DirectPush,
            GitCredential = GitCredential,
            Evidence = PipelineObjects.Unwrap<PlanEvidence>(Evidence),
            BreakLockReason = BreakLock ? BreakLockReason() : null,
        };
        RollbackRules.Validate(request, EngineContext.TextSafety);
        return request;
    }
}
