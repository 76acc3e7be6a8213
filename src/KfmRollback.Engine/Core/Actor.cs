namespace KfmRollback.Engine.Core;

/// <summary>
/// Who is acting, for the "who" of every audit record. Automation sets KFM_ACTOR (for example the
/// managed identity's name); people get user@host.
/// </summary>
public static class Actor
{
    public const string EnvironmentVariable = "KFM_ACTOR";

    public static string Current()
    {
        string? configured = System.Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return configured.Trim();
        }
        return $"{System.Environment.UserName}@{System.Environment.MachineName}";
    }
}
