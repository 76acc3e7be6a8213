using KfmRollback.Engine.Core;
using KfmRollback.Engine.Incidents;
using Xunit;

namespace KfmRollback.Engine.Tests.Incidents;

public sealed class IncidentUpdateTests
{
    private static readonly DateTimeOffset Winter = new(2026, 1, 15, 14, 5, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset Summer = new(2026, 7, 15, 14, 5, 0, TimeSpan.Zero);

    [Fact]
    public void Rolling_back_is_the_runbooks_template_with_both_clocks_and_the_timebox()
    {
        IncidentUpdate update = IncidentUpdates.Compose("INC-1042", IncidentStage.RollingBack, Array.Empty<ImpactArea>(), TimeSpan.FromMinutes(45), Winter);

        Assert.Equal(
            "Update (2026-01-15 14:05 UTC / 08:05 CST): We identified a regression in the KFM API deployment affecting availability and/or policy enforcement. " +
            "We have initiated a rollback to the last-known-good build and are verifying service health and safety invariants. Next update in: 45 minutes (by 14:50 UTC).",
            update.Text);
        Assert.Equal(Winter.AddMinutes(45), update.NextUpdateBy);
    }

    [Fact]
    public void Chicago_time_follows_daylight_saving()
    {
        Assert.Contains("/ 09:05 CDT)", IncidentUpdates.Compose("INC-1", IncidentStage.Verifying, Array.Empty<ImpactArea>(), null, Summer).Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Chicago_names_its_date_when_it_is_still_the_day_before()
    {
        var lateEvening = new DateTimeOffset(2026, 11, 29, 3, 10, 0, TimeSpan.Zero);
        Assert.StartsWith("Update (2026-11-29 03:10 UTC / 2026-11-28 21:10 CST):", IncidentUpdates.Compose("INC-1", IncidentStage.Resolved, Array.Empty<ImpactArea>(), null, lateEvening).Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { ImpactArea.Latency }, "affecting response times.")]
    [InlineData(new[] { ImpactArea.PolicyEnforcement, ImpactArea.Availability }, "affecting availability and policy enforcement.")]
    [InlineData(new[] { ImpactArea.Correctness, ImpactArea.Latency, ImpactArea.Availability }, "affecting availability, response times and the correctness of responses.")]
    public void Impact_areas_are_named_in_a_fixed_order(ImpactArea[] impact, string expected)
    {
        Assert.Contains(expected, IncidentUpdates.Compose("INC-1", IncidentStage.Identified, impact, null, Winter).Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_open_stage_promises_a_next_update_and_resolved_promises_none()
    {
        foreach (IncidentStage stage in Enum.GetValues<IncidentStage>())
        {
            IncidentUpdate update = IncidentUpdates.Compose("INC-1", stage, Array.Empty<ImpactArea>(), null, Winter);
            if (stage == IncidentStage.Resolved)
            {
                Assert.Null(update.NextUpdateBy);
                Assert.DoesNotContain("Next update", update.Text, StringComparison.Ordinal);
            }
            else
            {
                Assert.Equal(Winter.AddMinutes(30), update.NextUpdateBy);
                Assert.EndsWith("Next update in: 30 minutes (by 14:35 UTC).", update.Text, StringComparison.Ordinal);
            }
        }
        Assert.Contains("Next update in: 2 hours", IncidentUpdates.Compose("INC-1", IncidentStage.FailedClosed, Array.Empty<ImpactArea>(), TimeSpan.FromHours(2), Winter).Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    [InlineData(24 * 60 + 1)]
    public void A_timebox_outside_a_day_is_refused(int minutes)
    {
        var error = Assert.Throws<KfmException>(() => IncidentUpdates.Compose("INC-1", IncidentStage.RollingBack, Array.Empty<ImpactArea>(), TimeSpan.FromMinutes(minutes), Winter));
        Assert.Equal("IncidentUpdateTimeboxInvalid", error.ErrorId);
        Assert.Equal(KfmErrorKind.InvalidArgument, error.Kind);
    }

    [Fact]
    public void Nothing_but_fixed_wording_stage_impact_and_times_reaches_the_text()
    {
        // The incident id is the only caller-supplied string, and it stays out of the text too.
        IncidentUpdate update = IncidentUpdates.Compose("INC-burial_sites-leak", IncidentStage.FailedClosed, new[] { ImpactArea.PolicyEnforcement }, null, Winter);
        Assert.DoesNotContain("burial_sites", update.Text, StringComparison.Ordinal);
        Assert.Contains("no data is served outside policy", update.Text, StringComparison.Ordinal);
    }
}
