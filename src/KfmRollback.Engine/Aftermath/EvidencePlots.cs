using System.Globalization;
using System.Text.Json.Nodes;
using ScottPlot;

namespace KfmRollback.Engine.Aftermath;

/// <summary>One drawn chart, as PNG and SVG files.</summary>
public sealed record EvidencePlot(string Name, string Title, string PngPath, string SvgPath);

/// <summary>
/// Charts of the 5xx ratio and P95/P99 latency from a bundle's Prometheus ranges, with the
/// baseline/incident/recovery periods shaded and vertical markers at deploy, freeze, rollback and
/// verification; times in UTC. ScottPlot (and native Skia) is only loaded when this class draws.
/// </summary>
public static class EvidencePlots
{
    private const int Width = 1100, Height = 480;

    /// <summary>Draws both charts from <paramref name="bundle"/> into <paramref name="directory"/>; none when the bundle has no metric samples.</summary>
    public static IReadOnlyList<EvidencePlot> Draw(EvidenceBundle bundle, string directory)
    {
        JsonNode? ranges = bundle.ReadJson("metrics/ranges.json");
        JsonNode? markers = bundle.ReadJson("markers.json");
        if (ranges?["series"] is not JsonObject series) return Array.Empty<EvidencePlot>();
        Directory.CreateDirectory(directory);
        EnsureFont();
        var periods = Periods(ranges, markers);
        // A marker outside the sampled range (a controller clock far off) would only squash the curves.
        DateTimeOffset first = Time(ranges["start"])!.Value.AddMinutes(-5), last = Time(ranges["end"])!.Value.AddMinutes(5);
        var marks = Marks(markers).Where(m => m.Item2 >= ToX(first) && m.Item2 <= ToX(last)).ToList();
        var plots = new List<EvidencePlot>();
        var ratio = Series(series, "error_ratio", 100);
        if (ratio.Xs.Length > 0)
        {
            plots.Add(Render(directory, "error-ratio", "5xx ratio", "5xx responses (% of requests)",
                (XRange(ranges)), new[] { ("5xx ratio", ratio, Colors.Crimson) }, periods, marks));
        }
        var p95 = Series(series, "p95", 1000);
        var p99 = Series(series, "p99", 1000);
        if (p95.Xs.Length > 0 || p99.Xs.Length > 0)
        {
            plots.Add(Render(directory, "latency", "P95 and P99 latency", "Latency (ms)", XRange(ranges),
                new[] { ("P95", p95, Colors.SteelBlue), ("P99", p99, Colors.DarkOrange) }, periods, marks));
        }
        return plots;
    }

    private static EvidencePlot Render(string directory, string name, string title, string yLabel, (double From, double To) range,
        IEnumerable<(string Label, (double[] Xs, double[] Ys) Data, Color Color)> lines,
        IEnumerable<(string Label, double From, double To, Color Color)> periods, IEnumerable<(string Label, double At)> marks)
    {
        var plot = new Plot();
        foreach (var (label, from, to, color) in periods)
        {
            var span = plot.Add.HorizontalSpan(from, to);
            span.FillStyle.Color = color.WithAlpha(0.12);
            span.LineStyle.Width = 0;
            span.LegendText = label;
        }
        foreach (var (label, (xs, ys), color) in lines)
        {
            if (xs.Length == 0) continue;
            var scatter = plot.Add.Scatter(xs, ys);
            scatter.Color = color;
            scatter.LineWidth = 2;
            scatter.MarkerSize = 3;
            scatter.LegendText = label;
        }
        foreach (var (label, at) in marks)
        {
            var line = plot.Add.VerticalLine(at);
            line.Color = Colors.Black.WithAlpha(0.7);
            line.LinePattern = LinePattern.Dashed;
            line.LineWidth = 1.5f;
            line.Text = label;
            line.LabelOppositeAxis = true;
            line.LabelFontSize = 13;
        }
        var axis = plot.Axes.DateTimeTicksBottom();
        if (axis.TickGenerator is ScottPlot.TickGenerators.DateTimeAutomatic ticks)
        {
            ticks.LabelFormatter = t => t.ToString("HH:mm:ss", CultureInfo.InvariantCulture);
        }
        plot.Axes.Bottom.TickLabelStyle.FontSize = 12;
        // No title: the marker labels sit above the data area (given room here), and the report captions each chart.
        plot.Axes.Top.MinimumSize = 34;
        plot.XLabel($"Time (UTC, {DateTime.FromOADate(range.From):yyyy-MM-dd})");
        plot.YLabel(yLabel);
        plot.Axes.Margins(0.02, 0.12);
        plot.Axes.AutoScale();
        // Room on the right so the last marker's label is not cut off.
        double width = range.To - range.From;
        plot.Axes.SetLimitsX(range.From - width * 0.02, range.To + width * 0.12);
        // Below the data area, so it never covers a curve.
        plot.ShowLegend(Edge.Bottom);
        string png = Path.Combine(directory, name + ".png"), svg = Path.Combine(directory, name + ".svg");
        plot.SavePng(png, Width, Height);
        plot.SaveSvg(svg, Width, Height);
        return new EvidencePlot(name, title, png, svg);
    }

