using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace KfmRollback.Engine.Adapters.Http;

/// <summary>
/// One probe's outcome, kept in memory only; callers reduce it to policy-safe evidence. The body
/// is parsed on first use: a leak comparison of thousands of probes parses one representative of
/// each distinct answer (<see cref="SameAnswer"/>), not every response.
/// </summary>
public sealed partial class ProbeResponse
{
    private const int NotLocated = int.MinValue;

    private readonly byte[] _content;
    private JsonNode? _body;
    private bool _parsed;
    // Byte range of the top-level audit_ref value (-1: none), and whether it is a URI.
    private int _auditStart = NotLocated, _auditEnd;
    private bool _auditIsUri;
    private int _answerHash;

    public ProbeResponse(int status, byte[] content, string? contentType, double milliseconds, IReadOnlyList<KeyValuePair<string, string>>? comparedHeaders = null)
    {
        Status = status;
        _content = content;
        ContentType = contentType;
        Milliseconds = milliseconds;
        ComparedHeaders = comparedHeaders ?? Array.Empty<KeyValuePair<string, string>>();
    }

    /// <summary>The plan's compared headers this response carried, by name; repeated fields joined with ", ".</summary>
    public IReadOnlyList<KeyValuePair<string, string>> ComparedHeaders { get; }

    /// <summary>A compared header's value, or null when the response did not carry it.</summary>
    public string? Header(string name)
    {
        foreach (KeyValuePair<string, string> header in ComparedHeaders)
        {
            if (string.Equals(header.Key, name, StringComparison.OrdinalIgnoreCase)) { return header.Value; }
        }
        return null;
    }

    public int Status { get; }
    public string? ContentType { get; }

    /// <summary>The body as received, for documents that are not JSON (an OpenAPI document in YAML).</summary>
    internal byte[] Content => _content;
    public double Milliseconds { get; }

    /// <summary>The JSON body, or null when it is empty or not JSON (itself a finding for the checks).</summary>
    public JsonNode? Body
    {
        get
        {
            if (!_parsed)
            {
                try { _body = _content.Length == 0 ? null : JsonNode.Parse(_content); }
                catch (JsonException) { _body = null; }
                _parsed = true;
            }
            return _body;
        }
    }

    /// <summary>Body length without the audit_ref value, so only structural differences count.</summary>
    public long NormalisedLength
    {
        get
        {
            Locate();
            return _content.Length - (_auditStart < 0 ? 0 : _auditEnd - _auditStart);
        }
    }

    /// <summary>
    /// Two responses are the same answer when a caller could not tell them apart except by the
    /// per-request top-level <c>audit_ref</c> value (which only counts as URI or not): same status,
    /// media type, compared headers and body bytes around it. Compared byte for byte, never by hash alone.
    /// </summary>
    public static IEqualityComparer<ProbeResponse> SameAnswer { get; } = new SameAnswerComparer();

    [GeneratedRegex(@"^[a-z][a-z0-9+.-]*://\S+$")] internal static partial Regex UriPattern();

    private ReadOnlySpan<byte> BeforeAudit => _auditStart < 0 ? _content : _content.AsSpan(0, _auditStart);
    private ReadOnlySpan<byte> AfterAudit => _auditStart < 0 ? ReadOnlySpan<byte>.Empty : _content.AsSpan(_auditEnd);

    private void Locate()
    {
        if (_auditStart != NotLocated) { return; }
        (int start, int end, bool isUri) = FindTopLevelAuditRef(_content);
        (_auditEnd, _auditIsUri) = (end, isUri);
        _auditStart = start;
    }

    private int AnswerHash()
    {
        if (_answerHash == 0)
        {
            Locate();
            var hash = new HashCode();
            hash.Add(Status);
            hash.Add(ContentType, StringComparer.Ordinal);
            hash.Add(_auditStart < 0);
            hash.Add(_auditIsUri);
            foreach (KeyValuePair<string, string> header in ComparedHeaders)
            {
                hash.Add(header.Key, StringComparer.Ordinal);
                hash.Add(header.Value, StringComparer.Ordinal);
            }
            hash.AddBytes(BeforeAudit);
            hash.Add(-1);
            hash.AddBytes(AfterAudit);
            _answerHash = hash.ToHashCode() | 1;   // never 0, which means "not computed"
        }
        return _answerHash;
    }

    private static (int Start, int End, bool IsUri) FindTopLevelAuditRef(byte[] content)
    {
        try
        {
            var reader = new Utf8JsonReader(content);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) { return (-1, -1, false); }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool audit = reader.ValueTextEquals("audit_ref"u8);
                if (!reader.Read()) { break; }
                if (audit)
                {
                    int start = (int)reader.TokenStartIndex;
                    bool isUri = reader.TokenType == JsonTokenType.String &&
                                 (reader.ValueIsEscaped ? UriPattern().IsMatch(reader.GetString()!) : IsUri(reader.ValueSpan));
                    reader.Skip();
                    return (start, (int)reader.BytesConsumed, isUri);
                }
                reader.Skip();
            }
        }
        catch (JsonException) { /* not JSON: compared byte for byte */ }
        return (-1, -1, false);
    }

    /// <summary><see cref="UriPattern"/> on UTF-8 bytes without making a string; non-ASCII goes to the regex.</summary>
    private static bool IsUri(ReadOnlySpan<byte> value)
    {
        foreach (byte b in value)
        {
            if (b >= 0x80) { return UriPattern().IsMatch(System.Text.Encoding.UTF8.GetString(value)); }
        }
        if (value.IsEmpty || value[0] is < (byte)'a' or > (byte)'z') { return false; }
        int i = 1;
        while (i < value.Length && value[i] is >= (byte)'a' and <= (byte)'z' or >= (byte)'0' and <= (byte)'9' or (byte)'+' or (byte)'.' or (byte)'-') { i++; }
        if (!value[i..].StartsWith("://"u8) || value.Length == i + 3) { return false; }
        foreach (byte b in value[(i + 3)..])
        {
            if (b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\f' or (byte)'\v') { return false; }
        }
        return true;
    }

    private sealed class SameAnswerComparer : IEqualityComparer<ProbeResponse>
    {
        public bool Equals(ProbeResponse? x, ProbeResponse? y)
        {
            if (ReferenceEquals(x, y)) { return true; }
            if (x is null || y is null || x.AnswerHash() != y.AnswerHash()) { return false; }
            return x.Status == y.Status && string.Equals(x.ContentType, y.ContentType, StringComparison.Ordinal) &&
                   (x._auditStart < 0) == (y._auditStart < 0) && x._auditIsUri == y._auditIsUri &&
                   x.ComparedHeaders.SequenceEqual(y.ComparedHeaders) &&
                   x.BeforeAudit.SequenceEqual(y.BeforeAudit) && x.AfterAudit.SequenceEqual(y.AfterAudit);
        }

        public int GetHashCode(ProbeResponse response) => response.AnswerHash();
    }
}
