using KfmRollback.Engine.Adapters.Kubernetes;
using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Refs;

namespace KfmRollback.Cmdlets.Refs;

/// <summary>
/// The Deployment's revisions, as `kubectl rollout history` lists them, with digests and dependencies;
/// with -Source Helm the Helm release's revisions, as `helm history` lists them, with digests.
/// </summary>
[Cmdlet(VerbsCommon.Get, "KfmRolloutHistory")]
[OutputType(typeof(RolloutRevision), typeof(KfmRollback.Engine.Refs.HelmRevision))]
public sealed class GetKfmRolloutHistoryCommand : KfmContainerCmdlet
{
    /// <summary>Cluster (the Deployment's ReplicaSets) or Helm (the release Secrets).</summary>
    [Parameter]
    [ValidateSet(nameof(ApiRefSource.Cluster), nameof(ApiRefSource.Helm))]
    public ApiRefSource Source { get; set; } = ApiRefSource.Cluster;

    [Parameter]
    public long? Revision { get; set; }

    protected override void ProcessRecordCore()
    {
        var environment = RequireEnvironment();
        var history = RunAsync(token => RefSources.For(Source.ToEngine()).HistoryAsync(new RefQuery(environment, Container), Revision, token));
        WriteObject(history, enumerateCollection: true);
    }
}
