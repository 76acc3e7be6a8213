using System.Management.Automation;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Cmdlets.Common;

/// <summary>
/// Finds and loads kfm-rollback.yaml for a cmdlet (-ConfigPath, $env:KFM_ROLLBACK_CONFIG,
/// ./kfm-rollback.yaml, relative to the PowerShell location, not the process directory).
/// </summary>
internal static class ConfigSession
{
    public const string JournalFileName = "incidents.ndjson";

    /// <summary>The configuration, or null when none exists and <paramref name="required"/> is false.</summary>
    public static KfmConfig? Load(PSCmdlet cmdlet, string? configPath, bool required)
    {
        string currentDirectory = cmdlet.SessionState.Path.CurrentFileSystemLocation.ProviderPath;
        string? explicitPath = string.IsNullOrWhiteSpace(configPath) ? null : cmdlet.GetUnresolvedProviderPathFromPSPath(configPath);
        string? fromEnvironment = System.Environment.GetEnvironmentVariable(ConfigLocator.EnvironmentVariable);
        bool anyConfigNamed = explicitPath is not null || !string.IsNullOrWhiteSpace(fromEnvironment)
            || File.Exists(Path.Combine(currentDirectory, ConfigLocator.DefaultFileName));
        if (!required && !anyConfigNamed)
        {
            return null;
        }
        string path = ConfigLocator.Resolve(explicitPath, fromEnvironment, currentDirectory);
        return LoadCached(path);
    }

    // Parsed configurations are immutable, so one parse per file version is shared by every
    // cmdlet and runspace in the process (a fleet of parallel rollbacks reads the same file).
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, (DateTime Written, long Length, KfmConfig Config)> s_cache = new();

    private static KfmConfig LoadCached(string path)
    {
        var file = new FileInfo(path);
        if (file.Exists && s_cache.TryGetValue(file.FullName, out var cached) && cached.Written == file.LastWriteTimeUtc && cached.Length == file.Length)
        {
            return cached.Config;
        }
        KfmConfig config = KfmConfigLoader.Load(path);
        if (file.Exists)
        {
            s_cache[file.FullName] = (file.LastWriteTimeUtc, file.Length, config);
        }
        return config;
    }

    /// <summary>
    /// The environment a cmdlet acts on. Several environments and none named is ambiguous, so it
    /// fails closed rather than guess which production to touch; so is naming several to a cmdlet
    /// that acts on one.
    /// </summary>
    public static EnvironmentConfig? ResolveEnvironment(KfmConfig? config, IReadOnlyList<string>? names, bool required, string command)
    {
        if (config is null)
        {
            if (required)
            {
                throw new KfmException("ConfigNotFound", KfmErrorKind.ObjectNotFound,
                    $"This cmdlet needs the configuration: pass -ConfigPath, set ${ConfigLocator.EnvironmentVariable}, or create ./{ConfigLocator.DefaultFileName} (see docs/configuration.md).");
            }
            return null;
        }
        var named = (names ?? Array.Empty<string>()).Where(n => !string.IsNullOrWhiteSpace(n)).ToList();
        if (named.Count == 1 && !WildcardPattern.ContainsWildcardCharacters(named[0]))
        {
            return config.GetEnvironment(named[0]);
        }
        if (named.Count > 0)
        {
            IReadOnlyList<EnvironmentConfig> matches = ResolveEnvironments(config, named);
            if (matches.Count == 1)
            {
                return matches[0];
            }
            throw new KfmException("EnvironmentNotSingle", KfmErrorKind.Ambiguous,
                $"{command} acts on one environment, and -Environment names {matches.Count} ({string.Join(", ", matches.Select(m => m.Name))}). " +
                "Name exactly one, or run it once per environment (Invoke-KfmRollback and Get-KfmRollbackPlan take many).", string.Join(",", named));
        }
        if (config.Environments.Count == 1)
        {
            return config.Environments.Values.Single();
        }
        if (!required)
        {
            return null;
        }
        throw new KfmException("EnvironmentAmbiguous", KfmErrorKind.Ambiguous,
            $"The configuration '{config.SourcePath}' names several environments ({string.Join(", ", config.EnvironmentNames)}); choose one with -Environment.",
            config.SourcePath);
    }

    /// <summary>
    /// Every environment the names select, in the order asked, each once; fails closed where
    /// Get-KfmEnvironment only warns: an unknown name or a wildcard that matches nothing is an
    /// error, since a rollback must not quietly leave out an environment meant to be in it. No
    /// name means the only environment.
    /// </summary>
    public static IReadOnlyList<EnvironmentConfig> ResolveEnvironments(KfmConfig config, IReadOnlyList<string>? names)
    {
        var named = (names ?? Array.Empty<string>()).Where(n => !string.IsNullOrWhiteSpace(n)).ToList();
        if (named.Count == 0)
        {
            return new[] { ResolveEnvironment(config, null, required: true, "this cmdlet")! };
        }
        foreach (string pattern in named.Where(WildcardPattern.ContainsWildcardCharacters))
        {
            if (SelectEnvironments(config, new[] { pattern }, _ => { }).Count == 0)
            {
                throw new KfmException(ConfigErrorIds.EnvironmentNotFound, KfmErrorKind.ObjectNotFound,
                    $"No environment matches '{pattern}'; the configuration names {string.Join(", ", config.EnvironmentNames)}.", pattern);
            }
        }
        return SelectEnvironments(config, named, ex => throw ex).DistinctBy(e => e.Name).ToList();
    }

    /// <summary>
    /// The environments <paramref name="names"/> select, in the order asked: a wildcard selects every
    /// match (possibly none); an unknown plain name goes to <paramref name="unknown"/> and is skipped,
    /// so one typo does not hide the environments the user did name right.
    /// </summary>
    public static IReadOnlyList<EnvironmentConfig> SelectEnvironments(KfmConfig config, IEnumerable<string> names, Action<KfmException> unknown)
    {
        var selected = new List<EnvironmentConfig>();
        foreach (string name in names)
        {
            if (WildcardPattern.ContainsWildcardCharacters(name))
            {
                var pattern = new WildcardPattern(name, WildcardOptions.IgnoreCase);
                selected.AddRange(config.EnvironmentNames.Where(pattern.IsMatch).Select(config.GetEnvironment));
                continue;
            }
            try { selected.Add(config.GetEnvironment(name)); }
            catch (KfmException ex) { unknown(ex); }
        }
        return selected;
    }

    /// <summary>The incident journal file: the environment's, else the defaults', else null.</summary>
    public static string? JournalPath(KfmConfig? config, EnvironmentConfig? environment)
    {
        string? directory = environment?.Incidents?.Journal ?? config?.Defaults.IncidentJournal;
        return directory is null ? null : Path.Combine(directory, JournalFileName);
    }
}
