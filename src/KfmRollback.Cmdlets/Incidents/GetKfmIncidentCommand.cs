using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Incidents;

namespace KfmRollback.Cmdlets.Incidents;

/// <summary>Reads incidents back from the journal, with their timelines.</summary>
[Cmdlet(VerbsCommon.Get, "KfmIncident")]
[OutputType(typeof(Incident))]
public sealed class GetKfmIncidentCommand : KfmConfiguredCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("IncidentId")]
    public string? Id { get; set; }

    protected override void ProcessRecordCore()
    {
        IncidentJournal journal = OpenJournal();
        if (string.IsNullOrEmpty(Id))
        {
            WriteObject(journal.ReadAll(), enumerateCollection: true);
            return;
        }
        WriteObject(journal.Get(Id));
    }
}
