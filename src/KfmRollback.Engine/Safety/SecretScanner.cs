using System.Text;
using System.Text.RegularExpressions;

namespace KfmRollback.Engine.Safety;

/// <summary>Where a credential-looking substring sits. Deliberately carries no copy of the value.</summary>
public sealed record SecretFinding(string Kind, int Start, int Length);

/// <summary>
/// Finds credential- and token-looking substrings in free text (receipt notes, logs, incident comms)
/// so callers can refuse or redact them. Findings describe kind and position only, so they can be
/// logged or put in an error message without re-leaking the value.
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
    public const string HighEntropyBase64 = "high-entropy-base64";
    public const string HighEntropyHex = "high-entropy-hex";

    private const RegexOptions Opts = RegexOptions.CultureInvariant | RegexOptions.Compiled;

    // Each rule's "secret" group is the span reported; the rest is context that makes the match credible
    // (so "Authorization: Bearer [REDACTED:bearer-token]" keeps the readable part).
    private static readonly (string Kind, Regex Pattern, Func<string, bool> Confirm)[] SpecificRules =
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
        (SasSignature, new Regex(@"(?<![A-Za-z0-9_])sig=(?<secret>[A-Za-z0-9%+/=_-]{10,})", Opts | RegexOptions.IgnoreCase), Always),
        (UrlCredentials, new Regex(@"\b[a-z][a-z0-9+.-]*://[^\s/:@]+:(?<secret>[^\s/@]+)@", Opts | RegexOptions.IgnoreCase), Always),
        // key=value or "key": "value" where the key names a credential. The value must not already be a
        // placeholder or a redaction marker, so Redact is idempotent and templates ("password=<PASSWORD>") pass.
        (CredentialAssignment, new Regex(
            @"(?<![A-Za-z0-9_.-])[A-Za-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key)(?:[_.-][A-Za-z0-9]+)*" +
            @"(?:\s*=\s*|[""']\s*:\s*)[""']?(?<secret>[^\s""'&,;<>\[\]{}$*%][^\s""'&,;]{3,})",
            Opts | RegexOptions.IgnoreCase), IsNotPlaceholder),
    };

    private static readonly HashSet<string> Placeholders = new(StringComparer.OrdinalIgnoreCase)
        { "none", "null", "nil", "true", "false", "unset", "empty", "redacted", "hidden", "masked" };

    private static bool Always(string value) => true;
    private static bool HasDigit(string value) => value.Any(char.IsAsciiDigit);
    private static bool IsNotPlaceholder(string value) => !Placeholders.Contains(value) && value.Any(c => c != 'x' && c != 'X');

    private static bool DecodesToUserColonPassword(string value)
    {
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
                if (confirm(g.Value)) AddIfFree(findings, new SecretFinding(kind, g.Index, g.Length));
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

    /// <summary>Copy of <paramref name="text"/> with each finding replaced by <c>[REDACTED:&lt;kind&gt;]</c>.</summary>
    public string Redact(string? text)
    {
        if (string.IsNullOrEmpty(text)) return text ?? string.Empty;
        var findings = Scan(text);
        if (findings.Count == 0) return text;
        var sb = new StringBuilder(text.Length);
        var pos = 0;
        foreach (var f in findings)
        {
            sb.Append(text, pos, f.Start - pos).Append("[REDACTED:").Append(f.Kind).Append(']');
            pos = f.Start + f.Length;
        }
        return sb.Append(text, pos, text.Length - pos).ToString();
    }

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
