using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace KfmRollback.Lab.Controllers;

/// <summary>
/// Argo CD AppProject <c>spec.syncWindows</c>: a window is active when its cron <c>schedule</c> (5 fields,
/// UTC) fired within the last <c>duration</c>. Automated syncs are blocked while a matching deny window
/// is active, or while matching allow windows exist and none is active.
/// </summary>
public static class SyncWindows
{
    public static bool AutomatedSyncBlocked(JsonObject? project, JsonObject app, DateTimeOffset now)
    {
        if (project?.At("spec.syncWindows") is not JsonArray windows || windows.Count == 0) return false;
        var matching = windows.OfType<JsonObject>().Where(w => Matches(w, app)).ToList();
        if (matching.Count == 0) return false;
        if (matching.Any(w => w.Str("kind") == "deny" && Active(w, now))) return true;
        var allows = matching.Where(w => w.Str("kind") == "allow").ToList();
        return allows.Count > 0 && !allows.Any(w => Active(w, now));
    }

    /// <summary>A manual sync (an <c>operation</c> on the Application) is blocked by an active matching deny window unless it says <c>manualSync: true</c>.</summary>
    public static bool ManualSyncBlocked(JsonObject? project, JsonObject app, DateTimeOffset now) =>
        project?.At("spec.syncWindows") is JsonArray windows
        && windows.OfType<JsonObject>().Any(w => Matches(w, app) && w.Str("kind") == "deny" && Active(w, now) && !w.Bool("manualSync"));

    static bool Glob(string pattern, string value) =>
        Regex.IsMatch(value, "^" + Regex.Escape(pattern).Replace("\\*", ".*").Replace("\\?", ".") + "$");

    static IEnumerable<string> List(JsonObject w, string key) =>
        (w[key] as JsonArray)?.Select(x => x?.GetValue<string>() ?? "") ?? [];

    static bool Matches(JsonObject w, JsonObject app)
    {
        var ns = app.Str("spec.destination.namespace") ?? "";
        var server = app.Str("spec.destination.server") ?? "";
        return List(w, "applications").Any(p => Glob(p, app.Name()))
               || List(w, "namespaces").Any(p => Glob(p, ns))
               || List(w, "clusters").Any(p => Glob(p, server));
    }

    public static bool Active(JsonObject w, DateTimeOffset now)
    {
        var fields = (w.Str("schedule") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length != 5) return false;
        var duration = ParseDuration(w.Str("duration") ?? "");
        if (duration <= TimeSpan.Zero) return false;
        var t = new DateTimeOffset(now.UtcDateTime.Year, now.UtcDateTime.Month, now.UtcDateTime.Day, now.UtcDateTime.Hour, now.UtcDateTime.Minute, 0, TimeSpan.Zero);
        var steps = (int)Math.Min(duration.TotalMinutes, 60 * 24 * 31);
        for (int i = 0; i <= steps; i++, t = t.AddMinutes(-1))
        {
            if (now - t >= duration) break;
            if (Field(fields[0], t.Minute, 0, 59) && Field(fields[1], t.Hour, 0, 23) && Field(fields[2], t.Day, 1, 31)
                && Field(fields[3], t.Month, 1, 12) && Field(fields[4], (int)t.DayOfWeek, 0, 6)) return true;
        }
        return false;
    }

    static bool Field(string spec, int value, int min, int max)
    {
        foreach (var part in spec.Split(','))
        {
            var step = 1;
            var range = part;
            var slash = part.IndexOf('/');
            if (slash >= 0) { step = int.Parse(part[(slash + 1)..]); range = part[..slash]; }
            int lo, hi;
            if (range == "*") { lo = min; hi = max; }
            else if (range.Contains('-')) { var ab = range.Split('-'); lo = int.Parse(ab[0]); hi = int.Parse(ab[1]); }
            else { lo = int.Parse(range); hi = slash >= 0 ? max : lo; }
            if (value >= lo && value <= hi && (value - lo) % step == 0) return true;
        }
        return false;
    }

    /// <summary>Go-style durations: "1h", "30m", "1h30m", "90s".</summary>
    public static TimeSpan ParseDuration(string s)
    {
        var total = TimeSpan.Zero;
        foreach (Match m in Regex.Matches(s, @"(\d+(?:\.\d+)?)(h|m|s)"))
        {
            var v = double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            total += m.Groups[2].Value switch { "h" => TimeSpan.FromHours(v), "m" => TimeSpan.FromMinutes(v), _ => TimeSpan.FromSeconds(v) };
        }
        return total;
    }
}
