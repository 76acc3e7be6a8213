using KfmRollback.Engine.Aftermath;
using System.Management.Automation;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Cmdlets.Aftermath;

/// <summary>
/// Post-rollback actions: one follow-up per incident (GitHub issue, Azure DevOps work item, or a
/// checklist file) with the runbook's items and what is still pending, flagged for governance
/// review when the evidence or verification showed a policy failure. Recorded in the timeline.
/// </summary>
[Cmdlet(VerbsCommon.New, "KfmFollowUp", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(FollowUpResult))]
public sealed class NewKfmFollowUpCommand : AftermathCmdlet
{
    protected override void ProcessRecordCore()
    {
        var (environment, incident, bundles, directory, store) = ResolveAftermath();
        FollowUpPlan plan = FollowUpService.Plan(incident, environment.Name, bundles, Redactors.For(environment));
        string provider = environment.FollowUp?.Provider.ToString() ?? "checklist file";
        ChangeMode change = DecideChange($"incident {incident.IncidentId} ({provider})", "Open the follow-up" + (plan.GovernanceReview ? " with a governance review" : ""));
        if (change == ChangeMode.WhatIf)
        {
            WriteWhatIf(plan.Title + System.Environment.NewLine + plan.Body);
        }
        if (change != ChangeMode.Apply)
        {
            return;
        }
        FollowUpResult result = RunAsync(token => FollowUpService.OpenAsync(plan, environment.FollowUp, directory, handler: null, token));
        // A checklist file is named relative to the evidence store (the timeline and the report outlive this machine's paths); a tracker's item by its URL.
        string location = result.Provider == "none" ? store.NameOf(result.Location) : result.Location;
        TimelineWriter(incident.IncidentId, environment)("OPS", $"Follow-up {(result.Created ? "opened" : "already open")}: {location}" +
            (result.GovernanceReview ? $"; governance review REQUIRED ({string.Join("; ", result.GovernanceReasons)})" : "; no governance review needed"));
        WriteObject(result);
    }
}
