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
    public void TheTargetsRepositoryIsTheConfiguredOneElseTheImagePathWithoutItsHost()
    {
        string image = "kfmregistry.azurecr.io/team/kfm-api@sha256:" + new string('a', 64);
        Assert.Equal("kfm/kfm-api", Prod(With("      url: https://r.test\n      repository: kfm/kfm-api")).Registry!.RepositoryOf(image));
        var unset = Prod(With("      url: https://r.test")).Registry!;
        Assert.Equal("team/kfm-api", unset.RepositoryOf(image));
        // Neither says which repository: the preflight refuses rather than guess.
        Assert.Null(unset.RepositoryOf(null));
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

    [Fact]
    public void RefusesCredentialsOverPlainHttpToAnotherHost()
    {
        var e = LoadFails(With("      url: http://registry.kfm.test\n      username: u\n      token_env: KFM_REGISTRY_TOKEN"), "ConfigInvalidValue");
        Assert.Contains("plain http://", e.Message);
        // Anonymous pulls over http stay allowed, and loopback test registries with credentials too.
        Assert.Null(Prod(With("      url: http://registry.kfm.test")).Registry!.Username);
        Assert.Equal("u", Prod(With("      url: http://127.0.0.1:5000\n      username: u\n      token_env: KFM_REGISTRY_TOKEN")).Registry!.Username);
    }

    [Fact]
    public async Task TheClientRefusesToSendCredentialsOverPlainHttpBeforeAnyRequest()
    {
        int requests = 0;
        using var http = new HttpClient(new CountingHandler(() => requests++));
        var client = new KfmRollback.Engine.Adapters.Registry.OciRegistryClient(new Uri("http://registry.kfm.test"),
            new KfmRollback.Engine.Adapters.Registry.RegistryCredential("u", "registry-canary-secret"), http);
        var e = await Assert.ThrowsAsync<KfmRollback.Engine.Core.KfmException>(() =>
            client.HeadManifestAsync("kfm/kfm-api", "sha256:" + new string('a', 64), CancellationToken.None));
        Assert.Equal("InsecureTransport", e.ErrorId);
        Assert.DoesNotContain("registry-canary-secret", e.ToString());
        Assert.Equal(0, requests);   // the anonymous first request may go out, never one with the credential
    }

    /// <summary>Answers every request 401 with a Basic challenge, counting requests that carry credentials.</summary>
    private sealed class CountingHandler(Action credentialed) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.Headers.Authorization is not null) { credentialed(); }
            var response = new HttpResponseMessage(System.Net.HttpStatusCode.Unauthorized);
            response.Headers.WwwAuthenticate.ParseAdd("Basic realm=\"registry\"");
            return Task.FromResult(response);
        }
    }
}
