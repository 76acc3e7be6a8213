using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Receipts;
using static KfmRollback.Engine.Tests.Configuration.ConfigTestSupport;

namespace KfmRollback.Engine.Tests.Configuration;

/// <summary>receipts.git with a remote and receipts.blob: what loads, what is refused, and where the local copies go.</summary>
public sealed class ReceiptStoreConfigTests
{
    private static string WithReceipts(string block) => InsertAfter("          - path: /api/v1/datasets", "    receipts:\n" + block);

    [Fact]
    public void AGitRemoteAlone_IsKeptInTheStateFolder_NamedByAHash()
    {
        var prod = Prod(WithReceipts("      git:\n        url: https://git.example.test/ops/receipts.git\n        token_env: KFM_RECEIPTS_TOKEN"));
        var location = ReceiptStoreLocation.FromConfig(prod.Receipts!);
        Assert.Equal("https://git.example.test/ops/receipts.git", location.RemoteUrl);
        Assert.Equal("KFM_RECEIPTS_TOKEN", location.TokenEnv);
        Assert.StartsWith(Path.Combine(KfmPaths.StateDirectory(), "receipts", "git"), location.Path);
        Assert.DoesNotContain("example", location.Path);
        Assert.Contains("pushed to https://git.example.test/ops/receipts.git", location.Description);
    }

    [Fact]
    public void AGitStoreNeedsAUrlOrAPath()
    {
        var e = LoadFails(WithReceipts("      git:\n        branch: receipts"), ConfigErrorIds.ConfigMissingKey);
        Assert.Contains("receipts.git", e.Message);
        Assert.Contains("url", e.Message);
    }

    [Fact]
    public void AGitRemoteOverPlainHttpToAnotherHost_OrWithCredentialsInIt_IsRefused()
    {
        LoadFails(WithReceipts("      git:\n        url: http://git.example.test/receipts.git"), ConfigErrorIds.ConfigInvalidValue);
        var e = LoadFails(WithReceipts("      git:\n        url: https://bot:hunter2@git.example.test/receipts.git"), ConfigErrorIds.ConfigInvalidValue);
        Assert.DoesNotContain("hunter2", e.Message);
    }

    [Fact]
    public void ABlobContainerWithASas_Loads()
    {
        var prod = Prod(WithReceipts("      blob:\n        account_url: https://kfmops.blob.core.windows.net\n        container: kfm-receipts\n        prefix: prod\n        sas_env: KFM_RECEIPTS_SAS"));
        var location = ReceiptStoreLocation.FromConfig(prod.Receipts!);
        Assert.Equal("kfm-receipts", location.Blob!.Container);
        Assert.Equal("blob container kfm-receipts/prod", location.Description);
        Assert.StartsWith(Path.Combine(KfmPaths.StateDirectory(), "receipts", "blob"), location.Path);
    }

    [Theory]
    [InlineData("        container: kfm-receipts", "needs one of 'sas_env'")]
    [InlineData("        container: kfm-receipts\n        sas_env: S", "account_url")]
    [InlineData("        container: kfm-receipts\n        account_url: https://a.blob.core.windows.net\n        connection_string_env: C", "taken from the connection string")]
    [InlineData("        container: kfm-receipts\n        account_url: http://a.blob.core.windows.net\n        sas_env: S", "must be https://")]
    [InlineData("        container: Kfm_Receipts\n        connection_string_env: C", "blob container name")]
    [InlineData("        container: kfm-receipts\n        sas_env: S\n        connection_string_env: C", "cannot be combined")]
    public void ABlobContainerConfiguredWrongly_IsRefused_SayingWhat(string block, string expected)
    {
        var e = Assert.Throws<KfmException>(() => Load(WithReceipts("      blob:\n" + block)));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void OnlyOneKindOfStore()
    {
        var e = LoadFails(WithReceipts("      store: r\n      blob:\n        container: kfm-receipts\n        connection_string_env: C"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("cannot be combined", e.Message);
    }

    [Fact]
    public void AReferenceToAnUnsetVariable_IsAnErrorNamingTheKey_NeverAValue()
    {
        var variable = "KFM_TEST_UNSET_" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();
        var prod = Prod(WithReceipts($"      blob:\n        container: kfm-receipts\n        connection_string_env: {variable}"));
        var e = Assert.Throws<KfmException>(() => ReceiptStoreLocation.FromConfig(prod.Receipts!).Open(forWriting: true));
        Assert.Equal("ReceiptStoreCredentialMissing", e.ErrorId);
        Assert.Contains("receipts.blob.connection_string_env", e.Message);

        var git = Prod(WithReceipts($"      git:\n        url: https://git.example.test/r.git\n        token_env: {variable}"));
        var t = Assert.Throws<KfmException>(() => ReceiptStoreLocation.FromConfig(git.Receipts!).Open(forWriting: false));
        Assert.Equal("ReceiptStoreTokenUnavailable", t.ErrorId);
        Assert.Contains("receipts.git.token_env", t.Message);
    }
}
