using KfmRollback.Engine.Adapters.Http;
using System.Buffers;

namespace KfmRollback.Engine.Verification;

/// <summary>
/// Mann–Whitney U test (two-sided, normal approximation with tie correction), as Kayenta uses to
/// compare two latency samples without assuming a distribution.
/// </summary>
public static class MannWhitney
{
    public sealed record Result(double U, double Z, double PValue);

    public static Result Test(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        if (a.Count == 0 || b.Count == 0)
        {
            throw new ArgumentException("both samples need at least one value");
        }
        // Pooled arrays sorted in place: a leak comparison ranks thousands of latencies per run,
        // and this keeps it off the large-object heap.
        int n = a.Count + b.Count;
        double[] values = ArrayPool<double>.Shared.Rent(n);
        byte[] fromA = ArrayPool<byte>.Shared.Rent(n);
        double rankSumA = 0, tieTerm = 0;
        try
        {
            for (int i = 0; i < a.Count; i++) { values[i] = a[i]; fromA[i] = 1; }
            for (int i = 0; i < b.Count; i++) { values[a.Count + i] = b[i]; fromA[a.Count + i] = 0; }
            Array.Sort(values, fromA, 0, n);
            for (int i = 0; i < n;)
            {
                int j = i;
                while (j + 1 < n && values[j + 1] == values[i]) { j++; }
                double rank = (i + j + 2) / 2.0;   // ranks are 1-based; ties share their average
                for (int k = i; k <= j; k++) { rankSumA += fromA[k] * rank; }
                int t = j - i + 1;
                tieTerm += (double)t * t * t - t;
                i = j + 1;
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(values);
            ArrayPool<byte>.Shared.Return(fromA);
        }
        double n1 = a.Count, n2 = b.Count;
        double u1 = rankSumA - n1 * (n1 + 1) / 2;
        double u = Math.Min(u1, n1 * n2 - u1);
        double mean = n1 * n2 / 2;
        double variance = n1 * n2 / 12 * ((n1 + n2 + 1) - tieTerm / ((n1 + n2) * (n1 + n2 - 1)));
        if (variance <= 0)
        {
            return new Result(u, 0, 1);
        }
        double z = (u - mean) / Math.Sqrt(variance);
        double p = 2 * NormalCdf(-Math.Abs(z));
        return new Result(u, z, Math.Min(1, p));
    }

    /// <summary>
    /// The same test on grouped samples (value, count): histogram buckets, where thousands of requests
    /// share a few values. Ranks and the tie correction come from the groups, so the work is per bucket.
    /// </summary>
    public static (double U, double Z, double PValue) TestGrouped(IReadOnlyList<(double Value, double Count)> a, IReadOnlyList<(double Value, double Count)> b)
    {
        double n1 = a.Sum(g => g.Count), n2 = b.Sum(g => g.Count);
        if (n1 == 0 || n2 == 0)
        {
            throw new ArgumentException("both samples need at least one value");
        }
        var values = a.Select(g => g.Value).Concat(b.Select(g => g.Value)).Distinct().OrderBy(v => v).ToList();
        double below = 0, rankSumA = 0, tieTerm = 0;
        foreach (double value in values)
        {
            double inA = a.Where(g => g.Value == value).Sum(g => g.Count), t = inA + b.Where(g => g.Value == value).Sum(g => g.Count);
            double rank = below + (t + 1) / 2;   // ties share their average rank
            rankSumA += inA * rank;
            tieTerm += t * t * t - t;
            below += t;
        }
        double u1 = rankSumA - n1 * (n1 + 1) / 2;
        double u = Math.Min(u1, n1 * n2 - u1);
        double variance = n1 * n2 / 12 * ((n1 + n2 + 1) - tieTerm / ((n1 + n2) * (n1 + n2 - 1)));
        if (variance <= 0)
        {
            return (u, 0, 1);
        }
        double z = (u - n1 * n2 / 2) / Math.Sqrt(variance);
        return (u, z, Math.Min(1, 2 * NormalCdf(-Math.Abs(z))));
    }

    /// <summary>The standard normal quantile, by bisection on <see cref="NormalCdf"/> (to 1e-9).</summary>
    public static double NormalQuantile(double probability)
    {
        if (probability <= 0 || probability >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(probability), "must be strictly between 0 and 1");
        }
        double low = -10, high = 10;
        while (high - low > 1e-9)
        {
            double mid = (low + high) / 2;
            if (NormalCdf(mid) < probability) { low = mid; } else { high = mid; }
        }
        return (low + high) / 2;
    }

    /// <summary>Standard normal CDF (Abramowitz–Stegun 7.1.26 for erf, accurate to 1.5e-7).</summary>
    public static double NormalCdf(double x)
    {
        double t = 1 / (1 + 0.3275911 * Math.Abs(x) / Math.Sqrt(2));
        double erf = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.Exp(-x * x / 2);
        return x >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
    }
}
