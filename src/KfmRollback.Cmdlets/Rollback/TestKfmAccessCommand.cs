using KfmRollback.Engine.Adapters.Kubernetes;
using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Rollback;

namespace KfmRollback.Cmdlets.Rollback;

/// <summary>Checks, without changing anything, that the current identity may do every verb a rollback needs.</summary>
[Cmdlet(VerbsDiagnostic.Test, "KfmAccess")]
[OutputType(typeof(AccessCheck), typeof(bool))]
public sealed class TestKfmAccessCommand : KfmEnvironmentCmdlet
{
    [Parameter]
    public RollbackMethodName Method { get; set; } = RollbackMethodName.Cluster;

    [Parameter]
    public SwitchParameter Wait { get; set; } = true;

    /// <summary>Also the permissions Invoke-KfmRollback -Fast needs (its quota check and dry-run pod).</summary>
    [Parameter]
    public SwitchParameter Fast { get; set; }

    [Parameter]
    public SwitchParameter Quiet { get; set; }

    protected override void ProcessRecordCore()
    {
        var environment = RequireEnvironment();
        var request = new RollbackRequest { Environment = environment, Method = Method.ToEngine(), Actor = Actor.Current(), Wait = Wait, Fast = Fast };
        var checks = RunAsync(token => new Engine.Rollback.RollbackEngine(new Engine.Rollback.RollbackMechanisms(EngineContext), EngineContext.Clock, textSafety: EngineContext.TextSafety).CheckAccessAsync(request, token));
        if (Quiet)
        {
            WriteObject(checks.All(c => c.Allowed));
            return;
        }
        WriteObject(checks, enumerateCollection: true);
    }
}
