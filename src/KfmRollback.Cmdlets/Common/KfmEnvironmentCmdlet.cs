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
        // Engine-made entries name objects and URLs: they pass the one redaction before they are journalled.
        Engine.Safety.Redactor redactor = environment is null ? Engine.Safety.Redactor.Default : Engine.Configuration.Redactors.For(environment);
        string incident = incidentId;
        string actor = Actor.Current();
        int warned = 0;
        return (role, text) =>
        {
            try
            {
                journal.AppendTimeline(incident, role, redactor.Text(text), actor);
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

    /// <summary>
    /// Captures an evidence bundle for the bound incident (Save-KfmEvidence, Start-KfmFreeze -Evidence)
    /// and records its digest on the timeline, the anchor the receipt and report refer to.
    /// </summary>
    protected KfmRollback.Engine.Aftermath.EvidenceBundle SaveEvidence(EnvironmentConfig environment, string stage, Engine.Verification.VerificationSummary? verification, string? path)
    {
        Incident incident = RequireIncident(environment);
        var store = KfmRollback.Engine.Aftermath.EvidenceService.StoreFor(environment, path is null ? null : GetUnresolvedProviderPathFromPSPath(path));
        var request = new KfmRollback.Engine.Aftermath.EvidenceRequest
        {
            IncidentId = incident.IncidentId,
            IncidentStart = incident.StartedAt,
            Stage = stage,
            Timeline = incident.Timeline,
            Verification = verification,
            Trust = Authority(environment).For(environment),
        };
        var bundle = RunAsync(token => KfmRollback.Engine.Aftermath.EvidenceService.CaptureAsync(EngineContext, environment, request, store, VerboseSink, token));
        TimelineWriter(incident.IncidentId, environment)("OPS", $"Evidence saved ({stage}): bundle {bundle.Digest} ({bundle.Files.Count} files)");
        return bundle;
    }

    /// <summary>The last-known-good authority over this command's journal and the environment's verified receipts.</summary>
    protected Engine.Refs.LastKnownGoodAuthority Authority(EnvironmentConfig environment) => RunJournal(environment).Authority;

    private readonly Dictionary<string, Engine.Rollback.Runs.RunJournal> _runJournals = new(StringComparer.Ordinal);

    /// <summary>The environment's journal as rollback runs use it (one per environment and command).</summary>
    protected Engine.Rollback.Runs.RunJournal RunJournal(EnvironmentConfig environment)
    {
        lock (_runJournals)
        {
            if (!_runJournals.TryGetValue(environment.Name, out var runs))
            {
                IncidentJournal journal = OpenJournal(environment);
                runs = new Engine.Rollback.Runs.RunJournal(journal, new Engine.Refs.LastKnownGoodAuthority(journal));
                _runJournals[environment.Name] = runs;
            }
            return runs;
        }
    }

    /// <summary>
    /// The rollback engine for this command: the module's mechanisms, each environment's journal for
    /// run records and the last-known-good, and the test-only pause points (PhaseHook).
    /// </summary>
    protected Engine.Rollback.RollbackEngine RollbackEngine() =>
        new(new Engine.Rollback.RollbackMechanisms(EngineContext), EngineContext.Clock, runs: RunJournal, hook: Engine.Rollback.Runs.PhaseHook.FromEnvironment(), textSafety: EngineContext.TextSafety);

    /// <summary>The bound incident; evidence, reports and follow-ups cannot exist without one.</summary>
    protected Incident RequireIncident(EnvironmentConfig environment) =>
        TryGetIncident(environment) ?? throw new KfmException("IncidentRequired", KfmErrorKind.ObjectNotFound,
            $"{MyInvocation.MyCommand.Name} works on an incident: pass -IncidentId of an incident in the journal (or pipe New-KfmIncident / Get-KfmIncident).", IncidentId);

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
