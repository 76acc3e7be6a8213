namespace KfmRollback.Engine.Configuration.Binding;

/// <summary>
/// Recognises keys that would hold a literal credential ("token:", "password:"). Secrets are never
/// configuration values: the file is shared, committed and attached to incidents, so credentials
/// are always references (<c>*_env</c> or <c>*_file</c>).
/// </summary>
internal static class SecretKeyDetector
{
    private static readonly HashSet<string> Exact = new(StringComparer.Ordinal)
    {
        "token", "password", "passwd", "pwd", "secret", "clientsecret", "apikey", "accesskey",
        "secretkey", "privatekey", "signingkey", "credential", "credentials", "bearer",
        "authorization", "cookie",
    };

    private static readonly string[] Suffixes = { "token", "password", "passwd", "secret", "apikey", "privatekey" };

    public static bool LooksLikeLiteralSecret(string key)
    {
        var k = key.ToLowerInvariant();
        if (k.EndsWith("_env", StringComparison.Ordinal) || k.EndsWith("_file", StringComparison.Ordinal))
            return false;
        var squashed = k.Replace("_", "").Replace("-", "");
        return Exact.Contains(squashed) || Suffixes.Any(s => squashed.EndsWith(s, StringComparison.Ordinal));
    }
}
