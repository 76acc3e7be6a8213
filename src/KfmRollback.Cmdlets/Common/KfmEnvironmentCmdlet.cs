using System.Management.Automation;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Incidents;

namespace KfmRollback.Cmdlets.Common;

/// <summary>
/// Base for cmdlets that act on one configured environment: resolves it (failing closed when
/// several exist and none is named), carries the incident id along the pipeline and writes the
/// incident timeline.
/// </summary>
public abstract class KfmEnvironmentCmdlet : KfmConfiguredCmdlet
{
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? IncidentId { get; set; }

    protected EnvironmentConfig RequireEnvironment() => ResolveEnvironment(required: true)!;

    /// <summary>
    /// Appends to the incident's timeline from any thread. An incident that is not in the journal
    /// is reported once (as a warning) and skipped: the change itself must not fail for that.
    /// </summary>
    protected Action<string, string> TimelineWriter() => TimelineWriter(IncidentId);

    /// <summary>The same, for an incident other than the bound one (each input of a pipeline has its own).</summary>
    protected Action<string, string> TimelineWriter(string? incidentId, EnvironmentConfig? environment = null)
    {
        if (string.IsNullOrWhiteSpace(incidentId))
        {
            return (_, _) => { };
        }
        IncidentJournal journal = OpenJournal(environment);
        string incident = incidentId;
        string actor = Actor.Current();
        int warned = 0;
        return (role, text) =>
        {
            try
            {
                journal.AppendTimeline(incident, role, text, actor);
            }
            catch (KfmException ex) when (ex.ErrorId == "IncidentNotFound")
            {
                if (Interlocked.Exchange(ref warned, 1) == 0)
                {
                    OnPipelineThread(() => WriteWarning($"Incident {incident} is not in journal {journal.JournalPath}; timeline entries are not recorded. Open it with New-KfmIncident or pass -JournalPath."));
                }
            }
        };
    }

    /// <summary>The incident from the journal, when it is there (for its reason and commander).</summary>
    protected Incident? TryGetIncident(EnvironmentConfig? environment = null)
    {
        if (string.IsNullOrWhiteSpace(IncidentId))
        {
            return null;
        }
        try { return OpenJournal(environment).Get(IncidentId); }
        catch (KfmException) { return null; }
    }
}
