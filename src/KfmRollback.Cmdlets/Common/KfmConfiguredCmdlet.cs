using System.Management.Automation;
using KfmRollback.Engine.Configuration;
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
    private KfmConfig? _config;
    private bool _configLoaded;

    /// <summary>
    /// The environment(s) to act on. Most cmdlets take one; those that run fleets
    /// (Invoke-KfmRollback, Get-KfmRollbackPlan) take many and wildcards.
    /// </summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(EnvironmentNameCompleter))]
    [SupportsWildcards]
    public string[]? Environment { get; set; }

    [Parameter]
    public string? ConfigPath { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? JournalPath { get; set; }

    /// <summary>The configuration, loaded once per invocation; null when optional and absent.</summary>
    protected KfmConfig? LoadConfig(bool required)
    {
        if (!_configLoaded || (_config is null && required))
        {
            _config = ConfigSession.Load(this, ConfigPath, required);
            _configLoaded = true;
        }
        return _config;
    }

    protected EnvironmentConfig? ResolveEnvironment(bool required) =>
        ConfigSession.ResolveEnvironment(LoadConfig(required), Environment, required, MyInvocation.MyCommand.Name);

    /// <summary>Every environment -Environment names (wildcards expanded); the only one when none is named.</summary>
    protected IReadOnlyList<EnvironmentConfig> ResolveEnvironments() =>
        ConfigSession.ResolveEnvironments(LoadConfig(required: true)!, Environment);

    protected string? ResolveEnvironmentName(bool required) =>
        ResolveEnvironment(required)?.Name ?? Environment?.Select(NullIfBlank).FirstOrDefault(n => n is not null);

    /// <summary>The incident journal of <paramref name="environment"/> (default: the one -Environment names, else the defaults').</summary>
    protected IncidentJournal OpenJournal(EnvironmentConfig? environment = null)
    {
        bool explicitPath = !string.IsNullOrWhiteSpace(JournalPath);
        environment ??= explicitPath ? null : SingleEnvironmentOrNull();
        string path = explicitPath
            ? GetUnresolvedProviderPathFromPSPath(JournalPath)
            : ConfigSession.JournalPath(LoadConfig(required: false), environment) ?? KfmPaths.DefaultIncidentJournal();
        // A record set aside after a crash is said once per command, however many times the journal is opened.
        IncidentJournal journal = IncidentJournals.Open(EngineContext, explicitPath ? null : environment, path);
        journal.Warn = note => { lock (_journalWarnings) { if (!_journalWarnings.Add(IncidentJournal.WarningKey(note))) { return; } } OnPipelineThread(() => WriteWarning(note)); };
        return journal;
    }

    private readonly HashSet<string> _journalWarnings = new(StringComparer.Ordinal);

    // A fleet names several environments: the journal then comes from each request's own environment or the defaults.
    private EnvironmentConfig? SingleEnvironmentOrNull() =>
        Environment is { Length: > 1 } ? null : ResolveEnvironment(required: false);

    private static string? NullIfBlank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}
