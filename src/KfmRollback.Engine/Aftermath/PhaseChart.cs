using KfmRollback.Engine.Incidents;
using ScottPlot;

namespace KfmRollback.Engine.Aftermath;

/// <summary>
/// The report's phase chart: one horizontal bar per phase of a rollback run (detect, decide,
/// freeze, apply, converge, verified), in seconds since the incident started, each labelled with
/// its duration, and a line where the run was verified safe. Drawn with ScottPlot as the evidence
/// plots are (<see cref="EvidencePlots"/>); a phase the journal does not show both ends of has no bar.
/// </summary>
public static class PhaseChart
{
    private const int Width = 1100, Height = 420;

    private static readonly Dictionary<string, Color> s_colors = new(StringComparer.Ordinal)
    {
        [SafetyPhases.Detect] = Colors.Crimson,
        [SafetyPhases.Decide] = Colors.DarkOrange,
        [SafetyPhases.Freeze] = Colors.SteelBlue,
        [SafetyPhases.Apply] = Colors.Purple,
        [SafetyPhases.Converge] = Colors.Teal,
        [SafetyPhases.Verified] = Colors.ForestGreen,
    };

    /// <summary>Draws <paramref name="run"/>'s phases into <paramref name="directory"/>; null when no phase has both ends.</summary>
    public static EvidencePlot? Draw(RunPhaseTimes run, string directory)
    {
        List<RunPhase> drawn = run.Phases.Where(p => p.Duration is not null).ToList();
        if (drawn.Count == 0) return null;
        Directory.CreateDirectory(directory);
        EvidencePlots.EnsureFont();
        var plot = new Plot();
        double Seconds(DateTimeOffset at) => (at - run.IncidentStart).TotalSeconds;
        // The first phase on top, as the phases are read.
        int rows = SafetyPhases.All.Count;
        double Row(string phase) => rows - 1 - SafetyPhases.All.ToList().IndexOf(phase);
        var bars = drawn.Select(p => new Bar
        {
            Position = Row(p.Phase),
            ValueBase = Seconds(p.Start!.Value),
            // A phase of a few milliseconds still shows as a sliver.
            Value = Math.Max(Seconds(p.End!.Value), Seconds(p.Start!.Value) + 0.05),
            FillColor = s_colors[p.Phase],
            Label = p.Took,
            Orientation = Orientation.Horizontal,
            Size = 0.6,
            LineWidth = 0,
        }).ToList();
        var barPlot = plot.Add.Bars(bars);
        barPlot.Horizontal = true;
        barPlot.ValueLabelStyle.FontSize = 13;
        if (run.SafeAt is { } safe)
        {
            var line = plot.Add.VerticalLine(Seconds(safe));
            line.Color = Colors.Black.WithAlpha(0.7);
            line.LinePattern = LinePattern.Dashed;
            line.LineWidth = 1.5f;
            // Short, so it fits above the data area; the report's caption gives the whole time to safe.
            line.Text = $"safe {safe.UtcDateTime:HH:mm:ss}Z (+{RunPhaseTimes.FormatSpan(run.TimeToSafe)})";
            line.LabelOppositeAxis = true;
            line.LabelFontSize = 13;
        }
        plot.Axes.Left.SetTicks(SafetyPhases.All.Select(Row).ToArray(), SafetyPhases.All.ToArray());
        plot.Axes.Left.TickLabelStyle.FontSize = 13;
        plot.Axes.Bottom.TickLabelStyle.FontSize = 12;
        plot.Axes.Top.MinimumSize = 34;
        plot.XLabel($"Seconds since the incident started ({run.IncidentStart.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC)");
        plot.Axes.AutoScale();
        double end = drawn.Max(p => Seconds(p.End!.Value)), start = Math.Min(0, drawn.Min(p => Seconds(p.Start!.Value)));
        // Room on the right for the last bar's label.
        plot.Axes.SetLimitsX(start - (end - start) * 0.02, end + Math.Max(1, (end - start) * 0.12));
        plot.Axes.SetLimitsY(-0.6, rows - 0.4);
        string name = "phases-" + string.Concat(run.RunId.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-')).Trim('-');
        string png = Path.Combine(directory, name + ".png"), svg = Path.Combine(directory, name + ".svg");
        plot.SavePng(png, Width, Height);
        plot.SaveSvg(svg, Width, Height);
        return new EvidencePlot(name, $"Phases of run {run.RunId} ({run.Method}, {run.Environment}): {run.TimeToSafeText}", png, svg);
    }
}
