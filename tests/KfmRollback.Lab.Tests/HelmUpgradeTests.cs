using System.Text.Json.Nodes;
using KfmRollback.Lab.Api;
using Xunit;

namespace KfmRollback.Lab.Tests;

/// <summary>POST /lab/helm: a bad deploy through Helm, as `helm upgrade` leaves it, read back with real kubectl.</summary>
public class HelmUpgradeTests
{
    [Fact]
    public async Task AnUpgradeWritesANewDeployedRevisionSupersedesTheOldOneAndRollsTheDeploymentOut()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        await lab.RolledOut();
        var bad = lab.Host.Images.Get("bad-5xx");

        var (code, body) = await lab.Send(HttpMethod.Post, "/lab/helm", "{\"build\":\"bad-5xx\"}");
        Assert.Equal(200, code);
        Assert.Equal(5, body["version"]!.GetValue<int>());

        var secrets = J.Parse((await lab.K("get", "secrets", "-n", "kfm", "-l", "owner=helm,name=kfm-api", "-o", "json")).Ok().Out)["items"]!.AsArray()
            .Select(s => (Version: int.Parse(s!["metadata"]!["labels"]!["version"]!.GetValue<string>()), Status: s["metadata"]!["labels"]!["status"]!.GetValue<string>()))
            .OrderBy(s => s.Version).ToList();
        Assert.Equal(new[] { "superseded", "superseded", "superseded", "superseded", "deployed" }, secrets.Select(s => s.Status));
        Assert.Equal("sh.helm.release.v1.kfm-api.v5", (await lab.K("get", "secret", "-n", "kfm", "sh.helm.release.v1.kfm-api.v5", "-o", "jsonpath={.metadata.name}")).Ok().Out);

        Assert.Equal(bad.Image, lab.Image());
        Assert.Contains("successfully rolled out", (await lab.K("rollout", "status", "deployment/kfm-api", "-n", "kfm", "--timeout=60s")).Ok().Out);
        Assert.Equal(400, (await lab.Send(HttpMethod.Post, "/lab/helm", "{\"build\":\"no-such-build\"}")).code);
    }
}
