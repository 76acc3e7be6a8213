using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Configuration;

/// <summary>
/// Finds the configuration file. Precedence, most explicit first: the -ConfigPath parameter,
/// then $env:KFM_ROLLBACK_CONFIG, then ./kfm-rollback.yaml. An explicit location that does not
/// exist is an error rather than a silent fall-through, so an operator never runs against a
/// different file than the one they named.
/// </summary>
public static class ConfigLocator
{
    /// <summary>Environment variable that names the configuration file.</summary>
    public const string EnvironmentVariable = "KFM_ROLLBACK_CONFIG";

    /// <summary>File name looked for in the current directory.</summary>
    public const string DefaultFileName = "kfm-rollback.yaml";

    /// <summary>Returns the absolute path of the configuration file to load.</summary>
    /// <param name="configPath">The -ConfigPath parameter, or null/empty when not given.</param>
    /// <param name="envVarValue">The value of $env:KFM_ROLLBACK_CONFIG, or null/empty.</param>
    /// <param name="currentDirectory">Directory that relative paths and the default are resolved against.</param>
    /// <exception cref="KfmException">ConfigNotFound, naming every place searched.</exception>
    public static string Resolve(string? configPath, string? envVarValue, string currentDirectory)
    {
        if (!string.IsNullOrWhiteSpace(configPath))
            return RequireExisting(Absolute(configPath, currentDirectory), "-ConfigPath");

        if (!string.IsNullOrWhiteSpace(envVarValue))
            return RequireExisting(Absolute(envVarValue, currentDirectory), $"${EnvironmentVariable}");

        var fallback = Path.Combine(currentDirectory, DefaultFileName);
        if (File.Exists(fallback))
            return Path.GetFullPath(fallback);

        throw new KfmException(ConfigErrorIds.ConfigNotFound, KfmErrorKind.ObjectNotFound,
            $"No configuration file found. Searched: -ConfigPath (not given), ${EnvironmentVariable} (not set), " +
            $"'{fallback}' (does not exist). Pass -ConfigPath, set ${EnvironmentVariable}, or create " +
            $"{DefaultFileName} from module/kfm-rollback.example.yaml.",
            fallback);
    }

    private static string Absolute(string path, string currentDirectory) =>
        Path.GetFullPath(PathExpansion.ExpandHome(path.Trim()), currentDirectory);

    private static string RequireExisting(string path, string origin)
    {
        if (File.Exists(path))
            return path;
        throw new KfmException(ConfigErrorIds.ConfigNotFound, KfmErrorKind.ObjectNotFound,
            $"Configuration file '{path}' named by {origin} does not exist. Searched: {origin} only " +
            $"(an explicit location is never replaced by a fallback). Fix the path or remove {origin}.",
            path);
    }
}
