using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Incidents;

namespace KfmRollback.Cmdlets.Incidents;

/// <summary>
/// Writes a policy-safe incident update from the runbook's template and records in the timeline
/// that it was posted. The text is fixed wording plus stage, impact and times: nothing an operator
/// types, so nothing restricted, reaches it; and the stage's claim must be one the incident's
/// timeline supports (StageClaims), so no update says what the timeline contradicts.
/// </summary>
[Cmdlet(VerbsCommon.New, "KfmIncidentUpdate", SupportsShouldProcess = true)]
[OutputType(typeof(IncidentUpdate))]
public sealed class NewKfmIncidentUpdateCommand : KfmConfiguredCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Id")]
    public string IncidentId { get; set; } = string.Empty;

    [Parameter(Mandatory = true, Position = 1)]
    public IncidentStageName Stage { get; set; }

    [Parameter]
    public ImpactAreaName[] Impact { get; set; } = Array.Empty<ImpactAreaName>();

    [Parameter]
    [DurationTransformation]
    public TimeSpan? NextUpdateIn { get; set; }

    /// <summary>Compose the update without recording it in the timeline (a draft).</summary>
    [Parameter]
    public SwitchParameter NoRecord { get; set; }

    protected override void ProcessRecordCore()
    {
        IncidentJournal journal = OpenJournal();
        Incident incident = journal.Get(IncidentId);   // an update for an incident nobody opened is a typo
        // The stage's claim must be what the timeline records (a Resolved update after a failed verification is refused).
        IncidentUpdate update = IncidentUpdates.ComposeFor(incident, Stage.ToEngine(), Impact.ToEngine(), NextUpdateIn, DateTimeOffset.UtcNow);
        if (!NoRecord && ShouldProcess($"incident {incident.IncidentId}", $"Record incident update ({update.Stage})"))
        {
            journal.AppendTimeline(incident.IncidentId, "COMMS", update.TimelineEvent, Actor.Current(), update.At);
        }
        WriteObject(update);
    }
}
