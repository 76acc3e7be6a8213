using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Cluster;

namespace KfmRollback.Cmdlets.Refs;

/// <summary>
/// The Deployment's revisions, as `kubectl rollout history` lists them, with digests and dependencies;
/// with -Source Helm the Helm release's revisions, as `helm history` lists them, with digests.
/// </summary>
[Cmdlet(VerbsCommon.Get, "KfmRolloutHistory")]
[OutputType(typeof(RolloutRevision), typeof(KfmRollback.Engine.Helm.HelmRevision))]
public sealed class GetKfmRolloutHistoryCommand : KfmEnvironmentCmdlet
{
    /// <summary>Cluster (the Deployment's ReplicaSets) or Helm (the release Secrets).</summary>
    [Parameter]
    [ValidateSet(nameof(ApiRefSource.Cluster), nameof(ApiRefSource.Helm))]
    public ApiRefSource Source { get; set; } = ApiRefSource.Cluster;

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Container { get; set; }

    [Parameter]
    public long? Revision { get; set; }

    protected override void ProcessRecordCore()
    {
        var environment = RequireEnvironment();
        if (Source == ApiRefSource.Helm)
        {
            var releases = RunAsync(token => KfmRollback.Engine.Helm.HelmOperations.ReadHistoryAsync(environment, Container, token));
            WriteObject(Revision is null ? releases : releases.Where(r => r.Revision == Revision), enumerateCollection: true);
            return;
        }
        var history = RunAsync(token => ClusterOperations.ReadHistoryAsync(environment, Container, token));
        WriteObject(Revision is null ? history : history.Where(r => r.Revision == Revision), enumerateCollection: true);
    }
}
