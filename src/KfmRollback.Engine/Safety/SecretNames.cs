namespace KfmRollback.Engine.Safety;

/// <summary>
/// Whether a name (an environment variable, a JSON or YAML key, the left side of key=value) says
/// that its value is a credential: API_SIGNING_KEY, DB_PWD, DB_PASS, client_secret, refresh_token,
/// AccountKey, connectionString. The one name rule: the scanner's assignments, the redaction of
/// JSON and the configuration's literal-secret check all ask it.
/// </summary>
/// <remarks>
/// A name is split into words at '_', '-', '.', and camel-case humps. Its last word decides: a
/// reference to a secret (secretName, token_env, password_file, keyRef) is not one, a name ending in
/// a credential word is. Compound words (passwd, apikey, privatekey) count anywhere. A bare "key" is
/// a lookup key (configMapKeyRef.key) and a bare "pass" a verdict, not credentials.
/// </remarks>
public static class SecretNames
{
    // The last word of a name that holds a credential.
    private static readonly HashSet<string> CredentialWords = new(StringComparer.Ordinal)
    {
        // Plurals (keys, secrets, tokens) name lists of names far more often than a value ("secrets: [kfm-api-oidc]").
        "key", "pwd", "pass", "passwd", "password", "passphrase", "secret", "token", "credential", "credentials",
        "creds", "cred", "dsn", "cookie", "apikey", "privatekey", "secretkey", "accesskey", "signingkey", "sessionkey",
        "masterkey", "connectionstring", "connstr", "authorization", "bearer",
    };

    // A credential word anywhere in the name makes it one (DB_PASSWORD_PRIMARY, client_secret_v2).
    private static readonly string[] StrongWords = { "password", "passwd", "passphrase", "apikey", "privatekey", "secretkey", "accesskey", "clientsecret", "connectionstring" };

    // The last word of a name that refers to a credential without holding it.
    private static readonly HashSet<string> ReferenceWords = new(StringComparer.Ordinal)
    {
        "name", "names", "file", "files", "path", "env", "ref", "refs", "reference", "id", "ids", "type", "kind", "hash", "digest", "sha256",
        "version", "count", "length", "seconds", "expiry", "expires", "expiration", "at", "url", "uri", "policy", "mode", "required", "enabled",
        "rotated", "rotation", "source", "selector", "label", "annotation", "field", "header", "endpoint", "provider", "store", "mount",
    };

    /// <summary>True when <paramref name="name"/> names a credential (not a reference to one).</summary>
    public static bool LooksSecret(string? name)
    {
        if (string.IsNullOrWhiteSpace(name)) return false;
        List<string> words = Words(name);
        if (words.Count == 0) return false;
        string last = words[^1];
        if (ReferenceWords.Contains(last)) return false;
        string squashed = string.Concat(words);
        if (StrongWords.Any(w => squashed.Contains(w, StringComparison.Ordinal))) return true;
        // Alone, "key" is a lookup key (configMapKeyRef.key) and "pass" a verdict ("Pass: …"); DB_PASS is a credential.
        if (words.Count == 1 && last is "key" or "pass") return false;
        if (CredentialWords.Contains(last)) return true;
        // "apiKey", "APIKEY", "SECRETKEY" squashed.
        return squashed.EndsWith("apikey", StringComparison.Ordinal) || squashed.EndsWith("secretkey", StringComparison.Ordinal) || squashed.EndsWith("accesskey", StringComparison.Ordinal);
    }

    /// <summary>Lower-case words: split at separators and camel-case humps (APIKey → api, key).</summary>
    internal static List<string> Words(string name)
    {
        var words = new List<string>();
        var current = new System.Text.StringBuilder();
        void Flush()
        {
            if (current.Length > 0) words.Add(current.ToString().ToLowerInvariant());
            current.Clear();
        }
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (!char.IsAsciiLetterOrDigit(c)) { Flush(); continue; }
            if (char.IsAsciiLetterUpper(c) && current.Length > 0)
            {
                char previous = name[i - 1];
                bool nextLower = i + 1 < name.Length && char.IsAsciiLetterLower(name[i + 1]);
                // fooBar → foo|Bar; APIKey → API|Key; but DB_PWD stays one word per part.
                if (char.IsAsciiLetterLower(previous) || char.IsAsciiDigit(previous) || (char.IsAsciiLetterUpper(previous) && nextLower)) Flush();
            }
            current.Append(c);
        }
        Flush();
        return words;
    }
}
