using KfmRollback.Engine.Verification;

namespace KfmRollback.Engine.Tests.Verification;

/// <summary>-Wait stops once waiting cannot change anything, and never on a failing or still-open check.</summary>
public sealed class WaitStopTests
{
    private static CheckResult Check(string name, Verdict verdict, bool settled = false) => new()
    {
        Environment = "prod", Section = CheckSection.Observability, Check = name, Verdict = verdict, Summary = "s", Settled = settled,
    };

    private static VerificationSummary Summary(params CheckResult[] results) => new() { Environment = "prod", Results = results };

    [Fact]
    public void Stops_when_all_pass_or_the_rest_is_not_configured()
    {
        Assert.True(VerificationRunner.NothingToWaitFor(Summary(Check("A.error-ratio", Verdict.Pass))));
        Assert.True(VerificationRunner.NothingToWaitFor(Summary(Check("A.error-ratio", Verdict.Pass), Check("D.traces", Verdict.Inconclusive, settled: true))));
    }

    [Fact]
    public void Keeps_waiting_on_an_open_or_failing_check_and_on_nothing_at_all()
    {
        Assert.False(VerificationRunner.NothingToWaitFor(Summary(Check("A.error-ratio", Verdict.Inconclusive))));
        Assert.False(VerificationRunner.NothingToWaitFor(Summary(Check("A.error-ratio", Verdict.Fail), Check("D.traces", Verdict.Inconclusive, settled: true))));
        Assert.False(VerificationRunner.NothingToWaitFor(Summary()));
    }
}
