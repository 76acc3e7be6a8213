using System.Text;
using System.Text.RegularExpressions;

namespace KfmRollback.Engine.Safety;

/// <summary>Where a credential-looking substring sits. Deliberately carries no copy of the value.</summary>
public sealed record SecretFinding(string Kind, int Start, int Length);

/// <summary>
/// Finds credential- and token-looking substrings in free text (receipt notes, logs, incident comms)
/// so callers can refuse them (Core/PolicySafeText) or redact them (<see cref="Redactor"/>, the
/// one redaction). Findings describe kind and position only, so they can be logged or put in an
/// error message without re-leaking the value.
/// </summary>
/// <remarks>
/// Specific patterns (JWT, bearer token, cloud/forge keys, PEM keys, key=value assignments) run first;
/// the generic high-entropy rules only fill the gaps between them. Digests are the main source of
/// false positives in a rollback tool, so hex runs that are (or look exactly like) sha256 digests or
/// git commit ids are never reported.
/// </remarks>
public sealed class SecretScanner
{
    public static SecretScanner Default { get; } = new();

    public const string Jwt = "jwt";
    public const string BearerToken = "bearer-token";
    public const string BasicAuth = "basic-auth";
    public const string AwsAccessKey = "aws-access-key";
    public const string GitHubToken = "github-token";
    public const string GitLabToken = "gitlab-token";
    public const string SlackToken = "slack-token";
    public const string SasSignature = "sas-signature";
    public const string PrivateKey = "private-key";
    public const string CredentialAssignment = "credential-assignment";
    public const string UrlCredentials = "url-credentials";
    public const string AzureClientSecret = "azure-client-secret";
    public const string GcpApiKey = "gcp-api-key";
    public const string GcpOAuthToken = "gcp-oauth-token";
    public const string HighEntropyBase64 = "high-entropy-base64";
    public const string HighEntropyHex = "high-entropy-hex";

    private const RegexOptions Opts = RegexOptions.CultureInvariant | RegexOptions.Compiled;

