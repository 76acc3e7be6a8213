using KfmRollback.Engine.Verification;
using Xunit;

namespace KfmRollback.Engine.Tests.Verification;

/// <summary>The verdict's statistics on their own: the sequential 5xx test and Mann-Whitney on histogram buckets.</summary>
public sealed class VerdictStatisticsTests
{
    [Fact]
    public void SequentialTestNeverDecidesBeforeTheMinimumRequests()
    {
        Assert.Equal(Verdict.Inconclusive, SequentialTest.ErrorRatio(39, 39, 0.02, 40, 0.05, 0.05).Verdict);
        Assert.Equal(Verdict.Inconclusive, SequentialTest.ErrorRatio(39, 0, 0.5, 40, 0.05, 0.05).Verdict);
    }

    [Fact]
    public void SequentialTestPassesACleanBuildAsSoonAsTheEvidenceSuffices()
    {
        // A clean build at a 2 % limit: about ln(0.95/0.05) / 0.01 ≈ 295 requests, far short of a fixed 10-minute window.
        int first = Enumerable.Range(40, 2000).First(n => SequentialTest.ErrorRatio(n, 0, 0.02, 40, 0.05, 0.05).Verdict == Verdict.Pass);
        Assert.InRange(first, 250, 320);
        Assert.Equal(Verdict.Inconclusive, SequentialTest.ErrorRatio(first - 1, 0, 0.02, 40, 0.05, 0.05).Verdict);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    public void RequestsToPassIsExactlyWhereTheTestFirstPassesWithNoMoreErrors(int errors)
    {
        // What -Wait schedules its next round by must be the test's own boundary, not an estimate of it.
        long needed = SequentialTest.ErrorRatio(errors + 1, errors, 0.02, 40, 0.05, 0.05).RequestsToPass;
        int first = Enumerable.Range(40, 5000).First(n => SequentialTest.ErrorRatio(n, errors, 0.02, 40, 0.05, 0.05).Verdict == Verdict.Pass);
        Assert.Equal(first, needed);
        // The answer does not move as clean requests arrive, and the minimum still binds a lax limit.
        Assert.Equal(needed, SequentialTest.ErrorRatio(first - 1, errors, 0.02, 40, 0.05, 0.05).RequestsToPass);
        Assert.Equal(40, SequentialTest.ErrorRatio(10, 0, 0.5, 40, 0.05, 0.05).RequestsToPass);
    }

    [Fact]
    public void SequentialTestFailsABadBuildAtTheMinimum()
    {
        // bad-5xx answers 40 % with 500: decided the moment the minimum is reached.
        Assert.Equal(Verdict.Fail, SequentialTest.ErrorRatio(40, 16, 0.02, 40, 0.05, 0.05).Verdict);
        // At the limit itself the test does not pass.
        Assert.NotEqual(Verdict.Pass, SequentialTest.ErrorRatio(300, 6, 0.02, 40, 0.05, 0.05).Verdict);
    }

    [Fact]
    public void GroupedMannWhitneyEqualsTheTestOnEverySample()
    {
        var a = new List<(double, double)> { (0.0025, 40), (0.0075, 7), (0.375, 5) };
        var b = new List<(double, double)> { (0.0025, 3), (0.075, 45), (0.375, 6) };
        static List<double> Expand(List<(double V, double C)> g) => g.SelectMany(x => Enumerable.Repeat(x.V, (int)x.C)).ToList();
        MannWhitney.Result flat = MannWhitney.Test(Expand(a), Expand(b));
        var (u, z, p) = MannWhitney.TestGrouped(a, b);
        Assert.Equal(flat.U, u, 6);
        Assert.Equal(flat.Z, z, 6);
        Assert.Equal(flat.PValue, p, 6);
    }

    [Fact]
    public void NormalQuantileInvertsTheCdf() =>
        Assert.Equal(2.326, MannWhitney.NormalQuantile(0.99), 3);

    /// <summary>The lab's good-tail and bad-shift builds as Prometheus sees them: the same slow tenth, the body moved.</summary>
    private static LatencyHistogram Build(bool shifted) => LatencyHistogram.FromCumulative(new (double, double)[]
    {
        (0.005, shifted ? 14 : 86), (0.01, shifted ? 14 : 86), (0.025, shifted ? 14 : 86), (0.05, shifted ? 14 : 86),
        (0.1, 86), (0.25, 86), (0.5, 100), (1, 100), (double.PositiveInfinity, 100),
    });

    [Fact]
    public void ASlowerBodyWithTheSameTailFailsMannWhitney()
    {
        LatencyDistribution.Outcome outcome = LatencyDistribution.Compare(Build(false), Build(true), 0.98, 0.25, 1.0);
        Assert.True(outcome.High, $"shift {outcome.ShiftSeconds}, interval {outcome.LowerSeconds}..{outcome.UpperSeconds}, ratio {outcome.MeanRatio}");
        Assert.True(outcome.PValue < 0.02);
    }

    [Fact]
    public void TheSameDistributionPassesMannWhitney()
    {
        LatencyDistribution.Outcome outcome = LatencyDistribution.Compare(Build(false), Build(false), 0.98, 0.25, 1.0);
        Assert.False(outcome.High);
        // Faster is never a latency failure.
        Assert.False(LatencyDistribution.Compare(Build(true), Build(false), 0.98, 0.25, 1.0).High);
    }
}
