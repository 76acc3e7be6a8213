namespace KfmRollback.Engine.Configuration;

/// <summary>Path helpers shared by the locator and the loader.</summary>
internal static class PathExpansion
{
    /// <summary>Expands a leading '~' so configs can be shared between operators' machines.</summary>
    public static string ExpandHome(string path)
    {
        if (path == "~" || path.StartsWith("~/", StringComparison.Ordinal) || path.StartsWith("~\\", StringComparison.Ordinal))
        {
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            return path.Length == 1 ? home : Path.Combine(home, path[2..]);
        }
        return path;
    }

    /// <summary>Resolves a configured path against the directory of the config file.</summary>
    public static string ResolveAgainst(string path, string baseDirectory) =>
        Path.GetFullPath(ExpandHome(path), baseDirectory);
}
