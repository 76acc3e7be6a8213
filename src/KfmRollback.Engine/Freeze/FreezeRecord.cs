using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace KfmRollback.Engine.Freeze;

/// <summary>
/// An incident that holds a freeze: who froze (or joined the freeze) for it, when and why. A freeze
/// belongs to the incidents that hold it, and stays in force while any of them is open (has not
/// stopped its freeze with Stop-KfmFreeze).
/// </summary>
public sealed record FreezeHolder(string IncidentId, string By, DateTimeOffset At, string Reason)
{
    public override string ToString() => $"{IncidentId} ({By}, {At.UtcDateTime:yyyy-MM-dd HH:mm} UTC)";

    internal static FreezeHolder Of(FreezeRequest request) => new(request.IncidentId, request.Actor, request.At, request.Reason);

    internal JsonObject ToJson() => new()
    {
        ["incident"] = IncidentId,
        ["by"] = By,
        ["at"] = FreezeRecord.Time(At),
        ["reason"] = Reason,
    };

    internal static FreezeHolder FromJson(JsonNode? node) => new(
        (string?)node?["incident"] ?? string.Empty,
        (string?)node?["by"] ?? string.Empty,
        FreezeRecord.ParseTime((string?)node?["at"]),
        (string?)node?["reason"] ?? string.Empty);
}

/// <summary>
/// The annotation a freeze leaves on the frozen object: incident, who, when, why, the exact settings
/// to restore, and every incident holding the freeze. Kept on the object itself so any operator, or a
/// later job, sees and restores it without needing this machine's state.
/// </summary>
public sealed record FreezeRecord(string IncidentId, string FrozenBy, DateTimeOffset FrozenAt, string Reason, JsonNode? Prior)
{
    public const string Annotation = Adapters.GitOpsControllers.CustomObjectController.DefaultRecordAnnotation;

    /// <summary>
    /// The incidents holding the freeze, first freezer first. A record written before holders were
    /// recorded is read as held by its own incident alone; an unreadable one by nobody known.
    /// </summary>
    public IReadOnlyList<FreezeHolder> Holders { get; init; } = Array.Empty<FreezeHolder>();

    /// <summary>A new freeze by <paramref name="request"/>, its only holder.</summary>
    public static FreezeRecord For(FreezeRequest request, JsonNode? prior) =>
        new(request.IncidentId, request.Actor, request.At, request.Reason, prior) { Holders = new[] { FreezeHolder.Of(request) } };

    public bool IsHeldBy(string incidentId) => Holders.Any(h => string.Equals(h.IncidentId, incidentId, StringComparison.OrdinalIgnoreCase));

    /// <summary>This record with <paramref name="request"/>'s incident added to the holders.</summary>
    public FreezeRecord Join(FreezeRequest request) => this with { Holders = Holders.Append(FreezeHolder.Of(request)).ToList() };

    /// <summary>This record without <paramref name="incidentId"/> among the holders.</summary>
    public FreezeRecord Release(string incidentId) =>
        this with { Holders = Holders.Where(h => !string.Equals(h.IncidentId, incidentId, StringComparison.OrdinalIgnoreCase)).ToList() };

    public string ToAnnotationValue() => new JsonObject
    {
        ["incident"] = IncidentId,
        ["by"] = FrozenBy,
        ["at"] = Time(FrozenAt),
        ["reason"] = Reason,
        ["prior"] = Prior?.DeepClone(),
        ["holders"] = new JsonArray(Holders.Select(h => (JsonNode)h.ToJson()).ToArray()),
    }.ToJsonString();

    /// <param name="key">The record's annotation: <see cref="Annotation"/>, or a mechanism's own when two mechanisms freeze one object (Argo CD and its Image Updater on one Application).</param>
    public static FreezeRecord? FromAnnotations(IDictionary<string, string>? annotations, string key = Annotation)
    {
        if (annotations is null || !annotations.TryGetValue(key, out string? text))
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
                ParseTime((string?)node["at"]),
                (string?)node["reason"] ?? string.Empty,
                node["prior"]?.DeepClone())
            {
                Holders = node["holders"] is JsonArray holders
                    ? holders.Select(FreezeHolder.FromJson).ToList()
                    : new[] { new FreezeHolder((string?)node["incident"] ?? string.Empty, (string?)node["by"] ?? string.Empty, ParseTime((string?)node["at"]), (string?)node["reason"] ?? string.Empty) },
            };
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            // Someone hand-edited the annotation: treat the object as frozen by an unknown party.
            return new FreezeRecord(string.Empty, "unknown (annotation unreadable)", DateTimeOffset.MinValue, string.Empty, null);
        }
    }

    internal static string Time(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    internal static DateTimeOffset ParseTime(string? text) =>
        DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out DateTimeOffset at) ? at : DateTimeOffset.MinValue;
}
