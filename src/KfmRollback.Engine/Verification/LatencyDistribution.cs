using System.Globalization;

namespace KfmRollback.Engine.Verification;

/// <summary>
/// Requests per latency bucket, from a Prometheus histogram's cumulative <c>le</c> counts. Each request
/// stands at its bucket's midpoint (the first bucket's at half its bound; the +Inf bucket's at the last
/// finite bound, as histogram_quantile does): Mann-Whitney ranks only the order, which the buckets keep
/// exactly; the shift estimate and the mean are as fine as the buckets are.
/// </summary>
public sealed record LatencyHistogram(IReadOnlyList<(double Seconds, double Count)> Buckets)
{
    public double Count => Buckets.Sum(b => b.Count);
    public double Mean => Count == 0 ? 0 : Buckets.Sum(b => b.Seconds * b.Count) / Count;

    /// <summary>From (le, cumulative count) pairs, in any order; counts are rounded to whole requests.</summary>
    public static LatencyHistogram FromCumulative(IEnumerable<(double UpperBound, double Cumulative)> series)
    {
        var sorted = series.OrderBy(s => s.UpperBound).ToList();
        var buckets = new List<(double, double)>();
        double previousBound = 0, previousCount = 0;
        double lastFinite = sorted.Where(s => !double.IsPositiveInfinity(s.UpperBound)).Select(s => s.UpperBound).DefaultIfEmpty(0).Max();
        foreach (var (bound, cumulative) in sorted)
        {
            double count = Math.Round(Math.Max(0, cumulative - previousCount));
            double at = double.IsPositiveInfinity(bound) ? lastFinite : (previousBound + bound) / 2;
            if (count > 0) { buckets.Add((at, count)); }
            previousCount = Math.Max(previousCount, cumulative);
            if (!double.IsPositiveInfinity(bound)) { previousBound = bound; }
        }
        return new LatencyHistogram(buckets);
    }
}

/// <summary>
/// Kayenta's Mann-Whitney classification of a latency metric (spinnaker/kayenta, kayenta-judge,
/// MannWhitneyClassifier.scala, with NetflixACAJudge's tolerance 0.25 and confidence 0.98): the
/// metric is High when the lower end of the confidence interval of the Hodges-Lehmann shift
/// (rolled back − baseline) exceeds tolerance × |shift| and the mean ratio reaches the effect-size
/// threshold. Computed on grouped samples (histogram buckets), with the normal approximation and tie correction.
/// </summary>
public static class LatencyDistribution
{
    public sealed record Outcome(double U, double Z, double PValue, double ShiftSeconds, double LowerSeconds, double UpperSeconds,
        double MeanRatio, double BaselineCount, double CurrentCount, bool High)
    {
        public IDictionary<string, string> Evidence() => new Dictionary<string, string>
        {
            ["u"] = F(U, "0.#"), ["z"] = F(Z, "0.###"), ["p"] = F(PValue, "0.####"),
            ["shift_ms"] = F(ShiftSeconds * 1000, "0.#"), ["ci_low_ms"] = F(LowerSeconds * 1000, "0.#"), ["ci_high_ms"] = F(UpperSeconds * 1000, "0.#"),
            ["mean_ratio"] = F(MeanRatio, "0.###"), ["n_baseline"] = F(BaselineCount, "0"), ["n_current"] = F(CurrentCount, "0"),
        };

        private static string F(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
    }

    public static Outcome Compare(LatencyHistogram baseline, LatencyHistogram current, double confidence, double tolerance, double effectSize)
    {
        var (u, z, p) = MannWhitney.TestGrouped(baseline.Buckets, current.Buckets);
        double n1 = baseline.Count, n2 = current.Count;
        // Every pair's difference (current − baseline), weighted by how many request pairs it stands for.
        var differences = new List<(double Difference, double Weight)>();
        foreach (var (x, cx) in baseline.Buckets)
        {
            foreach (var (y, cy) in current.Buckets) { differences.Add((y - x, cx * cy)); }
        }
        differences.Sort((a, b) => a.Difference.CompareTo(b.Difference));
        double pairs = n1 * n2;
        double shift = OrderStatistic(differences, (pairs + 1) / 2);
        // Distribution-free interval of the shift: the C-th smallest and largest differences, C from the U distribution.
        double zc = MannWhitney.NormalQuantile(1 - (1 - confidence) / 2);
        double c = Math.Max(1, Math.Floor(pairs / 2 - zc * Math.Sqrt(pairs * (n1 + n2 + 1) / 12)));
        double lower = OrderStatistic(differences, c), upper = OrderStatistic(differences, pairs - c + 1);
        double meanRatio = baseline.Mean == 0 ? 1 : current.Mean / baseline.Mean;
        bool high = lower > tolerance * Math.Abs(shift) && meanRatio >= effectSize;
        return new Outcome(u, z, p, shift, lower, upper, meanRatio, n1, n2, high);
    }

    /// <summary>The k-th smallest (1-based, weighted) difference.</summary>
    private static double OrderStatistic(List<(double Difference, double Weight)> sorted, double k)
    {
        double seen = 0;
        foreach (var (difference, weight) in sorted)
        {
            seen += weight;
            if (seen >= k) { return difference; }
        }
        return sorted.Count == 0 ? 0 : sorted[^1].Difference;
    }
}
