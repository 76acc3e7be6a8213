using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Safety;

namespace KfmRollback.Engine.Evidence;

/// <summary>
/// Makes what leaves the cluster policy-safe before it is stored or shown: credential-looking text
/// (the <see cref="SecretScanner"/>), the configured restricted ids and id patterns, literal env
/// values whose names say they are secret, and the annotation kubectl keeps a whole copy of the
/// applied object in. Everything written by evidence, plots, reports and follow-ups goes through
/// one instance, and <see cref="EnsureClean"/> refuses any output that still carries one.
/// </summary>
public sealed class PolicySafeRedactor
{
    public const string RestrictedMarker = "[REDACTED:restricted-id]";
    public const string SecretEnvMarker = "[REDACTED:secret-env]";
    private const string LastApplied = "kubectl.kubernetes.io/last-applied-configuration";

    private readonly IReadOnlyList<string> _restrictedIds;
    private readonly IReadOnlyList<Regex> _patterns;
    private readonly SecretScanner _scanner;

    public PolicySafeRedactor(IReadOnlyList<string> restrictedIds, IEnumerable<string>? patterns = null, SecretScanner? scanner = null)
    {
        _restrictedIds = restrictedIds.Where(id => id.Length > 0).OrderByDescending(id => id.Length).ToList();
        _patterns = (patterns ?? Array.Empty<string>()).Select(p => new Regex(p, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1))).ToList();
        _scanner = scanner ?? SecretScanner.Default;
    }

    /// <summary>The environment's restricted ids (from their reference) and patterns.</summary>
    public static PolicySafeRedactor For(EnvironmentConfig environment) =>
        new(environment.ApiSection is { } api ? Verification.VerificationRunner.RestrictedIds(api.Probe) : Array.Empty<string>(), environment.Observability.RestrictedIdPatterns);

    public string Text(string? text)
    {
        string result = _scanner.Redact(text ?? string.Empty);
        foreach (string id in _restrictedIds) result = result.Replace(id, RestrictedMarker, StringComparison.Ordinal);
        foreach (Regex pattern in _patterns) result = pattern.Replace(result, RestrictedMarker);
        return result;
    }

    /// <summary>A redacted deep copy: every string and every key; secret-named env values and kubectl's copy of the object dropped.</summary>
    public JsonNode? Json(JsonNode? node) => node switch
    {
        null => null,
        JsonObject obj => RedactObject(obj),
        JsonArray array => new JsonArray(array.Select(Json).ToArray()),
        JsonValue value when value.TryGetValue(out string? s) => JsonValue.Create(Text(s)),
        _ => node.DeepClone(),
    };

    private JsonObject RedactObject(JsonObject obj)
    {
        var copy = new JsonObject();
        bool isEnv = obj.ContainsKey("name") && obj.ContainsKey("value") && obj.Count <= 3;
        bool secretEnv = isEnv && obj["name"] is JsonValue n && n.TryGetValue(out string? envName) && LooksSecret(envName);
        foreach (var (key, value) in obj)
        {
            if (key == "managedFields") continue;
            if (key == LastApplied)
            {
                copy[key] = "[REDACTED:last-applied-configuration]";
                continue;
            }
            copy[Text(key)] = secretEnv && key == "value" ? SecretEnvMarker : Json(value);
        }
        return copy;
    }

    private static bool LooksSecret(string? name)
    {
        string n = (name ?? string.Empty).ToLowerInvariant();
        return new[] { "token", "password", "passwd", "secret", "api_key", "apikey", "access_key", "private_key", "credential" }.Any(n.Contains);
    }

    /// <summary>Refuses text that still carries a credential or a restricted id (the last guard before anything is written).</summary>
    public void EnsureClean(string text, string what)
    {
        var findings = _scanner.Scan(text);
        bool restricted = _restrictedIds.Any(id => text.Contains(id, StringComparison.Ordinal)) || _patterns.Any(p => p.IsMatch(text));
        if (findings.Count == 0 && !restricted) return;
        string kinds = string.Join(", ", findings.Select(f => f.Kind).Append(restricted ? "restricted-id" : null).Where(k => k is not null).Distinct());
        throw new KfmException("OutputNotPolicySafe", KfmErrorKind.SecurityError,
            $"{what} would carry sensitive content ({kinds}) and was not written. Report this: redaction missed it.", what);
    }
}
