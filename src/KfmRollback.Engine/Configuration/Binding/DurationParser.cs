using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace KfmRollback.Engine.Configuration.Binding;

/// <summary>
/// Durations in the Go/Prometheus style operators already type into kubectl and PromQL:
/// "30s", "15m", "1h", "1h30m", "500ms", "2d". Plain numbers are refused because their unit
/// would be a guess.
/// </summary>
public static partial class DurationParser
{
    [GeneratedRegex(@"^(?:(\d+)(ms|s|m|h|d))+$", RegexOptions.CultureInvariant)]
    private static partial Regex Shape();

    [GeneratedRegex(@"(\d+)(ms|s|m|h|d)", RegexOptions.CultureInvariant)]
    private static partial Regex Part();

    /// <summary>Parses a duration; false when the text is not of the form above.</summary>
    public static bool TryParse(string text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (string.IsNullOrEmpty(text) || !Shape().IsMatch(text))
            return false;
        try
        {
            foreach (Match m in Part().Matches(text))
            {
                var n = long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                value += m.Groups[2].Value switch
                {
                    "ms" => TimeSpan.FromMilliseconds(n),
                    "s" => TimeSpan.FromSeconds(n),
                    "m" => TimeSpan.FromMinutes(n),
                    "h" => TimeSpan.FromHours(n),
                    _ => TimeSpan.FromDays(n),
                };
            }
            return true;
        }
        catch (Exception e) when (e is OverflowException or FormatException)
        {
            return false;
        }
    }

    /// <summary>Formats back to the same style ("1h30m"), as PromQL range selectors need.</summary>
    public static string Format(TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
            return "0s";
        var sb = new StringBuilder();
        void Add(long n, string unit) { if (n > 0) sb.Append(n.ToString(CultureInfo.InvariantCulture)).Append(unit); }
        Add(value.Days, "d");
        Add(value.Hours, "h");
        Add(value.Minutes, "m");
        Add(value.Seconds, "s");
        Add(value.Milliseconds, "ms");
        return sb.ToString();
    }
}
