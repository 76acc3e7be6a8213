using Xunit;
using static KfmRollback.Engine.Tests.Configuration.ConfigTestSupport;

namespace KfmRollback.Engine.Tests.Configuration;

/// <summary>The registry section: a URL, an optional repository, credentials by reference only.</summary>
public sealed class RegistryConfigTests
{
    private static string With(string registry) => InsertAfter("      deployment: kfm-api", "    registry:\n" + registry);

    [Fact]
    public void LoadsWithCredentialsByReference()
    {
        var registry = Prod(With("      url: https://kfmregistry.azurecr.io\n      repository: kfm/kfm-api\n      username: kfm-rollback\n      token_env: KFM_REGISTRY_TOKEN")).Registry!;
        Assert.Equal(new Uri("https://kfmregistry.azurecr.io"), registry.Url);
        Assert.Equal(("kfm/kfm-api", "kfm-rollback", "KFM_REGISTRY_TOKEN"), (registry.Repository, registry.Username, registry.TokenEnv));
        Assert.Equal(TimeSpan.FromSeconds(15), registry.Timeout);
        Assert.Null(Prod(Minimal).Registry);
    }

    [Fact]
    public void RefusesAnInlinePasswordWithoutEchoingIt()
    {
        var e = LoadFails(With("      url: https://r.test\n      username: u\n      password: hunter2-literal"), "ConfigInvalidValue");
        Assert.DoesNotContain("hunter2-literal", e.Message);
    }

    [Fact]
    public void AUserNeedsItsSecretByReference() =>
        Assert.Contains("token_env", LoadFails(With("      url: https://r.test\n      username: u"), "ConfigMissingKey").Message);

    [Fact]
    public void ASecretNeedsItsUser() =>
        Assert.Contains("username", LoadFails(With("      url: https://r.test\n      token_env: KFM_REGISTRY_TOKEN"), "ConfigMissingKey").Message);

    [Fact]
    public void RefusesARepositoryTheDistributionSpecDoesNotAllow() =>
        Assert.Contains("kfm/KFM-Api", LoadFails(With("      url: https://r.test\n      repository: kfm/KFM-Api"), "ConfigInvalidValue").Message);

    [Fact]
    public void RefusesCredentialsInTheUrl() =>
        LoadFails(With("      url: https://u:p@r.test"), "ConfigInvalidValue");
}
