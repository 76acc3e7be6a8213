using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.FailClosed;

namespace KfmRollback.Cmdlets.FailClosed;

/// <summary>Lets the API serve again, restoring exactly what Enable-KfmFailClosed recorded.</summary>
[Cmdlet(VerbsLifecycle.Disable, "KfmFailClosed", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(FailClosedState))]
public sealed class DisableKfmFailClosedCommand : KfmEnvironmentCmdlet
{
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void ProcessRecordCore()
    {
        var environment = RequireEnvironment();
        if (!TryDecideChange($"the API in {environment.Name}", "Serve again (undo fail-closed)", out bool dryRun, Force))
        {
            return;
        }
        FailClosedState state;
        try
        {
            state = RunAsync(token => new FailClosedService(EngineContext).DisableAsync(environment, dryRun, token));
        }
        catch (KfmRollback.Engine.Core.KfmException ex) when (ex.ErrorId == "FailClosedRecoveryNotConfirmed")
        {
            TimelineWriter()("OPS", $"Recovery from fail-closed of {environment.Name} ({environment.FailClosed?.Mode}) SENT but NOT CONFIRMED");
            throw;
        }
        if (dryRun)
        {
            WriteWhatIf($"{state.Target}: {state.Detail}");
            return;
        }
        if (state.Changed)
        {
            TimelineWriter()("OPS", $"Serving again in {environment.Name}: fail-closed ({state.Mode}) lifted, prior state restored");
        }
        WriteObject(state);
    }
}
