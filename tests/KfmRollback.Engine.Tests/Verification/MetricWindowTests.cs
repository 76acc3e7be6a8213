using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Verification;
using Xunit;

namespace KfmRollback.Engine.Tests.Verification;

public class MetricWindowTests
{
    private static readonly PrometheusConfig Prometheus = new() { Url = new Uri("http://127.0.0.1:9090") };
    private static readonly DateTimeOffset Now = new(2026, 12, 7, 15, 0, 0, TimeSpan.Zero);

    [Fact]
    public void The_window_since_convergence_keeps_every_millisecond_of_the_rolled_back_builds_traffic()
    {
        TimeSpan window = MetricChecks.Window(Prometheus, Now, Now.AddMilliseconds(-8_900));

        Assert.Equal(TimeSpan.FromMilliseconds(8_900), window);
        Assert.Equal("sum(increase(http_requests_total[8s900ms]))", Prometheus.Render("sum(increase(http_requests_total[{window}]))", window));
    }

    [Fact]
    public void The_window_is_never_shorter_than_a_second_and_without_a_convergence_is_the_evaluation_window()
    {
        Assert.Equal(TimeSpan.FromSeconds(1), MetricChecks.Window(Prometheus, Now, Now.AddMilliseconds(-300)));
        Assert.Equal(Prometheus.EvaluationWindow, MetricChecks.Window(Prometheus, Now, null));
    }
}
