using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace KfmRollback.Lab;

/// <summary>Small helpers over System.Text.Json.Nodes used everywhere in the lab.</summary>
public static class J
{
    public static readonly JsonSerializerOptions Compact = new() { WriteIndented = false };
    public static readonly JsonSerializerOptions Pretty = new() { WriteIndented = true };

    public static JsonObject Parse(string s) => JsonNode.Parse(s)?.AsObject() ?? throw new FormatException("null JSON");
    public static JsonObject Clone(this JsonObject o) => o.DeepClone().AsObject();

    /// <summary>Dotted path lookup; a numeric segment indexes an array (e.g. spec.containers.0.image).</summary>
    public static JsonNode? At(this JsonNode? n, string path)
    {
        foreach (var part in path.Split('.'))
        {
            if (n is JsonObject o && o.TryGetPropertyValue(part, out var c)) n = c;
            else if (n is JsonArray a && int.TryParse(part, out var i) && i >= 0 && i < a.Count) n = a[i];
            else return null;
        }
        return n;
    }

    public static string? Str(this JsonNode? n, string path)
    {
        var v = n.At(path);
        if (v is JsonValue jv)
        {
            if (jv.TryGetValue<string>(out var s)) return s;
            return jv.ToJsonString();
        }
        return null;
    }

    public static long? Long(this JsonNode? n, string path)
    {
        var v = n.At(path);
        if (v is JsonValue jv)
        {
            if (jv.TryGetValue<long>(out var l)) return l;
            if (jv.TryGetValue<int>(out var i)) return i;
            if (jv.TryGetValue<double>(out var d)) return (long)d;
            if (jv.TryGetValue<string>(out var s) && long.TryParse(s, out var p)) return p;
        }
        return null;
    }

    public static bool Bool(this JsonNode? n, string path)
    {
        var v = n.At(path);
        if (v is JsonValue jv)
        {
            if (jv.TryGetValue<bool>(out var b)) return b;
            if (jv.TryGetValue<string>(out var s)) return s == "true";
        }
        return false;
    }

    /// <summary>Returns (creating if needed) the object at the dotted path.</summary>
    public static JsonObject Obj(this JsonObject o, string path)
    {
        var cur = o;
        foreach (var part in path.Split('.'))
        {
            if (cur[part] is JsonObject c) cur = c;
            else { var n = new JsonObject(); cur[part] = n; cur = n; }
        }
        return cur;
    }

    public static JsonArray Arr(this JsonObject o, string name)
    {
        if (o[name] is JsonArray a) return a;
        var n = new JsonArray(); o[name] = n; return n;
    }

    public static JsonObject Meta(this JsonObject o) => o.Obj("metadata");
    public static string Name(this JsonObject o) => o.Str("metadata.name") ?? "";
    public static string Ns(this JsonObject o) => o.Str("metadata.namespace") ?? "";
    public static string Uid(this JsonObject o) => o.Str("metadata.uid") ?? "";

    public static Dictionary<string, string> StrMap(this JsonNode? n)
    {
        var d = new Dictionary<string, string>();
        if (n is JsonObject o)
            foreach (var (k, v) in o) if (v is JsonValue jv && jv.TryGetValue<string>(out var s)) d[k] = s;
        return d;
    }

    public static JsonObject ToJson(this IDictionary<string, string> d)
    {
        var o = new JsonObject();
        foreach (var (k, v) in d) o[k] = v;
        return o;
    }

    public static bool Same(JsonNode? a, JsonNode? b) => JsonNode.DeepEquals(a, b);

    /// <summary>Canonical (sorted keys, compact) serialisation, used for hashing.</summary>
    public static string Canonical(JsonNode? n)
    {
        var sb = new StringBuilder();
        Write(n, sb);
        return sb.ToString();
        static void Write(JsonNode? n, StringBuilder sb)
        {
            switch (n)
            {
                case null: sb.Append("null"); break;
                case JsonObject o:
                    sb.Append('{');
                    var first = true;
                    foreach (var kv in o.OrderBy(k => k.Key, StringComparer.Ordinal))
                    {
                        if (!first) sb.Append(',');
                        first = false;
                        sb.Append(JsonSerializer.Serialize(kv.Key)).Append(':');
                        Write(kv.Value, sb);
                    }
                    sb.Append('}');
                    break;
                case JsonArray a:
                    sb.Append('[');
                    for (int i = 0; i < a.Count; i++) { if (i > 0) sb.Append(','); Write(a[i], sb); }
                    sb.Append(']');
                    break;
                default: sb.Append(n.ToJsonString()); break;
            }
        }
    }

    public static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'");
    public static string MicroTime(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'");
    public static DateTimeOffset? ParseTime(string? s) =>
        s != null && DateTimeOffset.TryParse(s, null, System.Globalization.DateTimeStyles.AssumeUniversal, out var t) ? t : null;

    const string SafeAlphabet = "bcdfghjklmnpqrstvwxz2456789";
    /// <summary>Kubernetes' rand.SafeEncodeString.</summary>
    public static string SafeEncode(string s)
    {
        var r = new char[s.Length];
        for (int i = 0; i < s.Length; i++) r[i] = SafeAlphabet[s[i] % SafeAlphabet.Length];
        return new string(r);
    }
    public static string RandomSuffix(int n)
    {
        var r = new char[n];
        for (int i = 0; i < n; i++) r[i] = SafeAlphabet[Random.Shared.Next(SafeAlphabet.Length)];
        return new string(r);
    }

    public static uint Fnv32a(string s)
    {
        uint h = 2166136261;
        foreach (var b in Encoding.UTF8.GetBytes(s)) { h ^= b; h *= 16777619; }
        return h;
    }
}
