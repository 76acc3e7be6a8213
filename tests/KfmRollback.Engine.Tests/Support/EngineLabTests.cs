using System.Net.Sockets;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Tests.Support;

/// <summary>The lab fixture itself: the configuration it builds is the one each test class means, and a failed start leaves nothing running.</summary>
public sealed class EngineLabTests
{
    [Fact]
    public async Task Sections_land_under_their_key_in_every_environment_of_the_fleet_and_a_section_set_again_is_replaced()
    {
        await using var lab = await EngineLab.StartAsync(new LabSetup
        {
            Environment = c => c.Named("prod").Cluster("lease_duration: 1m").Responder().Fleet("kfm-api-eu")
                .With("helm", "{ release: kfm-api, history_max: 3 }")
                .Block("prometheus", "url: http://127.0.0.1:9\nbaseline:\n  min_window: 8s\n  same_time_offset: 15s")
                .Block("policy_surface", "configmap: kfm-api-config\nkey: policy_bundle"),
        });

        Assert.Equal(new[] { "kfm-api-eu", "prod" }, lab.Config.EnvironmentNames);
        foreach ((string name, string deployment) in new[] { ("prod", "kfm-api"), ("kfm-api-eu", "kfm-api-eu") })
        {
            EnvironmentConfig environment = lab.Config.GetEnvironment(name);
            Assert.Equal((lab.Host.KubeconfigPath, "lab", "kfm", deployment, "api", TimeSpan.FromMinutes(1)),
                (environment.Cluster.KubeconfigPath, environment.Cluster.Context, environment.Cluster.Namespace, environment.Cluster.Deployment, environment.Cluster.Container, environment.Cluster.LeaseDuration));
            Assert.Equal((TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(15)), (environment.Prometheus.Baseline.MinWindow, environment.Prometheus.Baseline.SameTimeOffset));
            Assert.Equal(("kfm-api", 3), (environment.Helm!.Release, environment.Helm.HistoryMax));
            Assert.Equal(("kfm-api-config", "policy_bundle"), (environment.PolicySurface!.Configmap, environment.PolicySurface.Key));
            Assert.Equal(new[] { "kfm-api-config" }, environment.ConfigSurface.Configmaps);
            Assert.False(environment.ApprovalRequired);
        }
        Assert.Equal("prod", lab.Environment.Name);
        Assert.Throws<ArgumentException>(() => lab.Configure().With("prometheus", "url: a\nbaseline: {}"));
    }

    [Fact]
    public async Task A_start_that_fails_part_way_stops_the_lab_and_removes_its_directory()
    {
        string? dir = null;
        int port = 0;
        var setup = new LabSetup
        {
            Environment = c =>
            {
                (dir, port) = (c.Lab.Dir, c.Lab.Host.Port);
                return c.With("no_such_section", "1");
            },
        };

        var refused = await Assert.ThrowsAsync<KfmException>(() => EngineLab.StartAsync(setup));

        Assert.Equal("ConfigUnknownKey", refused.ErrorId);
        Assert.NotNull(dir);
        Assert.False(Directory.Exists(dir), dir);
        using var probe = new TcpClient();
        await Assert.ThrowsAsync<SocketException>(() => probe.ConnectAsync("127.0.0.1", port));
    }
}
