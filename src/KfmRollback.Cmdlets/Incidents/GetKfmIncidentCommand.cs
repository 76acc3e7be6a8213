using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Incidents;

namespace KfmRollback.Cmdlets.Incidents;

/// <summary>Reads incidents back from the journal, with their timelines.</summary>
[Cmdlet(VerbsCommon.Get, "KfmIncident")]
[OutputType(typeof(Incident))]
[OutputType(typeof(RunPhase), ParameterSetName = new[] { "Phases" })]
public sealed class GetKfmIncidentCommand : KfmConfiguredCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("IncidentId")]
    public string? Id { get; set; }

    /// <summary>Writes each rollback run's phases (detect, decide, freeze, apply, converge, verified) and its time to safe instead of the incident.</summary>
    [Parameter(ParameterSetName = "Phases")]
    public SwitchParameter Phases { get; set; }

    protected override void ProcessRecordCore()
    {
        IncidentJournal journal = OpenJournal();
        IReadOnlyList<Incident> incidents = string.IsNullOrEmpty(Id) ? journal.ReadAll() : new[] { journal.Get(Id) };
        if (!Phases)
        {
            WriteObject(incidents, enumerateCollection: true);
            return;
        }
        foreach (Incident incident in incidents)
        {
            IReadOnlyList<RunPhaseTimes> runs = RunPhaseTimes.Of(incident);
            if (runs.Count == 0 && !string.IsNullOrEmpty(Id))
            {
                WriteError(ErrorRecords.From(new Engine.Core.KfmException("IncidentHasNoRun", Engine.Core.KfmErrorKind.ObjectNotFound,
                    $"Incident {incident.IncidentId} has no rollback run that sent a change, so it has no phases yet. Roll back with Invoke-KfmRollback -IncidentId {incident.IncidentId}.",
                    incident.IncidentId)));
            }
            foreach (RunPhaseTimes run in runs)
            {
                WriteObject(run.Phases, enumerateCollection: true);
            }
        }
    }
}