    private static (double From, double To) XRange(JsonNode ranges) => (ToX(Time(ranges["start"])!.Value), ToX(Time(ranges["end"])!.Value));

    private static (double[] Xs, double[] Ys) Series(JsonObject series, string name, double scale)
    {
        var points = (series[name]?["values"] as JsonArray ?? new JsonArray())
            .Where(p => p?[1] is JsonValue)
            .Select(p => (X: ToX(DateTimeOffset.FromUnixTimeSeconds(p![0]!.GetValue<long>())), Y: p[1]!.GetValue<double>() * scale))
            .ToList();
        return (points.Select(p => p.X).ToArray(), points.Select(p => p.Y).ToArray());
    }

    /// <summary>Baseline, incident (to the rollback), rollback (to the verification) and verification (to the end).</summary>
    private static IEnumerable<(string, double, double, Color)> Periods(JsonNode ranges, JsonNode? markers)
    {
        DateTimeOffset start = Time(ranges["start"])!.Value, end = Time(ranges["end"])!.Value;
        // The baseline the verdict used may end before an earlier incident: it is shaded where it was, not up to this incident.
        DateTimeOffset baselineFrom = Time(ranges["windows"]?["baseline"]?[0]) ?? start, baselineTo = Time(ranges["windows"]?["baseline"]?[1]) ?? start;
        DateTimeOffset incident = Time(ranges["windows"]?["incident"]?[0]) ?? baselineTo;
        DateTimeOffset? rollback = Time(markers?["rollback"]), verified = Time(markers?["verification"]);
        yield return ("baseline", ToX(baselineFrom), ToX(baselineTo), Colors.Green);
        yield return ("incident", ToX(incident), ToX(rollback ?? end), Colors.Red);
        if (rollback is { } r) yield return ("rollback", ToX(r), ToX(verified ?? end), Colors.Orange);
        if (verified is { } v) yield return ("verification", ToX(v), ToX(end), Colors.Blue);
    }

    /// <summary>Markers within 3 s of each other share one line and label ("freeze + rollback"), so labels never overlap.</summary>
    private static IEnumerable<(string, double)> Marks(JsonNode? markers)
    {
        var times = new[] { "deploy", "freeze", "rollback", "verification" }
            .Select(name => (Name: name, At: Time(markers?[name])))
            .Where(m => m.At is not null)
            .Select(m => (m.Name, At: m.At!.Value))
            .OrderBy(m => m.At)
            .ToList();
        var groups = new List<List<(string Name, DateTimeOffset At)>>();
        foreach (var m in times)
        {
            if (groups.Count > 0 && m.At - groups[^1][0].At <= TimeSpan.FromSeconds(3)) groups[^1].Add(m);
            else groups.Add(new() { m });
        }
        return groups.Select(g => ($"{string.Join(" + ", g.Select(m => m.Name))} {g[0].At.UtcDateTime:HH:mm:ss}Z", ToX(g[0].At)));
    }

    private static DateTimeOffset? Time(JsonNode? node) =>
        node is JsonValue v && v.TryGetValue(out string? s) ? DateTimeOffset.Parse(s, CultureInfo.InvariantCulture) : null;

    private static double ToX(DateTimeOffset at) => at.UtcDateTime.ToOADate();

    private static int s_fontChecked;

    /// <summary>
    /// The native Skia build without fontconfig finds no system font by name; register a TrueType
    /// sans from the usual directories so axis text renders on a bare Linux too.
    /// </summary>
    internal static void EnsureFont()
    {
        if (Interlocked.Exchange(ref s_fontChecked, 1) == 1 || !OperatingSystem.IsLinux()) return;
        string[] candidates =
        {
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        };
        string? font = candidates.FirstOrDefault(File.Exists)
            ?? (Directory.Exists("/usr/share/fonts") ? Directory.EnumerateFiles("/usr/share/fonts", "*.ttf", SearchOption.AllDirectories).FirstOrDefault() : null);
        if (font is null) return;
        Fonts.AddFontFile("KfmSans", font);
        Fonts.Default = "KfmSans";
    }
}
