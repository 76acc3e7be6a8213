using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace KfmRollback.Engine.Safety;

/// <summary>
/// The one redaction: whatever a person or a file sees (output, verbose and -WhatIf text, plans,
/// results, errors, the journal, receipts, evidence, reports, plots, follow-ups, PR bodies and
/// commits) passes through here. It removes what the <see cref="SecretScanner"/> finds (credential
/// shapes, URL user info, values assigned to credential names), the environment's restricted ids
/// and id patterns, the values of keys named like credentials (<see cref="SecretNames"/>), the
/// values of pod-template env vars (shown as <c>&lt;redacted sha256:…&gt;</c> unless
/// <c>redaction.show_env</c> lists the name) and kubectl's whole-object copy of an applied object.
/// What is sent to a cluster or a remote is never redacted: only what is shown or stored.
/// </summary>
public sealed class Redactor
{
    public const string RestrictedMarker = "[REDACTED:restricted-id]";
    /// <summary>The value of a key whose name says it holds a credential.</summary>
    public const string SecretNameMarker = "[REDACTED:secret-name]";
    private const string LastApplied = "kubectl.kubernetes.io/last-applied-configuration";
    private static readonly JsonSerializerOptions s_indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly IReadOnlyList<string> _restrictedIds;
    private readonly IReadOnlyList<Regex> _patterns;
    private readonly HashSet<string> _shownEnv;
    private readonly SecretScanner _scanner;

    /// <summary>For text with no environment to ask (errors, verbose text of any cmdlet): credentials and env values only.</summary>
    public static Redactor Default { get; } = new(Array.Empty<string>());

    public Redactor(IReadOnlyList<string> restrictedIds, IEnumerable<string>? patterns = null, IEnumerable<string>? shownEnv = null, SecretScanner? scanner = null)
    {
        _restrictedIds = restrictedIds.Where(id => id.Length > 0).OrderByDescending(id => id.Length).ToList();
        _patterns = (patterns ?? Array.Empty<string>()).Select(p => new Regex(p, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1))).ToList();
        _shownEnv = new HashSet<string>(shownEnv ?? Array.Empty<string>(), StringComparer.Ordinal);
        _scanner = scanner ?? SecretScanner.Default;
    }

    /// <summary>
    /// Free text with every credential-looking span replaced by <c>[REDACTED:&lt;kind&gt;]</c> and every
    /// restricted id by <see cref="RestrictedMarker"/>. Idempotent: markers are not secrets.
    /// </summary>
    public string Text(string? text)
    {
        if (string.IsNullOrEmpty(text)) return text ?? string.Empty;
        string result = text;
        IReadOnlyList<SecretFinding> findings = _scanner.Scan(text);
        if (findings.Count > 0)
        {
            var sb = new StringBuilder(text.Length);
            int pos = 0;
            foreach (SecretFinding f in findings)
            {
                sb.Append(text, pos, f.Start - pos).Append("[REDACTED:").Append(f.Kind).Append(']');
                pos = f.Start + f.Length;
            }
            result = sb.Append(text, pos, text.Length - pos).ToString();
        }
        foreach (string id in _restrictedIds) result = result.Replace(id, RestrictedMarker, StringComparison.Ordinal);
        foreach (Regex pattern in _patterns) result = pattern.Replace(result, RestrictedMarker);
        return result;
    }

    /// <summary>A URL as people may see it: no user info (a token or password in it never shows), no query secrets.</summary>
    public string Url(string? url)
    {
        if (string.IsNullOrEmpty(url)) return url ?? string.Empty;
        if (Uri.TryCreate(url, UriKind.Absolute, out Uri? uri) && !string.IsNullOrEmpty(uri.UserInfo))
        {
            url = new UriBuilder(uri) { UserName = string.Empty, Password = string.Empty }.Uri.ToString();
        }
        return Text(url);
    }

    /// <summary>How a pod-template env value is shown: a short hash that tells two values apart, never the value.</summary>
    public static string EnvValue(string value) =>
        "<redacted sha256:" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(value)))[..12].ToLowerInvariant() + ">";

    /// <summary>
    /// A redacted deep copy: every string and every key through <see cref="Text"/>; env values of
    /// containers hashed (<see cref="EnvValue"/>) unless shown; the values of credential-named keys
    /// replaced; managedFields and kubectl's last-applied copy dropped.
    /// </summary>
    public JsonNode? Json(JsonNode? node) => Json(node, parentKey: null);

    private JsonNode? Json(JsonNode? node, string? parentKey) => node switch
    {
        null => null,
        JsonObject obj => RedactObject(obj, parentKey),
        JsonArray array => new JsonArray(array.Select(item => Json(item, parentKey)).ToArray()),
        JsonValue value when value.TryGetValue(out string? s) => JsonValue.Create(Text(s)),
        _ => node.DeepClone(),
    };

    private JsonObject RedactObject(JsonObject obj, string? parentKey)
    {
        var copy = new JsonObject();
        // A container env entry: { name, value } (valueFrom entries only name their source).
        bool envEntry = parentKey == "env" && obj["name"] is JsonValue n && n.TryGetValue(out string? _);
        string? envName = envEntry ? obj["name"]!.GetValue<string>() : null;
        foreach (var (key, value) in obj)
        {
            if (key == "managedFields") continue;
            if (key == LastApplied)
            {
                copy[key] = "[REDACTED:last-applied-configuration]";
                continue;
            }
            if (envEntry && key == "value" && value is JsonValue v && v.TryGetValue(out string? envValue))
            {
                copy[key] = _shownEnv.Contains(envName!) ? Text(envValue) : EnvValue(envValue);
                continue;
            }
            if (value is JsonValue secret && secret.TryGetValue(out string? text) && text.Length > 0 && SecretNames.LooksSecret(key) && !IsMarker(text))
            {
                copy[Text(key)] = SecretNameMarker;
                continue;
            }
            copy[Text(key)] = Json(value, key);
        }
        return copy;
    }

    private static bool IsMarker(string text) =>
        text.StartsWith("[REDACTED:", StringComparison.Ordinal) || text.StartsWith("<redacted sha256:", StringComparison.Ordinal);

    /// <summary>
    /// The content of a planned change as people see it: a JSON document (a patch, a template) redacted
    /// as JSON and indented; anything else (a diff, a description) as text.
    /// </summary>
    public string Content(string content)
    {
        string trimmed = content.TrimStart();
        if (trimmed.StartsWith('[') || trimmed.StartsWith('{'))
        {
            try
            {
                if (JsonNode.Parse(content) is { } parsed) return Json(parsed)!.ToJsonString(s_indented);
            }
            catch (JsonException)
            {
                // Not JSON after all: redact as text.
            }
        }
        return Text(content);
    }

    /// <summary>The credential-looking spans in <paramref name="text"/> (kind and place, never kept as a value).</summary>
    public IReadOnlyList<SecretFinding> Scan(string text) => _scanner.Scan(text);

    /// <summary>True when <paramref name="text"/> carries one of the restricted ids or matches a restricted id pattern.</summary>
    public bool IsRestricted(string text) =>
        _restrictedIds.Any(id => text.Contains(id, StringComparison.Ordinal)) || _patterns.Any(p => p.IsMatch(text));
}
