using KfmRollback.Engine.Aftermath;
using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Incidents;

namespace KfmRollback.Cmdlets.Aftermath;

/// <summary>Shared by the cmdlets that work from an incident's evidence (report, follow-up): -Path and -EvidencePath.</summary>
public abstract class AftermathCmdlet : KfmEnvironmentCmdlet
{
    /// <summary>Output directory; default: reports/&lt;incident&gt; in the evidence directory.</summary>
    [Parameter]
    public string? Path { get; set; }

    /// <summary>Where the incident's evidence bundles are; default: evidence.directory, else next to the receipt store.</summary>
    [Parameter]
    public string? EvidencePath { get; set; }

    /// <summary>The environment, its incident, the incident's bundles (oldest first), the output directory and the evidence store.</summary>
    protected (EnvironmentConfig Environment, Incident Incident, IReadOnlyList<EvidenceBundle> Bundles, string Directory, EvidenceStore Store) ResolveAftermath()
    {
        var environment = RequireEnvironment();
        var incident = RequireIncident(environment);
        var store = EvidenceService.StoreFor(environment, EvidencePath is null ? null : GetUnresolvedProviderPathFromPSPath(EvidencePath));
        string directory = Path is null ? System.IO.Path.Combine(store.Root, "reports", incident.IncidentId) : GetUnresolvedProviderPathFromPSPath(Path);
        return (environment, incident, store.ForIncident(incident.IncidentId), directory, store);
    }
}
