using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace KfmRollback.Engine.Refs;

/// <summary>
/// The quarantine as controllers and people see it on the cluster: annotation
/// <c>kfm.dev/quarantine</c> on the API Deployment (and on the Argo CD Application / Flux objects
/// that deploy it), a JSON list of <c>{digest, incident, run, at, by}</c>, newest last. The incident
/// journal is the full record; the annotation keeps the newest <see cref="MaxEntries"/> so a fresh
/// sandbox with an empty journal still never targets them.
/// </summary>
public static class QuarantineAnnotation
{
    public const string Key = "kfm.dev/quarantine";
    public const int MaxEntries = 50;

    /// <summary>The entries an annotation value holds; an unreadable value holds none (and says so).</summary>
    public static IReadOnlyList<QuarantineEntry> Parse(string? value, string source, out string? problem)
    {
        problem = null;
        if (string.IsNullOrWhiteSpace(value))
        {
            return Array.Empty<QuarantineEntry>();
        }
        try
        {
            if (JsonNode.Parse(value) is not JsonArray list)
            {
                problem = $"{Key} is not a JSON list";
                return Array.Empty<QuarantineEntry>();
            }
            return list.OfType<JsonObject>()
                .Where(o => ImageRefs.IsDigest(S(o, "digest")))
                .Select(o => new QuarantineEntry
                {
                    Digest = S(o, "digest")!,
                    Source = source,
                    IncidentId = S(o, "incident"),
                    RunId = S(o, "run"),
                    At = S(o, "at") is { } at && DateTimeOffset.TryParse(at, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t.ToUniversalTime() : null,
                    Actor = S(o, "by"),
                    MovedTo = S(o, "to"),
                })
                .ToList();
        }
        catch (JsonException)
        {
            problem = $"{Key} is not valid JSON";
            return Array.Empty<QuarantineEntry>();
        }
    }

    /// <summary>The annotation value with <paramref name="entry"/> added (replacing an older entry for its digest).</summary>
    public static string Add(string? value, QuarantineEntry entry)
    {
        JsonArray list = Existing(value);
        Remove(list, entry.Digest);
        var item = new JsonObject { ["digest"] = entry.Digest };
        if (entry.MovedTo is not null) { item["to"] = entry.MovedTo; }
        if (entry.IncidentId is not null) { item["incident"] = entry.IncidentId; }
        if (entry.RunId is not null) { item["run"] = entry.RunId; }
        if (entry.At is not null) { item["at"] = entry.At.Value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture); }
        if (entry.Actor is not null) { item["by"] = entry.Actor; }
        list.Add(item);
        while (list.Count > MaxEntries)
        {
            list.RemoveAt(0);
        }
        return list.ToJsonString();
    }

    /// <summary>The annotation value without <paramref name="digest"/> (an operator forced it as a target, on the record).</summary>
    public static string Without(string? value, string digest)
    {
        JsonArray list = Existing(value);
        Remove(list, digest);
        return list.ToJsonString();
    }

    private static JsonArray Existing(string? value)
    {
        try
        {
            return string.IsNullOrWhiteSpace(value) ? new JsonArray() : JsonNode.Parse(value) as JsonArray ?? new JsonArray();
        }
        catch (JsonException)
        {
            return new JsonArray();
        }
    }

    private static void Remove(JsonArray list, string digest)
    {
        for (int i = list.Count - 1; i >= 0; i--)
        {
            if (list[i] is JsonObject o && S(o, "digest") == digest)
            {
                list.RemoveAt(i);
            }
        }
    }

    private static string? S(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue(out string? s) ? s : null;
}
