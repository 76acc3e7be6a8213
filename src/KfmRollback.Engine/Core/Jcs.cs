using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace KfmRollback.Engine.Core;

/// <summary>
/// RFC 8785 JSON Canonicalization Scheme. Receipts and ledger entries are hashed over this form, never
/// over the pretty file on disk, so formatting changes cannot change a digest and any content change does.
/// </summary>
public static class Jcs
{
    public static byte[] Canonicalize(JsonNode? node)
    {
        var sb = new StringBuilder();
        Write(sb, node);
        // Lone surrogates cannot be encoded as UTF-8; the strict encoder refuses instead of substituting.
        try
        {
            return StrictUtf8.GetBytes(sb.ToString());
        }
        catch (EncoderFallbackException)
        {
            throw new KfmException("JcsInvalidString", KfmErrorKind.InvalidData,
                "A JSON string contains an unpaired UTF-16 surrogate and cannot be canonicalized (RFC 8785 requires valid Unicode). Fix the text that produced it.");
        }
    }

    public static string CanonicalizeToString(JsonNode? node) => Encoding.UTF8.GetString(Canonicalize(node));

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static void Write(StringBuilder sb, JsonNode? node)
    {
        switch (node)
        {
            case null:
                sb.Append("null");
                break;
            case JsonObject obj:
                WriteObject(sb, obj);
                break;
            case JsonArray arr:
                sb.Append('[');
                for (var i = 0; i < arr.Count; i++)
                {
                    if (i > 0) sb.Append(',');
                    Write(sb, arr[i]);
                }
                sb.Append(']');
                break;
            case JsonValue value:
                WriteValue(sb, value);
                break;
        }
    }

    private static void WriteObject(StringBuilder sb, JsonObject obj)
    {
        // string.CompareOrdinal compares UTF-16 code units, which is exactly RFC 8785 §3.2.3.
        var members = obj.ToList();
        members.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        sb.Append('{');
        for (var i = 0; i < members.Count; i++)
        {
            if (i > 0) sb.Append(',');
            WriteString(sb, members[i].Key);
            sb.Append(':');
            Write(sb, members[i].Value);
        }
        sb.Append('}');
    }

    private static void WriteValue(StringBuilder sb, JsonValue value)
    {
        switch (value.GetValueKind())
        {
            case JsonValueKind.String:
                WriteString(sb, value.GetValue<string>());
                break;
            case JsonValueKind.True:
                sb.Append("true");
                break;
            case JsonValueKind.False:
                sb.Append("false");
                break;
            case JsonValueKind.Null:
                sb.Append("null");
                break;
            case JsonValueKind.Number:
                // Whatever CLR type backs the node, JSON numbers are IEEE-754 doubles in JCS (I-JSON).
                var text = value.ToJsonString();
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
                    throw NumberError();
                sb.Append(FormatNumber(d));
                break;
            default:
                throw new KfmException("JcsUnsupportedValue", KfmErrorKind.InvalidData,
                    "A JSON value of an unsupported kind cannot be canonicalized; only strings, numbers, booleans, null, objects and arrays are allowed.");
        }
    }

    private static KfmException NumberError() => new("JcsNumberOutOfRange", KfmErrorKind.InvalidData,
        "A JSON number is NaN, infinite or outside the IEEE-754 double range; RFC 8785 cannot represent it. Store it as a string instead.");

    /// <summary>ECMAScript Number.prototype.toString(), as RFC 8785 §3.2.2.3 requires.</summary>
    public static string FormatNumber(double d)
    {
        if (double.IsNaN(d) || double.IsInfinity(d)) throw NumberError();
        if (d == 0) return "0"; // also -0
        var negative = d < 0;
        // "R" is the shortest round-tripping representation on .NET Core 3.0+, the same digit string
        // ECMAScript picks; only the layout (where the point goes, when to use an exponent) differs.
        var (digits, pointPos) = ShortestDigits(Math.Abs(d).ToString("R", CultureInfo.InvariantCulture));
        var k = digits.Length;
        var n = pointPos;
        var sb = new StringBuilder();
        if (negative) sb.Append('-');
        if (k <= n && n <= 21)
        {
            sb.Append(digits).Append('0', n - k);
        }
        else if (0 < n && n <= 21)
        {
            sb.Append(digits, 0, n).Append('.').Append(digits, n, k - n);
        }
        else if (-6 < n && n <= 0)
        {
            sb.Append("0.").Append('0', -n).Append(digits);
        }
        else
        {
            var e = n - 1;
            sb.Append(digits[0]);
            if (k > 1) sb.Append('.').Append(digits, 1, k - 1);
            sb.Append('e').Append(e >= 0 ? '+' : '-').Append(Math.Abs(e).ToString(CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    /// <summary>
    /// Splits .NET's "R" text (e.g. "1.2345E-07", "123.45", "1E+21") into significant digits without
    /// leading/trailing zeros and n, the ECMAScript decimal-point position: value = 0.digits × 10^n.
    /// </summary>
    private static (string Digits, int PointPos) ShortestDigits(string r)
    {
        var exponent = 0;
        var ePos = r.IndexOfAny(new[] { 'E', 'e' });
        var mantissa = r;
        if (ePos >= 0)
        {
            exponent = int.Parse(r.AsSpan(ePos + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            mantissa = r[..ePos];
        }
        var dot = mantissa.IndexOf('.');
        var intPart = dot >= 0 ? mantissa[..dot] : mantissa;
        var fracPart = dot >= 0 ? mantissa[(dot + 1)..] : string.Empty;
        var all = intPart + fracPart;
        var pointPos = intPart.Length + exponent;
        var lead = 0;
        while (lead < all.Length - 1 && all[lead] == '0') { lead++; pointPos--; }
        var trimmed = all[lead..].TrimEnd('0');
        return (trimmed.Length == 0 ? "0" : trimmed, pointPos);
    }

    private static void WriteString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
