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
        bool dryRun = MyInvocation.BoundParameters.ContainsKey("WhatIf");
        if (!dryRun && !(Force || ShouldProcess($"the API in {environment.Name}", "Serve again (undo fail-closed)")))
        {
            return;
        }
        FailClosedState state = RunAsync(token => FailClosedOperations.For(environment).DisableAsync(environment, dryRun, token));
        if (dryRun)
        {
            Host.UI.WriteLine($"What if: {state.Target}: {state.Detail}");
            return;
        }
        if (state.Changed)
        {
            TimelineWriter()("OPS", $"Serving again in {environment.Name}: fail-closed ({state.Mode}) lifted, prior state restored");
        }
        WriteObject(state);
    }
}