    // Each rule's "secret" group is the span reported; the rest is context that makes the match credible
    // (so "Authorization: Bearer [REDACTED:bearer-token]" keeps the readable part). Confirm sees the
    // whole match, so a rule can look at its context (the name a value is assigned to).
    private static readonly (string Kind, Regex Pattern, Func<Match, bool> Confirm)[] SpecificRules =
    {
        (PrivateKey, new Regex(@"(?<secret>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)?)", Opts), Always),
        (Jwt, new Regex(@"(?<![A-Za-z0-9_-])(?<secret>eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*)", Opts), Always),
        // "bearer authentication is enforced" is prose; real tokens are long and contain digits.
        (BearerToken, new Regex(@"\bBearer\s+(?<secret>[A-Za-z0-9\-._~+/]{16,}=*)", Opts | RegexOptions.IgnoreCase), HasDigit),
        // "Basic verification passed" is prose; a real credential decodes to "user:password".
        (BasicAuth, new Regex(@"\bBasic\s+(?<secret>[A-Za-z0-9+/]{8,}={0,2})(?![A-Za-z0-9+/=])", Opts), DecodesToUserColonPassword),
        (AwsAccessKey, new Regex(@"(?<![A-Z0-9])(?<secret>(?:AKIA|ASIA)[A-Z0-9]{16})(?![A-Z0-9])", Opts), Always),
        (GitHubToken, new Regex(@"(?<![A-Za-z0-9_])(?<secret>(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}))", Opts), Always),
        (GitLabToken, new Regex(@"(?<![A-Za-z0-9_-])(?<secret>glpat-[A-Za-z0-9_-]{20,})", Opts), Always),
        (SlackToken, new Regex(@"(?<![A-Za-z0-9])(?<secret>xox[abposr]-[A-Za-z0-9-]{10,})", Opts), Always),
        // Microsoft Entra ID (Azure AD) client secrets: three characters, a digit, "Q~", then 31-34 more.
        (AzureClientSecret, new Regex(@"(?<![A-Za-z0-9_~.-])(?<secret>[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34})(?![A-Za-z0-9_~.-])", Opts), Always),
        // Google Cloud API keys and OAuth access tokens.
        (GcpApiKey, new Regex(@"(?<![A-Za-z0-9_-])(?<secret>AIza[0-9A-Za-z_-]{35})(?![A-Za-z0-9_-])", Opts), Always),
        (GcpOAuthToken, new Regex(@"(?<![A-Za-z0-9_-])(?<secret>ya29\.[0-9A-Za-z_-]{20,})", Opts), Always),
        (SasSignature, new Regex(@"(?<![A-Za-z0-9_])sig=(?<secret>[A-Za-z0-9%+/=_-]{10,})", Opts | RegexOptions.IgnoreCase), Always),
        // Any user info in a URL (a DSN's user:password, a token as the user name) goes: people see URLs without it.
        (UrlCredentials, new Regex(@"\b[a-z][a-z0-9+.-]*://(?<secret>[^\s/?#@""'<>]+)@(?=[^\s/?#@""'<>]*[A-Za-z0-9\[])", Opts | RegexOptions.IgnoreCase), Always),
        // key=value, key: value or "key": "value" where the key names a credential (SecretNames). The value
        // must not already be a placeholder or a redaction marker, so Redact is idempotent and templates
        // ("password=<PASSWORD>") pass.
        // An unquoted "name: value" is also how prose reads ("token: rotated"), so there the value must
        // look like one (a digit or a symbol), as "DB_PASS: hunter2" does.
        (CredentialAssignment, new Regex(
            @"(?<![A-Za-z0-9_.-])(?<name>[A-Za-z][A-Za-z0-9_.-]*)(?<q1>[""']?)(?<sep>\s*=\s*|\s*:\s*)(?<q2>[""']?)(?<secret>[^\s""'&,;<>\[\]{}$*%][^\s""'&,;]{3,})",
            Opts), m => SecretNames.LooksSecret(m.Groups["name"].Value) && IsNotPlaceholder(m.Groups["secret"].Value)
                        && (m.Groups["sep"].Value.Contains('=') || m.Groups["q1"].Length + m.Groups["q2"].Length > 0 || !m.Groups["secret"].Value.All(char.IsAsciiLetter))),
    };

    private static readonly HashSet<string> Placeholders = new(StringComparer.OrdinalIgnoreCase)
        { "none", "null", "nil", "true", "false", "unset", "empty", "redacted", "hidden", "masked",
          // HTTP auth schemes: "Authorization: Bearer …" is the bearer rule's, not an assignment of "Bearer".
          "bearer", "basic", "digest", "negotiate" };

    private static bool Always(Match match) => true;
    private static bool HasDigit(Match match) => match.Groups["secret"].Value.Any(char.IsAsciiDigit);
    private static bool IsNotPlaceholder(string value) => !Placeholders.Contains(value) && value.Any(c => c != 'x' && c != 'X');

