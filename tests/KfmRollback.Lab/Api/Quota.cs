using System.Globalization;
using System.Text.Json.Nodes;

namespace KfmRollback.Lab.Api;

/// <summary>
/// The ResourceQuota admission plugin for pods (kubernetes plugin/pkg/admission/resourcequota and
/// pkg/quota/v1/evaluator/core/pods.go): a pod counts against every quota of its namespace while it
/// is not terminal (phase Succeeded or Failed); a create that would take any tracked resource past
/// spec.hard is refused with 403 Forbidden "exceeded quota: ..." (dryRun=All too), and a pod that does
/// not say a tracked compute resource is refused with "must specify ...". Scopes are not modelled:
/// every quota of the namespace applies to every pod.
/// </summary>
public static class QuotaAdmission
{
    /// <summary>What one pod consumes of each resource a quota can track.</summary>
    public static Dictionary<string, decimal> Usage(JsonObject pod)
    {
        var usage = new Dictionary<string, decimal>(StringComparer.Ordinal) { ["pods"] = 1, ["count/pods"] = 1 };
        foreach (var c in (pod.At("spec.containers") as JsonArray)?.OfType<JsonObject>() ?? [])
        {
            foreach (var (kind, field) in new[] { ("requests", "requests"), ("limits", "limits") })
                foreach (var res in new[] { "cpu", "memory" })
                    if (c.At($"resources.{field}.{res}") is JsonNode q)
                    {
                        var v = Quantity.Parse(q.ToString());
                        Add(usage, $"{kind}.{res}", v);
                        if (kind == "requests") Add(usage, res, v);
                    }
        }
        return usage;
    }

    static void Add(Dictionary<string, decimal> d, string k, decimal v) => d[k] = d.GetValueOrDefault(k) + v;

    public static bool Terminal(JsonObject pod) => pod.Str("status.phase") is "Succeeded" or "Failed";

    /// <summary>What the namespace's pods use of each resource <paramref name="quota"/> tracks (status.used).</summary>
    public static Dictionary<string, decimal> Used(JsonObject quota, IEnumerable<JsonObject> pods)
    {
        var hard = quota.At("spec.hard").StrMap();
        var used = hard.Keys.ToDictionary(k => k, _ => 0m, StringComparer.Ordinal);
        foreach (var pod in pods.Where(p => !Terminal(p)))
            foreach (var (k, v) in Usage(pod))
                if (used.ContainsKey(k)) used[k] += v;
        return used;
    }

    public static void Admit(JsonObject pod, IEnumerable<JsonObject> quotas, IEnumerable<JsonObject> pods)
    {
        var podList = pods.ToList();
        var usage = Usage(pod);
        foreach (var quota in quotas.OrderBy(q => q.Name(), StringComparer.Ordinal))
        {
            var hard = quota.At("spec.hard").StrMap();
            var missing = new List<string>();
            foreach (var res in hard.Keys.Where(k => k is "cpu" or "memory" or "requests.cpu" or "requests.memory" or "limits.cpu" or "limits.memory").Order(StringComparer.Ordinal))
            {
                string field = res.StartsWith("limits.", StringComparison.Ordinal) ? "limits" : "requests";
                string name = res[(res.IndexOf('.') + 1)..];
                var without = ((pod.At("spec.containers") as JsonArray)?.OfType<JsonObject>() ?? []).Where(c => c.At($"resources.{field}.{name}") is null).Select(c => c.Str("name")).ToList();
                if (without.Count > 0) missing.Add($"{res} for: {string.Join(",", without)}");
            }
            if (missing.Count > 0)
                throw Forbidden(pod, $"failed quota: {quota.Name()}: must specify {string.Join("; ", missing)}");
            var used = Used(quota, podList);
            var failed = hard.Keys.Where(k => usage.ContainsKey(k) && used[k] + usage[k] > Quantity.Parse(hard[k])).Order(StringComparer.Ordinal).ToList();
            if (failed.Count > 0)
                throw Forbidden(pod, $"exceeded quota: {quota.Name()}, requested: {Pretty(failed, k => usage[k])}, used: {Pretty(failed, k => used[k])}, limited: {string.Join(",", failed.Select(k => $"{k}={hard[k]}"))}");
        }
    }

    static string Pretty(IEnumerable<string> keys, Func<string, decimal> value) => string.Join(",", keys.Select(k => $"{k}={Quantity.Format(k, value(k))}"));

    static ApiException Forbidden(JsonObject pod, string why) =>
        new(403, "Forbidden", $"pods \"{pod.Name()}\" is forbidden: {why}", new JsonObject { ["name"] = pod.Name(), ["kind"] = "pods" });

    /// <summary>status.hard and status.used as the quota controller keeps them.</summary>
    public static JsonObject Status(JsonObject quota, IEnumerable<JsonObject> pods)
    {
        var hard = quota.At("spec.hard").StrMap();
        var used = Used(quota, pods);
        var h = new JsonObject();
        var u = new JsonObject();
        foreach (var k in hard.Keys.Order(StringComparer.Ordinal))
        {
            h[k] = hard[k];
            u[k] = Quantity.Format(k, used[k]);
        }
        return new JsonObject { ["hard"] = h, ["used"] = u };
    }
}

/// <summary>Kubernetes resource quantities (apimachinery resource.Quantity) as decimals of the base unit.</summary>
public static class Quantity
{
    static readonly (string Suffix, decimal Factor)[] Suffixes =
    [
        ("Ki", 1024m), ("Mi", 1024m * 1024), ("Gi", 1024m * 1024 * 1024), ("Ti", 1024m * 1024 * 1024 * 1024),
        ("m", 0.001m), ("k", 1000m), ("M", 1_000_000m), ("G", 1_000_000_000m), ("T", 1_000_000_000_000m),
    ];

    public static decimal Parse(string text)
    {
        text = text.Trim();
        foreach (var (suffix, factor) in Suffixes)
            if (text.EndsWith(suffix, StringComparison.Ordinal) && decimal.TryParse(text[..^suffix.Length], NumberStyles.Number, CultureInfo.InvariantCulture, out var n))
                return n * factor;
        if (decimal.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var plain)) return plain;
        throw ApiException.BadRequest($"quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': \"{text}\"");
    }

    /// <summary>The canonical text: whole or milli cores for cpu, the largest exact binary suffix for memory, a count otherwise.</summary>
    public static string Format(string resource, decimal value)
    {
        if (resource.EndsWith("cpu", StringComparison.Ordinal) || resource == "cpu")
            return value == decimal.Truncate(value) ? value.ToString("0", CultureInfo.InvariantCulture) : (value * 1000).ToString("0", CultureInfo.InvariantCulture) + "m";
        if (resource.EndsWith("memory", StringComparison.Ordinal))
        {
            foreach (var (suffix, factor) in Suffixes.Where(s => s.Suffix.EndsWith('i')).Reverse())
                if (value != 0 && value % factor == 0) return (value / factor).ToString("0", CultureInfo.InvariantCulture) + suffix;
        }
        return value.ToString("0.###", CultureInfo.InvariantCulture);
    }
}
