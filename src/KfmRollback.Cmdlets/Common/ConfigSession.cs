using System.Management.Automation;

namespace KfmRollback.Cmdlets.Common;

/// <summary>Finds and loads kfm-rollback.yaml for a cmdlet: -ConfigPath, $env:KFM_ROLLBACK_CONFIG, ./kfm-rollback.yaml.</summary>
internal static class ConfigSession
{
    public static string? ResolveEnvironmentName(PSCmdlet cmdlet, string? environment, string? configPath, bool required) => environment;

    public static string? JournalPath(PSCmdlet cmdlet, string? configPath) => null;
}
