namespace KfmRollback.Engine.Configuration;

/// <summary>
/// Stable error ids for configuration failures. They become PowerShell FullyQualifiedErrorIds,
/// so scripts may match on them: never rename one.
/// </summary>
public static class ConfigErrorIds
{
    /// <summary>No configuration file at any searched location.</summary>
    public const string ConfigNotFound = nameof(ConfigNotFound);

    /// <summary>The file is not well-formed YAML (or not a mapping at the top).</summary>
    public const string ConfigYamlMalformed = nameof(ConfigYamlMalformed);

    /// <summary>A key the schema does not know (typos must not be silently ignored).</summary>
    public const string ConfigUnknownKey = nameof(ConfigUnknownKey);

    /// <summary>A value of the wrong type or outside its allowed set, or a literal secret.</summary>
    public const string ConfigInvalidValue = nameof(ConfigInvalidValue);

    /// <summary>A required key is absent.</summary>
    public const string ConfigMissingKey = nameof(ConfigMissingKey);

    /// <summary>The requested environment is not defined in the configuration.</summary>
    public const string EnvironmentNotFound = nameof(EnvironmentNotFound);

    /// <summary>The requested fleet is not defined in the configuration.</summary>
    public const string FleetNotFound = nameof(FleetNotFound);
}
