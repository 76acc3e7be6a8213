using Xunit;
using static KfmRollback.Engine.Tests.Configuration.ConfigTestSupport;

namespace KfmRollback.Engine.Tests.Configuration;

/// <summary>The verify section: a cosign public key by file, a denylist inline or by file; a signature check needs the registry.</summary>
public sealed class VerifyConfigTests
{
    private const string Digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    private const string Registry = "    registry:\n      url: https://kfmregistry.azurecr.io\n      repository: kfm/kfm-api\n";

    private static string With(string sections) => InsertAfter("      deployment: kfm-api", sections);

    [Fact]
    public void LoadsAKeyAndADenylistWithPathsResolvedAgainstTheConfigFile()
    {
        var verify = Prod(With(Registry + $"    verify:\n      public_key_file: keys/cosign.pub\n      denylist_file: revoked.txt\n      denylist: [ '{Digest}' ]")).Verify!;
        Assert.Equal(Path.Combine(BaseDirectory, "keys/cosign.pub"), verify.PublicKeyFile);
        Assert.Equal(Path.Combine(BaseDirectory, "revoked.txt"), verify.DenylistFile);
        Assert.Equal(new[] { Digest }, verify.Denylist);
        Assert.True(verify.ChecksSignatures);
        Assert.Null(Prod(Minimal).Verify);
    }

    [Fact]
    public void ADenylistAloneNeedsNoRegistry() =>
        Assert.False(Prod(With($"    verify:\n      denylist: [ '{Digest}' ]")).Verify!.ChecksSignatures);

    [Fact]
    public void ASignatureCheckNeedsTheRegistryItIsReadFrom() =>
        Assert.Contains("registry", LoadFails(With("    verify:\n      public_key_file: cosign.pub"), "ConfigMissingKey").Message);

    [Fact]
    public void AnEmptySectionSaysWhatItCanCheck() =>
        Assert.Contains("public_key_file", LoadFails(With("    verify:\n      denylist: []"), "ConfigMissingKey").Message);

    [Fact]
    public void ADenylistEntryMustBeADigest() =>
        Assert.Contains("'kfm-api:1.7.0'", LoadFails(With("    verify:\n      denylist: [ 'kfm-api:1.7.0' ]"), "ConfigInvalidValue").Message);
}
