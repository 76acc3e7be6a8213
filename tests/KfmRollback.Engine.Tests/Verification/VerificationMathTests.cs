using KfmRollback.Engine.Adapters.Http;
using KfmRollback.Engine.Verification;

namespace KfmRollback.Engine.Tests.Verification;

public sealed class VerificationMathTests
{
    [Fact]
    public void Mann_whitney_separates_disjoint_samples()
    {
        var result = MannWhitney.Test(new double[] { 1, 2, 3, 4, 5 }, new double[] { 6, 7, 8, 9, 10 });
        Assert.Equal(0, result.U);
        Assert.Equal(-2.611, result.Z, 3);
        Assert.Equal(0.00902, result.PValue, 4);
    }

    [Fact]
    public void Mann_whitney_sees_no_difference_in_interleaved_samples()
    {
        var result = MannWhitney.Test(new double[] { 1, 3, 5, 7, 9 }, new double[] { 2, 4, 6, 8, 10 });
        Assert.Equal(10, result.U);
        Assert.True(result.PValue > 0.5, $"p = {result.PValue}");
    }

    [Fact]
    public void Mann_whitney_handles_all_ties()
    {
        Assert.Equal(1, MannWhitney.Test(new double[] { 4, 4, 4 }, new double[] { 4, 4 }).PValue);
    }

    [Theory]
    [InlineData(0, 0.5)]
    [InlineData(1.959964, 0.975)]
    [InlineData(-1.644854, 0.05)]
    public void Normal_cdf_matches_tables(double x, double expected)
    {
        Assert.Equal(expected, MannWhitney.NormalCdf(x), 5);
    }

    private static CheckResult Result(CheckSection section, Verdict verdict) =>
        new() { Environment = "e", Section = section, Check = section + "." + verdict, Verdict = verdict, Summary = "s" };

    [Fact]
    public void Inconclusive_is_never_a_pass_in_the_receipt()
    {
        var summary = new VerificationSummary
        {
            Environment = "e",
            Results = new[] { Result(CheckSection.Health, Verdict.Pass), Result(CheckSection.Health, Verdict.Inconclusive), Result(CheckSection.PolicyInvariants, Verdict.Pass) },
        };
        Assert.Equal(Verdict.Inconclusive, summary.HealthVerdict);
        Assert.Equal("fail", summary.Health);
        Assert.Equal("pass", summary.PolicyInvariants);
        Assert.Equal("fail", summary.ContractSmoke);   // no contract check ran at all
        Assert.False(summary.Passed);
    }

    [Fact]
    public void Any_fail_fails_the_section()
    {
        var summary = new VerificationSummary
        {
            Environment = "e",
            Results = new[] { Result(CheckSection.PolicyInvariants, Verdict.Inconclusive), Result(CheckSection.PolicyInvariants, Verdict.Fail) },
        };
        Assert.Equal(Verdict.Fail, summary.PolicyVerdict);
    }
}
