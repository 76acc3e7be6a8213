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

    /// <summary>Fleet name → waves of environments rolled back together (Invoke-KfmRollback -Fleet).</summary>
    public IReadOnlyDictionary<string, FleetConfig> Fleets { get; init; } = new Dictionary<string, FleetConfig>();

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

    /// <summary>Returns the named fleet.</summary>
    public FleetConfig GetFleet(string name) =>
        Fleets.TryGetValue(name, out var fleet) ? fleet : throw new KfmException(ConfigErrorIds.FleetNotFound, KfmErrorKind.ObjectNotFound,
            Fleets.Count == 0
                ? $"No fleets are defined in {SourcePath}. Add one under 'fleets:' (see docs/configuration.md), or name environments with -Environment."
                : $"Fleet '{name}' is not defined in {SourcePath}. Defined fleets: {string.Join(", ", Fleets.Keys.Order(StringComparer.Ordinal))}.", name);

    void IConfigSection.Validate(ValidationScope scope)
    {
        // A wave names environments that exist, and an environment rolls back in one wave only.
        foreach (var (name, fleet) in Fleets)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var environment in fleet.Waves.SelectMany(w => w.Environments))
            {
                if (!Environments.ContainsKey(environment))
                    throw scope.Invalid("fleets", $"fleet '{name}' names environment '{environment}', which is not defined; defined: {string.Join(", ", EnvironmentNames)}.");
                if (!seen.Add(environment))
                    throw scope.Invalid("fleets", $"fleet '{name}' names environment '{environment}' in two waves; each environment rolls back once.");
            }
        }
    }
}
