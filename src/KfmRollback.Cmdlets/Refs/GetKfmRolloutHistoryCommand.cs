using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Cluster;

namespace KfmRollback.Cmdlets.Refs;

/// <summary>The Deployment's revisions, as `kubectl rollout history` lists them, with digests and dependencies.</summary>
[Cmdlet(VerbsCommon.Get, "KfmRolloutHistory")]
[OutputType(typeof(RolloutRevision))]
public sealed class GetKfmRolloutHistoryCommand : KfmEnvironmentCmdlet
{
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Container { get; set; }

    [Parameter]
    public long? Revision { get; set; }

    protected override void ProcessRecordCore()
    {
        var environment = RequireEnvironment();
        var history = RunAsync(token => ClusterOperations.ReadHistoryAsync(environment, Container, token));
        WriteObject(Revision is null ? history : history.Where(r => r.Revision == Revision), enumerateCollection: true);
    }
}
