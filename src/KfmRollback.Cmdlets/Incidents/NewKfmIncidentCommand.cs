using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Incidents;

namespace KfmRollback.Cmdlets.Incidents;

/// <summary>Opens an incident (or finds the same one again after a restarted job).</summary>
[Cmdlet(VerbsCommon.New, "KfmIncident", SupportsShouldProcess = true)]
[OutputType(typeof(Incident))]
public sealed class NewKfmIncidentCommand : KfmConfiguredCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("IncidentId")]
    public string Id { get; set; } = string.Empty;

    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true)]
    public string Commander { get; set; } = string.Empty;

    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true)]
    public string Reason { get; set; } = string.Empty;

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public DateTimeOffset? StartedAt { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string[] ImpactedEndpoint { get; set; } = Array.Empty<string>();

    protected override void ProcessRecordCore()
    {
        var request = new IncidentRequest
        {
            IncidentId = Id,
            Commander = Commander,
            Reason = Reason,
            Environment = ResolveEnvironmentName(required: false),
            StartedAt = StartedAt?.ToUniversalTime(),
            ImpactedEndpoints = ImpactedEndpoint.Select(ImpactedEndpointParser.Parse).ToList(),
        };
        IncidentJournal journal = OpenJournal();
        if (!ShouldProcess($"incident {Id} in {journal.JournalPath}", "Open incident"))
        {
            return;
        }
        IncidentOpenResult result = journal.Open(request, Actor.Current());
        WriteVerbose(result.Created
            ? $"Opened incident {Id} in {journal.JournalPath}."
            : $"Incident {Id} was already open in {journal.JournalPath}; continuing it.");
        WriteObject(result.Incident);
    }
}
