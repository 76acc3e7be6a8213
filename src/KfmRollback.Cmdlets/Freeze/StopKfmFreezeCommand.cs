using System.Management.Automation;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Freeze;
using KfmRollback.Engine.Refs;
using KfmRollback.Engine.Incidents;

namespace KfmRollback.Cmdlets.Freeze;

/// <summary>
/// Lifts an incident's freeze, restoring exactly the settings recorded when it was applied once no
/// other open incident holds it; while one does, the controllers stay frozen and the cmdlet says which.
/// </summary>
[Cmdlet(VerbsLifecycle.Stop, "KfmFreeze", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(FreezeSummary))]
public sealed class StopKfmFreezeCommand : FreezeCmdlet
{
    /// <summary>
    /// Why the freeze ends. Typed, never taken from a piped incident: with -Force it is the reason for
    /// lifting other incidents' holds, recorded on their timelines.
    /// </summary>
    [Parameter]
    public string? Reason { get; set; }

    /// <summary>
    /// Skips the confirmation; with -Reason, also lifts the freeze although other open incidents hold it,
    /// and although Git pins a quarantined digest (both recorded on the timeline).
    /// </summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void ProcessRecordCore()
    {
        var environment = RequireEnvironment();
        if (!TryDecideChange($"deploy mechanisms of {environment.Name}", "Thaw deploys (GitOps controllers will sync again)", out bool dryRun, Force))
        {
            return;
        }
        // Overriding another incident's hold is a decision to put on the record: -Force alone only skips the prompt.
        bool overrideHolders = Force && !string.IsNullOrWhiteSpace(Reason);
        FreezeService freezes = Freezes;
        var request = freezes.Request(IncidentId, Reason ?? "rollback verified", force: overrideHolders);
        // Thaw only into a desired state that does not redeploy a quarantined build (-Force -Reason overrides, on the record).
        var authority = Authority(environment);
        (FreezeSummary summary, ThawDesiredState? desired) = RunAsync(token => freezes.ThawAsync(environment, SelectedKinds(), request, overrideHolders ? Reason : null, dryRun,
            () => RefSources.For(RefSource.GitOps).ReadAsync(new RefQuery(environment, IncidentId: IncidentId), authority, token).GetAwaiter().GetResult(), TimelineWriter(), token, OtherIncidentTimeline()));
        foreach (FreezeState state in summary.Mechanisms)
        {
            if (dryRun)
            {
                WriteWhatIf($"{state.Target}: {state.Detail}");
            }
            else if (state.Frozen && state.Holders.Count > 0)
            {
                WriteWarning($"{state.Target} stays frozen: held by {string.Join(", ", state.Holders)}. It thaws when {(state.Holders.Count == 1 ? "that incident stops its" : "those incidents stop their")} freeze " +
                    $"(Stop-KfmFreeze -IncidentId {state.Holders[0].IncidentId}); Stop-KfmFreeze -Force -Reason '<why>' lifts it for all, on the record.");
            }
            else if (state.Overridden.Count > 0)
            {
                WriteWarning($"{state.Target} thawed although {string.Join(", ", state.Overridden)} held it (forced); recorded on {(state.Overridden.Count == 1 ? "its" : "their")} timeline.");
            }
        }
        if (desired?.NotChecked is { } notChecked)
        {
            WriteWarning(notChecked + ".");
        }
        if (!dryRun)
        {
            WriteObject(summary);
        }
    }

    /// <summary>Writes to a holder's timeline when it is in this journal; a holder kept elsewhere is named on ours only.</summary>
    private Action<string, string, string> OtherIncidentTimeline()
    {
        IncidentJournal journal = OpenJournal();
        string actor = Actor.Current();
        return (incident, role, text) =>
        {
            try { journal.AppendTimeline(incident, role, text, actor); }
            catch (KfmException ex) when (ex.ErrorId is "IncidentNotFound" or "IncidentIdInvalid") { }
        };
    }
}
