using System.Text.Json;
using System.Text.Json.Nodes;

namespace KfmRollback.Engine.Freeze;

/// <summary>
/// The annotation a freeze leaves on the frozen object: incident, who, when, why and the exact
/// settings to restore. Kept on the object itself so any operator, or a later job, sees and
/// restores it without needing this machine's state.
/// </summary>
public sealed record FreezeRecord(string IncidentId, string FrozenBy, DateTimeOffset FrozenAt, string Reason, JsonNode? Prior)
{
    public const string Annotation = "kfm.dev/freeze";

    public string ToAnnotationValue() => new JsonObject
    {
        ["incident"] = IncidentId,
        ["by"] = FrozenBy,
        ["at"] = FrozenAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
        ["reason"] = Reason,
        ["prior"] = Prior?.DeepClone(),
    }.ToJsonString();

    public static FreezeRecord? FromAnnotations(IDictionary<string, string>? annotations)
    {
        if (annotations is null || !annotations.TryGetValue(Annotation, out string? text))
        {
            return null;
        }
        try
        {
            if (JsonNode.Parse(text) is not JsonObject node)
            {
                return null;
            }
            return new FreezeRecord(
                (string?)node["incident"] ?? string.Empty,
                (string?)node["by"] ?? string.Empty,
                DateTimeOffset.TryParse((string?)node["at"], System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out DateTimeOffset at) ? at : DateTimeOffset.MinValue,
                (string?)node["reason"] ?? string.Empty,
                node["prior"]?.DeepClone());
        }
        catch (JsonException)
        {
            // Someone hand-edited the annotation: treat the object as frozen by an unknown party.
            return new FreezeRecord(string.Empty, "unknown (annotation unreadable)", DateTimeOffset.MinValue, string.Empty, null);
        }
    }
}
