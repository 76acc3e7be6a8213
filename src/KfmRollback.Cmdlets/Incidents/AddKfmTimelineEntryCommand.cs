using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Incidents;

namespace KfmRollback.Cmdlets.Incidents;

/// <summary>Adds one <c>HH:MM UTC  ROLE  event</c> line to an incident's timeline.</summary>
[Cmdlet(VerbsCommon.Add, "KfmTimelineEntry", SupportsShouldProcess = true)]
[OutputType(typeof(TimelineEntry))]
public sealed class AddKfmTimelineEntryCommand : KfmConfiguredCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Id")]
    public string IncidentId { get; set; } = string.Empty;

    [Parameter(Mandatory = true, Position = 1)]
    public string Event { get; set; } = string.Empty;

    [Parameter]
    public string Role { get; set; } = "OPS";

    [Parameter]
    public DateTimeOffset? At { get; set; }

    protected override void ProcessRecordCore()
    {
        IncidentJournal journal = OpenJournal();
        // What cmdlets record as changes is reserved to them: the incident updates take it as proof.
        TimelineFacts.EnsureNotStepEvent(Event);
        if (!ShouldProcess($"incident {IncidentId}", $"Add timeline entry ({Role})"))
        {
            return;
        }
        WriteObject(journal.AppendTimeline(IncidentId, Role, Event, Actor.Current(), At));
    }
}
