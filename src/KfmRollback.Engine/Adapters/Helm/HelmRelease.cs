using KfmRollback.Engine.Core;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace KfmRollback.Engine.Adapters.Helm;

/// <summary>helm's release statuses (pkg/release/status.go), spelled as stored.</summary>
public static class HelmStatus
{
    public const string Deployed = "deployed";
    public const string Superseded = "superseded";
    public const string Failed = "failed";
    public const string PendingRollback = "pending-rollback";
    public const string PendingInstall = "pending-install";
    public const string PendingUpgrade = "pending-upgrade";

    public static bool IsPending(string? status) => status is PendingInstall or PendingUpgrade or PendingRollback;
}

/// <summary>
/// One helm v3 release record (pkg/release/release.go, info.go), kept as the JSON helm wrote so that
/// everything the module does not interpret (chart templates and files, hooks, values) is copied
/// through untouched. Values (<c>config</c>, <c>chart.values</c>) are only ever hashed, never shown.
/// </summary>
public sealed class HelmRelease
{
    public HelmRelease(JsonObject json, IReadOnlyDictionary<string, string>? secretLabels = null)
    {
        Json = json;
        SecretLabels = secretLabels ?? new Dictionary<string, string>();
    }

    /// <summary>The release as stored. Holds values: never print or log it.</summary>
    public JsonObject Json { get; }

    /// <summary>The labels of the Secret it was read from (helm keeps its own and custom ones there).</summary>
    public IReadOnlyDictionary<string, string> SecretLabels { get; }

    public string Name => Json["name"]?.GetValue<string>() ?? string.Empty;
    public string? Namespace => Json["namespace"]?.GetValue<string>();
    public int Version => Json["version"]?.GetValue<int>() ?? 0;
    public string? Status => Info?["status"]?.GetValue<string>();
    public string? Description => Info?["description"]?.GetValue<string>();
    public string Manifest => Json["manifest"]?.GetValue<string>() ?? string.Empty;
    public string? ChartName => Metadata?["name"]?.GetValue<string>();
    public string? ChartVersion => Metadata?["version"]?.GetValue<string>();
    public string? AppVersion => Metadata?["appVersion"]?.GetValue<string>();
    /// <summary>helm history's CHART column: name-version.</summary>
    public string? Chart => ChartName is null ? null : $"{ChartName}-{ChartVersion}";
    public DateTimeOffset? FirstDeployed => GoTime.Parse(Info?["first_deployed"]);
    public DateTimeOffset? LastDeployed => GoTime.Parse(Info?["last_deployed"]);

    /// <summary>sha256 of the values in canonical JSON (RFC 8785), so equal values hash equal whoever wrote them.</summary>
    public string ConfigHash => Hash(Json["config"] ?? new JsonObject());

    /// <summary>sha256 of the rendered manifest.</summary>
    public string ManifestHash => "sha256:" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(Manifest))).ToLowerInvariant();

    /// <summary>The release's custom labels: the Secret's labels without helm's system labels (driver/util.go filterSystemLabels).</summary>
    public IReadOnlyDictionary<string, string> CustomLabels =>
        SecretLabels.Where(l => !HelmReleaseStore.SystemLabels.Contains(l.Key)).ToDictionary(l => l.Key, l => l.Value, StringComparer.Ordinal);

    private JsonObject? Info => Json["info"] as JsonObject;
    private JsonObject? Metadata => Json["chart"]?["metadata"] as JsonObject;

    /// <summary>A copy with another status (and description, when given), as helm's SetStatus.</summary>
    public HelmRelease WithStatus(string status, string? description = null, IReadOnlyDictionary<string, string>? labels = null)
    {
        var json = (JsonObject)Json.DeepClone();
        var info = json["info"] as JsonObject ?? new JsonObject();
        json["info"] = info;
        info["status"] = status;
        if (description is not null)
        {
            info["description"] = description;
        }
        return new HelmRelease(json, labels ?? SecretLabels);
    }

    /// <summary>
    /// The release <c>helm rollback</c> writes (pkg/action/rollback.go prepareRollback): revision
    /// current+1 with the target's chart, values, manifest, hooks and notes, the current release's
    /// first-deployed time, status pending-rollback and "Rollback to N".
    /// </summary>
    public static HelmRelease RollbackOf(HelmRelease current, HelmRelease target, DateTimeOffset now)
    {
        var info = new JsonObject
        {
            ["first_deployed"] = current.Json["info"]?["first_deployed"]?.DeepClone() ?? "",
            ["last_deployed"] = GoTime.Format(now),
            ["deleted"] = "",
            ["description"] = $"Rollback to {target.Version}",
            ["status"] = HelmStatus.PendingRollback,
        };
        if (target.Json["info"]?["notes"] is JsonNode notes)
        {
            info["notes"] = notes.DeepClone();
        }
        // Field order and omitempty as Go's encoding/json writes release.Release.
        var json = new JsonObject { ["name"] = current.Name, ["info"] = info };
        Copy(target.Json, json, "chart");
        if (target.Json["config"] is JsonObject { Count: > 0 } config)
        {
            json["config"] = config.DeepClone();
        }
        Copy(target.Json, json, "manifest");
        if (target.Json["hooks"] is JsonArray { Count: > 0 } hooks)
        {
            json["hooks"] = hooks.DeepClone();
        }
        json["version"] = current.Version + 1;
        Copy(current.Json, json, "namespace");
        return new HelmRelease(json, target.CustomLabels);
    }

    private static void Copy(JsonObject from, JsonObject to, string key)
    {
        if (from[key] is JsonNode value)
        {
            to[key] = value.DeepClone();
        }
    }

    private static string Hash(JsonNode node) => "sha256:" + Convert.ToHexString(SHA256.HashData(Jcs.Canonicalize(node))).ToLowerInvariant();
}

/// <summary>Go's time.Time in JSON (RFC 3339 with nanoseconds, trailing zeros trimmed) and helm's "" for zero.</summary>
public static class GoTime
{
    public static string Format(DateTimeOffset at)
    {
        string fraction = at.UtcDateTime.ToString("fffffff", CultureInfo.InvariantCulture).TrimEnd('0');
        return at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture) + (fraction.Length > 0 ? "." + fraction : "") + "Z";
    }

    public static DateTimeOffset? Parse(JsonNode? node) =>
        node is JsonValue value && value.TryGetValue(out string? text) && !string.IsNullOrEmpty(text)
            && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out DateTimeOffset parsed)
            ? parsed : null;
}
