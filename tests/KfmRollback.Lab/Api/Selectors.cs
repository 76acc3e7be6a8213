using System.Text.Json.Nodes;

namespace KfmRollback.Lab.Api;

/// <summary>Label selectors (string and matchLabels/matchExpressions forms) and field selectors.</summary>
public sealed class LabelSelector
{
    public sealed record Req(string Key, string Op, string[] Values);
    public List<Req> Reqs { get; } = new();
    public bool Empty => Reqs.Count == 0;

    public static LabelSelector Parse(string? s)
    {
        var sel = new LabelSelector();
        if (string.IsNullOrWhiteSpace(s)) return sel;
        foreach (var part in SplitTop(s))
        {
            var p = part.Trim();
            if (p.Length == 0) continue;
            if (p.StartsWith('!')) { sel.Reqs.Add(new(p[1..].Trim(), "!", [])); continue; }
            var words = p.Split(' ', 2, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (words.Length == 2 && (words[1].StartsWith("in ") || words[1].StartsWith("in(") || words[1].StartsWith("notin ") || words[1].StartsWith("notin(")))
            {
                var op = words[1].StartsWith("in") ? "in" : "notin";
                var rest = words[1][op.Length..].Trim();
                if (!rest.StartsWith('(') || !rest.EndsWith(')')) throw ApiException.BadRequest($"unable to parse requirement: {p}");
                var vals = rest[1..^1].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                sel.Reqs.Add(new(words[0], op, vals));
                continue;
            }
            int i;
            if ((i = p.IndexOf("!=", StringComparison.Ordinal)) > 0) sel.Reqs.Add(new(p[..i].Trim(), "!=", [p[(i + 2)..].Trim()]));
            else if ((i = p.IndexOf("==", StringComparison.Ordinal)) > 0) sel.Reqs.Add(new(p[..i].Trim(), "=", [p[(i + 2)..].Trim()]));
            else if ((i = p.IndexOf('=')) > 0) sel.Reqs.Add(new(p[..i].Trim(), "=", [p[(i + 1)..].Trim()]));
            else if (p.Contains(' ') || p.Contains('(')) throw ApiException.BadRequest($"unable to parse requirement: {p}");
            else sel.Reqs.Add(new(p, "exists", []));
        }
        return sel;
    }

    static IEnumerable<string> SplitTop(string s)
    {
        int depth = 0, start = 0;
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '(') depth++;
            else if (s[i] == ')') depth--;
            else if (s[i] == ',' && depth == 0) { yield return s[start..i]; start = i + 1; }
        }
        yield return s[start..];
    }

    /// <summary>From a metav1.LabelSelector object.</summary>
    public static LabelSelector FromObject(JsonNode? sel)
    {
        var r = new LabelSelector();
        foreach (var (k, v) in sel.At("matchLabels").StrMap()) r.Reqs.Add(new(k, "=", [v]));
        if (sel.At("matchExpressions") is JsonArray arr)
            foreach (var e in arr)
            {
                var op = e.Str("operator") switch { "In" => "in", "NotIn" => "notin", "Exists" => "exists", "DoesNotExist" => "!", var x => x ?? "" };
                var vals = (e.At("values") as JsonArray)?.Select(x => x?.GetValue<string>() ?? "").ToArray() ?? [];
                r.Reqs.Add(new(e.Str("key") ?? "", op, vals));
            }
        return r;
    }

    public bool Matches(IDictionary<string, string> labels) => Reqs.All(r => r.Op switch
    {
        "=" => labels.TryGetValue(r.Key, out var v) && v == r.Values[0],
        "!=" => !labels.TryGetValue(r.Key, out var v) || v != r.Values[0],
        "in" => labels.TryGetValue(r.Key, out var v) && r.Values.Contains(v),
        "notin" => !labels.TryGetValue(r.Key, out var v) || !r.Values.Contains(v),
        "exists" => labels.ContainsKey(r.Key),
        "!" => !labels.ContainsKey(r.Key),
        _ => false
    });

    public bool Matches(JsonObject obj) => Matches(obj.At("metadata.labels").StrMap());

    public override string ToString() => string.Join(",", Reqs.Select(r => r.Op switch
    {
        "=" => $"{r.Key}={r.Values[0]}",
        "!=" => $"{r.Key}!={r.Values[0]}",
        "in" => $"{r.Key} in ({string.Join(",", r.Values)})",
        "notin" => $"{r.Key} notin ({string.Join(",", r.Values)})",
        "exists" => r.Key,
        _ => "!" + r.Key
    }));
}

public sealed class FieldSelector
{
    readonly List<(string path, bool eq, string value)> _reqs = new();

    public static FieldSelector Parse(string? s)
    {
        var f = new FieldSelector();
        if (string.IsNullOrWhiteSpace(s)) return f;
        foreach (var part in s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int i;
            if ((i = part.IndexOf("!=", StringComparison.Ordinal)) > 0) f._reqs.Add((part[..i], false, part[(i + 2)..]));
            else if ((i = part.IndexOf("==", StringComparison.Ordinal)) > 0) f._reqs.Add((part[..i], true, part[(i + 2)..]));
            else if ((i = part.IndexOf('=')) > 0) f._reqs.Add((part[..i], true, part[(i + 1)..]));
            else throw ApiException.BadRequest($"invalid selector: '{s}'; can't understand '{part}'");
        }
        return f;
    }

    public bool Matches(JsonObject o) => _reqs.All(r => (o.Str(r.path) ?? "") == r.value == r.eq);
}
