using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Receipts;

/// <summary>Converts receipts to and from JSON; parsing always goes through the schema first.</summary>
public static class ReceiptJson
{
    // Relaxed escaping keeps the file readable ("0.1.0+abc", not "0.1.0\u002Babc"); it is never
    // embedded in HTML, and the digest is taken over the JCS form anyway.
    private static readonly JsonSerializerOptions Pretty = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
    private static readonly JsonSerializerOptions Compact = new() { WriteIndented = false };

    public static JsonObject ToJsonObject(RollbackReceipt receipt) =>
        JsonSerializer.SerializeToNode(receipt, Compact)!.AsObject();

    /// <summary>Human-friendly file content. Its digest is still taken over the JCS form.</summary>
    public static byte[] ToPrettyBytes(RollbackReceipt receipt) =>
        Encoding.UTF8.GetBytes(JsonSerializer.Serialize(receipt, Pretty) + "\n");

    public static RollbackReceipt Parse(string json) => FromJsonNode(ParseNode(json, "receipt"));

    public static RollbackReceipt FromJsonNode(JsonNode? node)
    {
        ReceiptSchema.Validate(node);
        return node.Deserialize<RollbackReceipt>(Compact)
               ?? throw new KfmException("ReceiptSchemaInvalid", KfmErrorKind.InvalidData,
                   "The receipt JSON is null. Provide a receipt object as produced by New-KfmRollbackReceipt.");
    }

    internal static JsonNode? ParseNode(string json, string what)
    {
        try
        {
            return JsonNode.Parse(json);
        }
        catch (JsonException ex)
        {
            // The parser's message can quote content; only its position is safe to repeat.
            throw new KfmException("ReceiptJsonUnparsable", KfmErrorKind.InvalidData,
                $"The {what} is not valid JSON (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1}). Restore it from a trusted copy or re-create it.");
        }
    }
}

/// <summary>Receipt addresses: <c>"sha256:" + hex(sha256(JCS(receipt)))</c>.</summary>
public static class ReceiptDigest
{
    public const string Prefix = "sha256:";

    public static string Of(JsonNode? node) => Prefix + Sha256Hex(Jcs.Canonicalize(node));

    /// <summary>Lowercase hex SHA-256 (net8.0 has no Convert.ToHexStringLower).</summary>
    internal static string Sha256Hex(byte[] bytes) => Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant();

    public static string Of(RollbackReceipt receipt) => Of(ReceiptJson.ToJsonObject(receipt));

    /// <summary>The 64 hex characters of a <c>sha256:</c> digest (the receipt's file name stem).</summary>
    public static string Hex(string digest) => digest.StartsWith(Prefix, StringComparison.Ordinal) ? digest[Prefix.Length..] : digest;

    internal static bool IsDigest(string? s) =>
        s is not null && s.Length == Prefix.Length + 64 && s.StartsWith(Prefix, StringComparison.Ordinal) && IsLowerHex(s.AsSpan(Prefix.Length));

    internal static bool IsLowerHex(ReadOnlySpan<char> s)
    {
        foreach (var c in s)
        {
            if (!char.IsAsciiDigit(c) && c is < 'a' or > 'f') return false;
        }
        return s.Length > 0;
    }
}
