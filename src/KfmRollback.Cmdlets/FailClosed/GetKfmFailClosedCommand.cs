using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.FailClosed;

namespace KfmRollback.Cmdlets.FailClosed;

/// <summary>Shows whether the API is really failed closed: the live replicas or flag, compared with the mode's target.</summary>
[Cmdlet(VerbsCommon.Get, "KfmFailClosed")]
[OutputType(typeof(FailClosedState))]
public sealed class GetKfmFailClosedCommand : KfmEnvironmentCmdlet
{
    protected override void ProcessRecordCore()
    {
        var environment = RequireEnvironment();
        FailClosedState state = RunAsync(token => new FailClosedService(EngineContext).GetAsync(environment, token));
        if (state.Drifted)
        {
            WriteWarning($"{environment.Name}: recorded as failed closed, but the live state is {state.Live}: the API may be serving. Enable-KfmFailClosed applies it again.");
        }
        WriteObject(state);
    }
}
