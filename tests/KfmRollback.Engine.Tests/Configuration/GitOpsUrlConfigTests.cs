using KfmRollback.Engine.Configuration;
using Xunit;
using static KfmRollback.Engine.Tests.Configuration.ConfigTestSupport;

namespace KfmRollback.Engine.Tests.Configuration;

/// <summary>gitops.url takes https, http only to loopback (test servers), and file; nothing else.</summary>
public sealed class GitOpsUrlConfigTests
{
    [Theory]
    [InlineData("https://git.example.test/kfm/infra.git")]
    [InlineData("http://127.0.0.1:8080/git/infra.git")]
    [InlineData("http://localhost:8080/git/infra.git")]
    [InlineData("file:///srv/git/infra.git")]
    public void AcceptedRemotes(string url)
    {
        var gitops = Prod(Replace("      path: infra", $"      url: '{url}'")).Gitops!;
        Assert.Equal(new Uri(url), gitops.Url);
    }

    [Theory]
    [InlineData("http://git.example.test/infra.git")]
    [InlineData("ssh://git@git.example.test/infra.git")]
    [InlineData("git://git.example.test/infra.git")]
    public void RefusedRemotes(string url)
    {
        var e = LoadFails(Replace("      path: infra", $"      url: '{url}'"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("environments.prod.gitops.url must be an https:// URL, an http:// URL to a loopback host, or a file:// URL", e.Message);
    }

    [Fact]
    public void CredentialsInTheUrlAreRefused()
    {
        var e = LoadFails(Replace("      path: infra", "      url: 'https://user:pw@git.example.test/infra.git'"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("must not carry credentials", e.Message);
        Assert.DoesNotContain("pw@", e.Message);
    }
}
