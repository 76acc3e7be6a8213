using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.FailClosed;

namespace KfmRollback.Cmdlets.FailClosed;

/// <summary>Stops the API serving (scale to zero or maintenance 503) when a rollback did not make it safe.</summary>
[Cmdlet(VerbsLifecycle.Enable, "KfmFailClosed", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(FailClosedState))]
public sealed class EnableKfmFailClosedCommand : KfmEnvironmentCmdlet
{
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Reason { get; set; }

    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void ProcessRecordCore()
    {
        var environment = RequireEnvironment();
        string mode = environment.FailClosed?.Mode.ToString() ?? "unconfigured";
        if (!TryDecideChange($"the API in {environment.Name}", $"Fail closed ({mode}): the API stops serving", out bool dryRun, Force))
        {
            return;
        }
        string reason = Reason ?? TryGetIncident()?.Reason ?? "rollback did not restore a safe state";
        FailClosedState state;
        try
        {
            state = RunAsync(token => new FailClosedService(EngineContext).EnableAsync(environment, IncidentId, Actor.Current(), reason, dryRun, token));
        }
        catch (KfmException ex) when (ex.ErrorId == "FailClosedNotConfirmed")
        {
            // The change went out: the timeline records it, and that its effect is unconfirmed.
            TimelineWriter()("OPS", $"Fail-closed of {environment.Name} ({mode}, {FailClosedService.TargetOf(environment, environment.FailClosed!)}) SENT but NOT CONFIRMED: {reason}");
            throw;
        }
        if (dryRun)
        {
            WriteWhatIf($"{state.Target}: {state.Detail}");
            return;
        }
        if (state.Reapplied)
        {
            TimelineWriter()("OPS", $"FAILED CLOSED again {environment.Name} ({state.Mode}, {state.Target}): it had drifted; re-applied, read back {state.Live}");
        }
        else if (state.Changed)
        {
            TimelineWriter()("OPS", $"FAILED CLOSED {environment.Name} ({state.Mode}, {state.Target}): {reason}; read back {state.Live}");
        }
        WriteObject(state);
    }
}
