using KfmRollback.Engine.Configuration;
using Xunit;
using static KfmRollback.Engine.Tests.Configuration.ConfigTestSupport;

namespace KfmRollback.Engine.Tests.Configuration;

/// <summary>gitops.images_path, container, resource and helm_values paths with list indices.</summary>
public sealed class GitOpsPinConfigTests
{
    [Fact]
    public void SelectionKeysBind()
    {
        var gitops = Prod(Replace("      image_name: kfm-api", "      image_name: kfm-api\n      images_path: spec.postRenderers[0].kustomize.images\n      resource: HelmRelease/kfm-api")).Gitops!;
        Assert.Equal("spec.postRenderers[0].kustomize.images", gitops.ImagesPath);
        Assert.Equal("HelmRelease/kfm-api", gitops.Resource);
        var helm = Prod(Replace("      kind: kustomize", "      kind: helm").Replace("      image_name: kfm-api\n", "      helm_values:\n        digest: api.containers[0].image.digest\n        parameters: spec.source.helm.parameters\n")).Gitops!;
        Assert.Equal("api.containers[0].image.digest", helm.HelmValues.Digest);
        Assert.Equal("spec.source.helm.parameters", helm.HelmValues.Parameters);
    }

    [Fact]
    public void ContainerNamesOneOrSeveral()
    {
        string Raw(string container) => Replace("      kind: kustomize", "      kind: raw").Replace("      image_name: kfm-api", "      image_name: kfm-api\n      container: " + container);
        Assert.Equal(new[] { "api" }, Prod(Raw("api")).Gitops!.Container);
        Assert.Equal(new[] { "migrate", "api" }, Prod(Raw("[migrate, api]")).Gitops!.Container);
        Assert.Empty(Prod(Minimal).Gitops!.Container);
        Assert.Contains("names container 'api' twice", LoadFails(Raw("[api, api]"), ConfigErrorIds.ConfigInvalidValue).Message);
    }

    [Theory]
    [InlineData("      image_name: kfm-api\n      images_path: 'spec..images'", "images_path")]
    [InlineData("      image_name: kfm-api\n      resource: kfm-api", "resource")]
    [InlineData("      image_name: kfm-api\n      container: api", "container")]
    public void BadSelectionsAreRefused(string replacement, string key)
    {
        var e = LoadFails(Replace("      image_name: kfm-api", replacement), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains($"environments.prod.gitops.{key}", e.Message);
    }
}
