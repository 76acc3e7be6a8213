using System.Management.Automation;
using KfmRollback.Engine.Freeze;

namespace KfmRollback.Cmdlets.Freeze;

/// <summary>Freezes deploys (runbook step 0): Argo CD auto-sync off, Flux suspended, kill switch on.</summary>
[Cmdlet(VerbsLifecycle.Start, "KfmFreeze", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(FreezeSummary))]
public sealed class StartKfmFreezeCommand : FreezeCmdlet
{
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Reason { get; set; }

    /// <summary>Also snapshot the evidence (Save-KfmEvidence -Stage freeze) once deploys are frozen.</summary>
    [Parameter]
    public SwitchParameter Evidence { get; set; }

    protected override void ProcessRecordCore()
    {
        var environment = RequireEnvironment();
        string reason = Reason ?? TryGetIncident()?.Reason ?? "incident response";
        if (!TryDecideChange($"deploy mechanisms of {environment.Name} ({string.Join(", ", environment.Freeze.Mechanisms.Select(m => m.Kind))})", "Freeze deploys", out bool dryRun))
        {
            return;
        }
        FreezeService freezes = Freezes;
        var request = freezes.Request(IncidentId, reason);
        Action<string, string> timeline = TimelineWriter();
        FreezeSummary summary = RunAsync(token => freezes.ApplyAsync(environment, SelectedKinds(), freeze: true, request, dryRun, timeline, token));
        foreach (FreezeState state in summary.Mechanisms)
        {
            if (dryRun) { WriteWhatIf($"{state.Target}: {state.Detail}"); }
            if (!state.Freezable) { WriteWarning($"{state.Target} is not freezable this way: {state.Detail}"); }
            if (state.Action == FreezeAction.Joined)
            {
                // Two incidents on one environment: the freeze now lasts until both have stopped theirs.
                WriteWarning($"{state.Target} was already frozen for {string.Join(", ", state.Holders.Where(h => !string.Equals(h.IncidentId, request.IncidentId, StringComparison.OrdinalIgnoreCase)))}; " +
                    $"{request.IncidentId} holds it too, and it stays frozen until every holder stops its freeze.");
            }
        }
        if (!dryRun)
        {
            // The running configuration, as evidence and as what a config rollback can come back to.
            // The freeze itself has happened: a snapshot that cannot be taken is a warning, not a failure.
            try
            {
                var snapshots = RunAsync(token => KfmRollback.Engine.Rollback.Surfaces.SurfaceRollback.SnapshotRunningAsync(EngineContext, environment, token));
                foreach (var state in snapshots)
                {
                    WriteVerbose($"{state.Kind} {state.Name}: {state.Action} {state.ContentSha256}");
                }
            }
            catch (KfmRollback.Engine.Core.KfmException ex)
            {
                WriteWarning($"Deploys are frozen, but the runtime configuration could not be snapshotted: {ex.Message}");
            }
            if (Evidence)
            {
                var bundle = SaveEvidence(environment, "freeze", verification: null, path: null);
                WriteVerbose($"Evidence bundle {bundle.Digest} saved in {bundle.Directory}");
            }
            WriteObject(summary);
        }
    }
}
