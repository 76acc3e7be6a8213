using KfmRollback.Engine.Configuration.Binding;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Configuration;

/// <summary>
/// The whole configuration file: settings shared by all environments plus one
/// <see cref="EnvironmentConfig"/> per environment. It fills in every TBD of the API rollback
/// runbook, so the cmdlets never guess a name, a URL or a location.
/// </summary>
public sealed class KfmConfig : IConfigSection
{
    /// <summary>Settings every environment inherits unless it overrides them.</summary>
    public DefaultsConfig Defaults { get; init; } = new();

    /// <summary>Environment name (e.g. prod, staging) → its settings.</summary>
    [RequiredKey, NonEmpty]
    public IReadOnlyDictionary<string, EnvironmentConfig> Environments { get; init; } = new Dictionary<string, EnvironmentConfig>();

    /// <summary>The file (or source name) this configuration was loaded from.</summary>
    [NotAKey]
    public string SourcePath { get; internal set; } = "";

    /// <summary>Defined environment names, sorted, for completers and error messages.</summary>
    public IReadOnlyList<string> EnvironmentNames => Environments.Keys.Order(StringComparer.Ordinal).ToList();

    /// <summary>Returns the named environment.</summary>
    /// <exception cref="KfmException">EnvironmentNotFound, listing the defined names.</exception>
    public EnvironmentConfig GetEnvironment(string name)
    {
        if (!string.IsNullOrEmpty(name) && Environments.TryGetValue(name, out var environment))
            return environment;

        // Names differ only in case? Say so, but still refuse: "Prod" and "prod" must not be
        // confused by an operator under incident pressure.
        var caseMatch = EnvironmentNames.FirstOrDefault(n => string.Equals(n, name, StringComparison.OrdinalIgnoreCase));
        var suggestion = caseMatch ?? KeySuggester.Nearest(name ?? "", EnvironmentNames);
        var hint = suggestion is not null ? $" Did you mean '{suggestion}'?" : "";
        throw new KfmException(ConfigErrorIds.EnvironmentNotFound, KfmErrorKind.ObjectNotFound,
            $"Environment '{name}' is not defined in {SourcePath}. Defined environments: {string.Join(", ", EnvironmentNames)}.{hint}",
            name);
    }

    /// <summary>Runs after binding: names each environment and lets it inherit the defaults.</summary>
    internal void Complete(string sourcePath)
    {
        SourcePath = sourcePath;
        foreach (var (name, environment) in Environments)
            environment.Inherit(name, Defaults);
    }

    void IConfigSection.Validate(ValidationScope scope) { }
}
