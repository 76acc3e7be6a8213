using System.Management.Automation;
using KfmRollback.Engine.Freeze;

namespace KfmRollback.Cmdlets.Freeze;

/// <summary>Lifts a freeze, restoring exactly the settings recorded when it was applied.</summary>
[Cmdlet(VerbsLifecycle.Stop, "KfmFreeze", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(FreezeSummary))]
public sealed class StopKfmFreezeCommand : FreezeCmdlet
{
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Reason { get; set; }

    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void ProcessRecordCore()
    {
        var environment = RequireEnvironment();
        ChangeMode change = DecideChange($"deploy mechanisms of {environment.Name}", "Thaw deploys (GitOps controllers will sync again)", Force);
        if (change == ChangeMode.Declined)
        {
            return;
        }
        bool dryRun = change == ChangeMode.WhatIf;
        var request = FreezeOperations.Request(IncidentId, Reason ?? "rollback verified");
        FreezeSummary summary = RunAsync(token => FreezeOperations.ApplyAsync(environment, SelectedKinds(), freeze: false, request, dryRun, Mechanisms, TimelineWriter(), token));
        if (dryRun)
        {
            foreach (FreezeState state in summary.Mechanisms)
            {
                WriteWhatIf($"{state.Target}: {state.Detail}");
            }
            return;
        }
        WriteObject(summary);
    }
}
