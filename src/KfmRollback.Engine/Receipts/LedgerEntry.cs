using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace KfmRollback.Engine.Receipts;

/// <summary>
/// One line of ledger.ndjson. Each entry names the previous entry's digest (<see cref="Prev"/>), so
/// removing, editing or reordering a line breaks the chain at that point.
/// </summary>
public sealed class LedgerEntry
{
    public const string RollbackEventType = "rollback";

    [JsonPropertyName("seq")] public required long Seq { get; init; }
    [JsonPropertyName("event_type")] public required string EventType { get; init; }
    [JsonPropertyName("receipt_digest")] public required string ReceiptDigest { get; init; }
    [JsonPropertyName("incident_id")] public required string IncidentId { get; init; }
    [JsonPropertyName("environment")] public required string Environment { get; init; }
    [JsonPropertyName("recorded_at")] public required string RecordedAt { get; init; }
    /// <summary>entry_digest of the line before, or null on the first line.</summary>
    [JsonPropertyName("prev")] public required string? Prev { get; init; }
    /// <summary>sha256 over the JCS of this line without the entry_digest member.</summary>
    [JsonPropertyName("entry_digest")] public required string EntryDigest { get; init; }
}

/// <summary>Entry digests and (de)serialisation of ledger lines, shared by writers and the verifier.</summary>
internal static class LedgerCodec
{
    private static readonly JsonSerializerOptions Options = new() { WriteIndented = false };

    public static LedgerEntry NewEntry(long seq, string receiptDigest, string incidentId, string environment, string recordedAt, string? prev)
    {
        var unsigned = new LedgerEntry
        {
            Seq = seq, EventType = LedgerEntry.RollbackEventType, ReceiptDigest = receiptDigest,
            IncidentId = incidentId, Environment = environment, RecordedAt = recordedAt, Prev = prev, EntryDigest = string.Empty,
        };
        var node = JsonSerializer.SerializeToNode(unsigned, Options)!.AsObject();
        return new LedgerEntry
        {
            Seq = seq, EventType = unsigned.EventType, ReceiptDigest = receiptDigest, IncidentId = incidentId,
            Environment = environment, RecordedAt = recordedAt, Prev = prev, EntryDigest = DigestOf(node),
        };
    }

    /// <summary>Digest over everything on the line except entry_digest itself (extra members included, so they are caught).</summary>
    public static string DigestOf(JsonObject line)
    {
        var copy = line.DeepClone().AsObject();
        copy.Remove("entry_digest");
        return KfmRollback.Engine.Receipts.ReceiptDigest.Of(copy);
    }

    public static string ToLine(LedgerEntry entry) => JsonSerializer.Serialize(entry, Options);

    /// <summary>Parses one line; null with a reason when it is not a complete, well-typed entry.</summary>
    public static LedgerEntry? TryParse(string line, out JsonObject? node, out string? reason)
    {
        node = null;
        reason = null;
        try
        {
            node = JsonNode.Parse(line) as JsonObject;
            if (node is null) { reason = "is not a JSON object"; return null; }
            var entry = node.Deserialize<LedgerEntry>(Options);
            if (entry is null || !Receipts.ReceiptDigest.IsDigest(entry.ReceiptDigest) || !Receipts.ReceiptDigest.IsDigest(entry.EntryDigest)
                || (entry.Prev is not null && !Receipts.ReceiptDigest.IsDigest(entry.Prev)))
            {
                reason = "lacks a well-formed receipt_digest, entry_digest or prev";
                return null;
            }
            return entry;
        }
        catch (JsonException)
        {
            // Never repeat the parser's message: it may quote line content.
            reason = "is not valid JSON or lacks required members";
            return null;
        }
    }

    public static IReadOnlyList<string> SplitLines(byte[] content)
    {
        var text = Encoding.UTF8.GetString(content);
        var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        if (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1); // final newline
        return lines;
    }
}
