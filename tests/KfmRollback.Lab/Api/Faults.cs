using System.Text.Json.Nodes;

namespace KfmRollback.Lab.Api;

/// <summary>One fault rule, matched on resource (plural, or "*"), verb ("*"), and optional path substring.</summary>
public sealed class FaultRule
{
    public string Resource { get; set; } = "*";
    public string Verb { get; set; } = "*";
    public string? PathContains { get; set; }
    /// <summary>Fraction 0..1 of matching requests answered with <see cref="ErrorCode"/>.</summary>
    public double ErrorRate { get; set; }
    public int ErrorCode { get; set; } = 500;
    public int LatencyMs { get; set; }
    /// <summary>Next N matching update/patch requests get 409 Conflict.</summary>
    public int ConflictCount { get; set; }
    /// <summary>Watch streams end after this many events (0 = never).</summary>
    public int DropWatchAfterEvents { get; set; }
    /// <summary>Fraction 0..1 of matching requests whose connection is reset.</summary>
    public double ResetRate { get; set; }
    /// <summary>Match only dry runs (true), only real writes (false), or both (null).</summary>
    public bool? DryRun { get; set; }
    /// <summary>The first N matching requests pass untouched (a fault that starts after a read, e.g. on the read-back of a write).</summary>
    public int Skip { get; set; }

    public static FaultRule FromJson(JsonNode n) => new()
    {
        Resource = n.Str("resource") ?? "*",
        Verb = n.Str("verb") ?? "*",
        PathContains = n.Str("pathContains"),
        ErrorRate = double.TryParse(n.Str("errorRate"), System.Globalization.CultureInfo.InvariantCulture, out var e) ? e : 0,
        ErrorCode = (int)(n.Long("errorCode") ?? 500),
        LatencyMs = (int)(n.Long("latencyMs") ?? 0),
        ConflictCount = (int)(n.Long("conflictCount") ?? 0),
        DropWatchAfterEvents = (int)(n.Long("dropWatchAfterEvents") ?? 0),
        ResetRate = double.TryParse(n.Str("resetRate"), System.Globalization.CultureInfo.InvariantCulture, out var r) ? r : 0,
        Skip = (int)(n.Long("skip") ?? 0),
        DryRun = n["dryRun"] is System.Text.Json.Nodes.JsonValue v && v.TryGetValue(out bool d) ? d : null,
    };

    public JsonObject ToJson() => new()
    {
        ["resource"] = Resource, ["verb"] = Verb, ["pathContains"] = PathContains, ["errorRate"] = ErrorRate, ["errorCode"] = ErrorCode,
        ["latencyMs"] = LatencyMs, ["conflictCount"] = ConflictCount, ["dropWatchAfterEvents"] = DropWatchAfterEvents, ["resetRate"] = ResetRate, ["skip"] = Skip, ["dryRun"] = DryRun,
    };
}

public sealed class Faults
{
    readonly object _lock = new();
    readonly List<FaultRule> _rules = new();
    /// <summary>Latency added to every apiserver request ("slow apiserver").</summary>
    public int GlobalLatencyMs { get; set; }

    public void Add(FaultRule r) { lock (_lock) _rules.Add(r); }
    public void Clear() { lock (_lock) _rules.Clear(); GlobalLatencyMs = 0; }
    public JsonObject ToJson()
    {
        lock (_lock) return new JsonObject { ["globalLatencyMs"] = GlobalLatencyMs, ["rules"] = new JsonArray(_rules.Select(r => (JsonNode)r.ToJson()).ToArray()) };
    }

    public List<FaultRule> Match(string verb, string? plural, string path, bool dryRun = false)
    {
        lock (_lock)
        {
            var matched = _rules.Where(r => (r.Resource == "*" || r.Resource == plural) && (r.Verb == "*" || r.Verb == verb)
                                            && (r.PathContains == null || path.Contains(r.PathContains, StringComparison.Ordinal))
                                            && (r.DryRun == null || r.DryRun == dryRun)).ToList();
            // A rule still skipping lets this request through and counts it.
            foreach (var skipping in matched.Where(r => r.Skip > 0).ToList()) { skipping.Skip--; matched.Remove(skipping); }
            return matched;
        }
    }

    /// <summary>Consumes one conflict from the first matching rule that still has some.</summary>
    public bool TakeConflict(List<FaultRule> rules)
    {
        lock (_lock)
        {
            var r = rules.FirstOrDefault(x => x.ConflictCount > 0);
            if (r == null) return false;
            r.ConflictCount--;
            return true;
        }
    }
}
