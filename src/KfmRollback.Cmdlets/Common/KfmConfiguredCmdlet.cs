using System.Management.Automation;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Incidents;

namespace KfmRollback.Cmdlets.Common;

/// <summary>
/// Base for cmdlets that read the configuration and the incident journal. Every such cmdlet
/// accepts -ConfigPath and -Environment, and takes -JournalPath from the pipeline so an incident
/// opened with a custom journal keeps using it downstream.
/// </summary>
public abstract class KfmConfiguredCmdlet : KfmCmdlet
{
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(EnvironmentNameCompleter))]
    public string? Environment { get; set; }

    [Parameter]
    public string? ConfigPath { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? JournalPath { get; set; }

    protected string? ResolveEnvironmentName(bool required) => ConfigSession.ResolveEnvironmentName(this, Environment, ConfigPath, required);

    protected IncidentJournal OpenJournal()
    {
        string path = !string.IsNullOrWhiteSpace(JournalPath)
            ? GetUnresolvedProviderPathFromPSPath(JournalPath)
            : ConfigSession.JournalPath(this, ConfigPath) ?? KfmPaths.DefaultIncidentJournal();
        return new IncidentJournal(path, EngineServices.TextSafety);
    }
}
