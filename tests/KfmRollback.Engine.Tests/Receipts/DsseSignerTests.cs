using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Receipts;
using Xunit;

namespace KfmRollback.Engine.Tests.Receipts;

public class DsseSignerTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Pae_MatchesTheDsseSpecExample()
    {
        var pae = DsseSigner.Pae("http://example.com/HelloWorld", Encoding.UTF8.GetBytes("hello world"));
        Assert.Equal("DSSEv1 29 http://example.com/HelloWorld 11 hello world", Encoding.UTF8.GetString(pae));
    }

    [Fact]
    public void Sign_ProducesAnInTotoStatementAboutTheImageDigests_ThatVerifies()
    {
        var (priv, pub) = Samples.NewP256Key();
        using var signer = DsseSigner.FromPem(priv);
        var receipt = Samples.Receipt();
        var envelope = signer.Sign(receipt);

        Assert.Equal("application/vnd.in-toto+json", envelope.PayloadType);
        var statement = JsonNode.Parse(Convert.FromBase64String(envelope.Payload))!;
        Assert.Equal("https://in-toto.io/Statement/v1", (string?)statement["_type"]);
        Assert.Equal("https://kfm.dev/attestations/rollback-receipt/v1", (string?)statement["predicateType"]);
        Assert.Equal("prod/current_ref", (string?)statement["subject"]![0]!["name"]);
        Assert.Equal(Samples.CurrentDigest[7..], (string?)statement["subject"]![0]!["digest"]!["sha256"]);
        Assert.Equal(Samples.TargetDigest[7..], (string?)statement["subject"]![1]!["digest"]!["sha256"]);
        Assert.Equal(ReceiptDigest.Of(receipt), ReceiptDigest.Of(statement["predicate"]));
        Assert.Equal(signer.KeyId, envelope.Signatures.Single().KeyId);

        var check = DsseSigner.Verify(envelope, pub, ReceiptDigest.Of(receipt));
        Assert.True(check.IsValid, check.Detail);
        // The signature is DER, as documented.
        var sig = Convert.FromBase64String(envelope.Signatures[0].Sig);
        Assert.Equal(0x30, sig[0]);
    }

    [Fact]
    public void AnotherKey_DoesNotVerify()
    {
        var (priv, _) = Samples.NewP256Key();
        var (_, otherPub) = Samples.NewP256Key();
        using var signer = DsseSigner.FromPem(priv);
        var check = DsseSigner.Verify(signer.Sign(Samples.Receipt()), otherPub);
        Assert.False(check.IsValid);
        Assert.Contains("no signature verifies", check.Detail);
    }

    [Fact]
    public void UrlSafeUnpaddedBase64_AndAForgedKeyId_AreHandledPerDsse()
    {
        var (priv, pub) = Samples.NewP256Key();
        using var signer = DsseSigner.FromPem(priv);
        var e = signer.Sign(Samples.Receipt());
        static string UrlSafe(string b64) => b64.TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var variant = new DsseEnvelope
        {
            PayloadType = e.PayloadType,
            Payload = UrlSafe(e.Payload),
            Signatures = new[] { new DsseSignature { KeyId = "someone-else", Sig = UrlSafe(e.Signatures[0].Sig) } },
        };
        Assert.True(DsseSigner.Verify(variant, pub).IsValid);
    }

    [Fact]
    public void P1363Signatures_AreAcceptedToo()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var receipt = Samples.Receipt();
        var payload = Jcs.Canonicalize(DsseSigner.Statement(receipt));
        var sig = key.SignData(DsseSigner.Pae(DsseSigner.PayloadType, payload), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        var envelope = new DsseEnvelope
        {
            PayloadType = DsseSigner.PayloadType,
            Payload = Convert.ToBase64String(payload),
            Signatures = new[] { new DsseSignature { Sig = Convert.ToBase64String(sig) } },
        };
        Assert.True(DsseSigner.Verify(envelope, key.ExportSubjectPublicKeyInfoPem(), ReceiptDigest.Of(receipt)).IsValid);
    }

    [Fact]
    public void TamperedPayload_OrADifferentReceipt_DoesNotVerify()
    {
        var (priv, pub) = Samples.NewP256Key();
        using var signer = DsseSigner.FromPem(priv);
        var e = signer.Sign(Samples.Receipt("INC-1"));
        var forged = Encoding.UTF8.GetString(Convert.FromBase64String(e.Payload)).Replace("INC-1", "INC-9");
        var tampered = new DsseEnvelope { PayloadType = e.PayloadType, Payload = Convert.ToBase64String(Encoding.UTF8.GetBytes(forged)), Signatures = e.Signatures };
        Assert.False(DsseSigner.Verify(tampered, pub).IsValid);

        var other = DsseSigner.Verify(e, pub, ReceiptDigest.Of(Samples.Receipt("INC-2")));
        Assert.False(other.IsValid);
        Assert.Contains("different receipt", other.Detail);
    }

    [Fact]
    public void Sec1PemIsAccepted_OtherCurvesAndPublicOnlyKeysAreNot()
    {
        using var p256 = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using (DsseSigner.FromPem(p256.ExportECPrivateKeyPem())) { }

        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        var ex = Assert.Throws<KfmException>(() => DsseSigner.FromPem(p384.ExportPkcs8PrivateKeyPem()));
        Assert.Equal("DsseSigningKeyInvalid", ex.ErrorId);
        Assert.DoesNotContain("PRIVATE KEY-----", ex.Message);

        Assert.Equal("DsseSigningKeyInvalid", Assert.Throws<KfmException>(() => DsseSigner.FromPem(p256.ExportSubjectPublicKeyInfoPem())).ErrorId);
    }

    [Fact]
    public void Store_SignsEachSave_AndVerifiesSignaturesWhenGivenAKey()
    {
        var (priv, pub) = Samples.NewP256Key();
        var (_, otherPub) = Samples.NewP256Key();
        using var signer = DsseSigner.FromPem(priv);
        var store = new ReceiptStore(_dir.Sub("store"), new ReceiptStoreOptions { Signer = signer, Clock = new FixedClock(Samples.Now) });
        var saved = store.Save(Samples.Receipt("INC-1"));
        store.Save(Samples.Receipt("INC-2"));

        Assert.Equal(store.SignaturePath(saved.Digest), saved.SignaturePath);
        Assert.EndsWith(ReceiptDigest.Hex(saved.Digest) + ".dsse.json", saved.SignaturePath);
        Assert.True(store.Verify(saved.ChainHead, pub).IsValid);

        var wrongKey = store.Verify(null, otherPub);
        Assert.Equal(new[] { ReceiptProblemKind.SignatureInvalid, ReceiptProblemKind.SignatureInvalid }, wrongKey.Problems.Select(p => p.Kind));
        Assert.Equal(1, wrongKey.FirstProblem!.Sequence);

        File.Delete(saved.SignaturePath!);
        var missing = store.Verify(null, pub);
        Assert.Equal(ReceiptProblemKind.SignatureMissing, Assert.Single(missing.Problems).Kind);
        // Without a key, signatures are not part of the check.
        Assert.True(store.Verify().IsValid);
    }

    [Fact]
    public void SwappedSignatureFiles_AreCaught()
    {
        var (priv, pub) = Samples.NewP256Key();
        using var signer = DsseSigner.FromPem(priv);
        var store = new ReceiptStore(_dir.Sub("store"), new ReceiptStoreOptions { Signer = signer });
        var a = store.Save(Samples.Receipt("INC-1"));
        var b = store.Save(Samples.Receipt("INC-2"));
        File.Copy(a.SignaturePath!, b.SignaturePath!, overwrite: true);

        var problem = Assert.Single(store.Verify(null, pub).Problems);
        Assert.Equal(ReceiptProblemKind.SignatureInvalid, problem.Kind);
        Assert.Equal(2, problem.Sequence);
    }

    [Fact]
    public void EnvelopeWithoutSignatures_DoesNotVerify()
    {
        var (priv, pub) = Samples.NewP256Key();
        using var signer = DsseSigner.FromPem(priv);
        var e = signer.Sign(Samples.Receipt());
        var unsigned = DsseEnvelope.Parse($"{{\"payloadType\":\"{e.PayloadType}\",\"payload\":\"{e.Payload}\",\"signatures\":[]}}");
        Assert.False(DsseSigner.Verify(unsigned, pub).IsValid);
        Assert.Equal("DsseEnvelopeInvalid", Assert.Throws<KfmException>(() => DsseEnvelope.Parse("{\"payload\":1}")).ErrorId);
    }
}