    private static bool DecodesToUserColonPassword(Match match)
    {
        string value = match.Groups["secret"].Value;
        try
        {
            var decoded = Convert.FromBase64String(value.PadRight(value.Length + (4 - value.Length % 4) % 4, '='));
            return Array.IndexOf(decoded, (byte)':') > 0;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    // Candidate runs for the entropy rules; the tests applied afterwards decide.
    private static readonly Regex Base64Run = new(@"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{32,}={0,2}(?![A-Za-z0-9+/=_-])", Opts);
    // 32-hex runs are trace ids, UUIDs and md5s far more often than keys, so hex must be longer than a git SHA.
    private static readonly Regex HexRun = new(@"(?<![A-Za-z0-9])[A-Fa-f0-9]{41,}(?![A-Za-z0-9])", Opts);
    private static readonly Regex DigestLabelBefore = new(@"(?:sha1|sha224|sha256|sha384|sha512|md5)[:-]$", Opts | RegexOptions.IgnoreCase);

    /// <summary>All findings, ordered by position, non-overlapping.</summary>
    public IReadOnlyList<SecretFinding> Scan(string? text)
    {
        if (string.IsNullOrEmpty(text)) return Array.Empty<SecretFinding>();
        var findings = new List<SecretFinding>();
        foreach (var (kind, pattern, confirm) in SpecificRules)
        {
            foreach (Match m in pattern.Matches(text))
            {
                var g = m.Groups["secret"];
                if (confirm(m)) AddIfFree(findings, new SecretFinding(kind, g.Index, g.Length));
            }
        }
        foreach (Match m in HexRun.Matches(text))
        {
            if (IsSecretLookingHex(text, m.Index, m.Value))
                AddIfFree(findings, new SecretFinding(HighEntropyHex, m.Index, m.Length));
        }
        foreach (Match m in Base64Run.Matches(text))
        {
            if (IsSecretLookingBase64(m.Value))
                AddIfFree(findings, new SecretFinding(HighEntropyBase64, m.Index, m.Length));
        }
        findings.Sort((a, b) => a.Start.CompareTo(b.Start));
        return findings;
    }

    public bool ContainsSecret(string? text) => Scan(text).Count > 0;

    private static void AddIfFree(List<SecretFinding> findings, SecretFinding candidate)
    {
        if (candidate.Length == 0) return;
        foreach (var f in findings)
        {
            if (candidate.Start < f.Start + f.Length && f.Start < candidate.Start + candidate.Length) return;
        }
        findings.Add(candidate);
    }

    private static bool IsSecretLookingHex(string text, int start, string run)
    {
        // "sha256:<hex>" and friends are content digests, published on purpose.
        var before = text.Substring(Math.Max(0, start - 7), Math.Min(7, start));
        if (DigestLabelBefore.IsMatch(before)) return false;
        // Bare 64-hex runs are indistinguishable from sha256 digests, which this tool prints constantly
        // (receipt file names, image ids); flagging them would drown real findings. (40-hex git SHAs are
        // below the run length.)
        if (run.Length == 64) return false;
        return ShannonEntropy(run) >= 3.0;
    }

    private static bool IsSecretLookingBase64(string run)
    {
        var body = run.TrimEnd('=');
        if (body.Length < 32) return false;
        bool upper = false, lower = false, digit = false;
        var digits = 0;
        foreach (var c in body)
        {
            if (char.IsAsciiLetterUpper(c)) upper = true;
            else if (char.IsAsciiLetterLower(c)) lower = true;
            else if (char.IsAsciiDigit(c)) { digit = true; digits++; }
        }
        // Identifiers and prose-like paths rarely mix all three classes with this much disorder;
        // random key material almost always does.
        if (!(upper && lower && digit) || digits < 2) return false;
        if (LooksLikePath(body)) return false;
        return ShannonEntropy(body) >= 4.0;
    }

    /// <summary>
    /// URIs and paths ("kfm://audit/entry/01ARZ…") contain '/'-separated words; random base64 almost never
    /// has a '/'-delimited segment that is a plain lowercase word.
    /// </summary>
    private static bool LooksLikePath(string run) =>
        run.Contains('/') && run.Split('/').Any(segment => segment.Length >= 3 && segment.All(char.IsAsciiLetterLower));

    internal static double ShannonEntropy(string s)
    {
        var counts = new Dictionary<char, int>();
        foreach (var c in s) counts[c] = counts.TryGetValue(c, out var n) ? n + 1 : 1;
        double entropy = 0;
        foreach (var n in counts.Values)
        {
            var p = (double)n / s.Length;
            entropy -= p * Math.Log2(p);
        }
        return entropy;
    }
}
