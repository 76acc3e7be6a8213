namespace KfmRollback.Engine.Core;

/// <summary>Where the module keeps state when the configuration does not say.</summary>
public static class KfmPaths
{
    public const string StateVariable = "KFM_ROLLBACK_STATE";

    /// <summary>$KFM_ROLLBACK_STATE, else the platform's per-user state folder.</summary>
    public static string StateDirectory()
    {
        string? configured = System.Environment.GetEnvironmentVariable(StateVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return Path.GetFullPath(configured);
        }
        if (OperatingSystem.IsWindows())
        {
            return Path.Combine(System.Environment.GetFolderPath(System.Environment.SpecialFolder.LocalApplicationData), "KfmRollback");
        }
        string? xdg = System.Environment.GetEnvironmentVariable("XDG_STATE_HOME");
        string root = !string.IsNullOrWhiteSpace(xdg)
            ? xdg
            : Path.Combine(System.Environment.GetFolderPath(System.Environment.SpecialFolder.UserProfile), ".local", "state");
        return Path.Combine(root, "kfm-rollback");
    }

    public static string DefaultIncidentJournal() => Path.Combine(StateDirectory(), "incidents.ndjson");
}
