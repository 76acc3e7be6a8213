namespace KfmRollback.Engine.Configuration.Binding;

/// <summary>
/// Recognises keys that would hold a literal credential ("token:", "password:", "db_pwd:"). Secrets
/// are never configuration values: the file is shared, committed and attached to incidents, so
/// credentials are always references (<c>*_env</c> or <c>*_file</c>). The name rule is the one the
/// redaction uses (<see cref="Safety.SecretNames"/>).
/// </summary>
internal static class SecretKeyDetector
{
    public static bool LooksLikeLiteralSecret(string key) => Safety.SecretNames.LooksSecret(key);
}
