using KfmRollback.Engine.Configuration;
using Xunit;
using static KfmRollback.Engine.Tests.Configuration.ConfigTestSupport;

namespace KfmRollback.Engine.Tests.Configuration;

/// <summary>fleets: waves of existing environments, each environment once.</summary>
public sealed class FleetConfigTests
{
    private static string WithFleet(string fleet) => Minimal + "\n" + fleet;

    [Fact]
    public void A_fleet_loads_with_its_waves_bake_time_and_verify()
    {
        var config = Load(WithFleet("fleets:\n  all:\n    waves:\n      - environments: [prod]\n    bake_time: 90s\n    verify: false"));
        var fleet = config.GetFleet("all");
        Assert.Equal("prod", fleet.Waves.Single().Environments.Single());
        Assert.Equal(TimeSpan.FromSeconds(90), fleet.BakeTime);
        Assert.False(fleet.Verify);
    }

    [Fact]
    public void An_unknown_environment_in_a_wave_is_refused_with_the_defined_ones()
    {
        var e = LoadFails(WithFleet("fleets:\n  all:\n    waves:\n      - environments: [prod, qa]"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("'qa'", e.Message);
        Assert.Contains("defined: prod", e.Message);
    }

    [Fact]
    public void An_environment_in_two_waves_is_refused()
    {
        var e = LoadFails(WithFleet("fleets:\n  all:\n    waves:\n      - environments: [prod]\n      - environments: [prod]"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("two waves", e.Message);
    }

    [Fact]
    public void A_fleet_without_waves_is_refused() =>
        LoadFails(WithFleet("fleets:\n  all:\n    bake_time: 1m"), ConfigErrorIds.ConfigMissingKey);

    [Fact]
    public void An_undefined_fleet_names_the_defined_ones()
    {
        var config = Load(WithFleet("fleets:\n  all:\n    waves:\n      - environments: [prod]"));
        var e = Assert.Throws<KfmRollback.Engine.Core.KfmException>(() => config.GetFleet("some"));
        Assert.Equal(ConfigErrorIds.FleetNotFound, e.ErrorId);
        Assert.Contains("Defined fleets: all", e.Message);
    }
}
