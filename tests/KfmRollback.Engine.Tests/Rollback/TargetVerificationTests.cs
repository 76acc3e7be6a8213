using System.Security.Cryptography;
using System.Text;
using KfmRollback.Engine.Adapters.Registry;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Receipts;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Rollback.Preflight;
using KfmRollback.Engine.Tests.Receipts;
using KfmRollback.Engine.Tests.Support;
using Xunit;
using static KfmRollback.Engine.Tests.Rollback.PreflightTests;

namespace KfmRollback.Engine.Tests.Rollback;

/// <summary>
/// The target-verify preflight check (issue 19 item 3) against a real OCI registry on loopback
/// (Debian's docker-registry) and the lab cluster. The images and their cosign signatures are
/// written here by the published formats, not by cosign:
/// - OCI distribution spec v1.1, "Push" ("Pushing blobs", "Pushing Manifests") for the uploads;
/// - sigstore/cosign specs/SIGNATURE_SPEC.md (docs.sigstore.dev, "Signature Specification"): the
///   signatures of repo@sha256:&lt;hex&gt; are the layers of the OCI image manifest tagged
///   sha256-&lt;hex&gt;.sig, each of media type application/vnd.dev.cosign.simplesigning.v1+json holding
///   the "simple signing" payload {"critical":{"identity":{"docker-reference":…},"image":
///   {"docker-manifest-digest":…},"type":"cosign container image signature"},"optional":…}, its
///   annotation dev.cosignproject.cosign/signature the base64 ECDSA P-256/SHA-256 (ASN.1 DER)
///   signature over the payload bytes; public keys are PEM "PUBLIC KEY" (PKIX), as cosign.pub.
/// </summary>
public sealed class TargetVerificationTests
{
    private const string TokenVariable = "KFM_VERIFY_TEST_REGISTRY_TOKEN";
    private const string Repository = "kfm/api";

    private static RollbackRequest Request(EnvironmentConfig environment, string? forceReason = null) => new()
    {
        Environment = environment,
        Method = RollbackMethod.Cluster,
        IncidentId = "INC-SIG",
        Actor = "tester",
        Reason = "target verification test",
        Timeout = TimeSpan.FromSeconds(60),
        Force = forceReason is not null,
        ForceReason = forceReason,
    };

    /// <summary>A cosign simple-signing payload for <paramref name="digest"/>; <paramref name="scenario"/> goes in "optional" so each payload is a new blob.</summary>
    private static byte[] Payload(string digest, string scenario) => Encoding.UTF8.GetBytes(
        $$$"""{"critical":{"identity":{"docker-reference":"registry.kfm.local/{{{Repository}}}"},"image":{"docker-manifest-digest":"{{{digest}}}"},"type":"cosign container image signature"},"optional":{"scenario":"{{{scenario}}}"}}""");

    private static string Sign(ECDsa key, byte[] payload) =>
        Convert.ToBase64String(key.SignData(payload, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));

    /// <summary>Pushes <paramref name="payload"/> as the one signature layer of <c>sha256-&lt;hex&gt;.sig</c> for <paramref name="target"/>; returns the payload blob's digest.</summary>
    private static async Task<string> AttachAsync(RegistryServer registry, string target, byte[] payload, string signature)
    {
        string layer = await registry.PushBlobAsync(Repository, payload);
        byte[] config = Encoding.UTF8.GetBytes("{\"architecture\":\"\",\"os\":\"\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},\"config\":{}}");
        string configDigest = await registry.PushBlobAsync(Repository, config);
        byte[] manifest = Encoding.UTF8.GetBytes($$$"""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
             "config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":{{{config.Length}}},"digest":"{{{configDigest}}}"},
             "layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":{{{payload.Length}}},"digest":"{{{layer}}}",
                        "annotations":{"dev.cosignproject.cosign/signature":"{{{signature}}}"}}]}
            """);
        await registry.PushManifestAsync(Repository, target.Replace(':', '-') + ".sig", manifest, "application/vnd.oci.image.manifest.v1+json");
        return layer;
    }

    private static EnvironmentConfig Environment(EngineLab lab, Uri registry, string publicKey, params string[] denylist)
    {
        string keyFile = Path.Combine(lab.Dir, "cosign.pub");
        File.WriteAllText(keyFile, publicKey);
        string revoked = denylist.Length == 0 ? "" : $", denylist: [ {string.Join(", ", denylist)} ]";
        return PreflightTests.Registry(lab, registry, TokenVariable).With("verify", $"{{ public_key_file: cosign.pub{revoked} }}").Environment();
    }

    /// <summary>A lab running the bad build, whose previous revision (the rollback target) is the good one; both pushed to the registry.</summary>
    private static async Task<(string Good, string Bad)> DeployGoodThenBadAsync(EngineLab lab, RegistryServer registry)
    {
        await lab.FreezeAsync("INC-PRE");
        string good = await registry.PushImageAsync(Repository, "1.7.0", "good build");
        string bad = await registry.PushImageAsync(Repository, "1.7.1", "bad build");
        await DeployAsync(lab, $"registry.kfm.local/{Repository}@{good}");
        await DeployAsync(lab, $"registry.kfm.local/{Repository}@{bad}");
        System.Environment.SetEnvironmentVariable(TokenVariable, RegistryServer.Password);
        return (good, bad);
    }

    /// <summary>The plan shows the refusal; Apply refuses with the same id; the apiserver stored nothing, not even the lock.</summary>
    private static async Task<PreflightCheck> RefusedAsync(EngineLab lab, EnvironmentConfig environment, string errorId)
    {
        RollbackEngine engine = lab.RollbackEngine();
        RollbackRequest request = Request(environment);
        MechanismPlan plan = await engine.PlanAsync(request, RollbackReporter.Silent, CancellationToken.None);
        PreflightCheck failed = Assert.Single(plan.Preflight, c => c.Failed);
        Assert.Equal((TargetVerification.CheckName, errorId), (failed.Check, failed.ErrorId));
        int audited = lab.Host.Audit.Events.Count;
        string before = await ResourceVersionAsync(lab);

        var refused = await Assert.ThrowsAsync<KfmException>(() => engine.RunAsync(request, plan, RollbackReporter.Silent, CancellationToken.None));

        Assert.Equal(errorId, refused.ErrorId);
        Assert.Contains("Preflight check target-verify failed for lab", refused.Message);
        Assert.Contains("Nothing was changed", refused.Message);
        Assert.Contains("-Force -ForceReason", refused.Message);
        Assert.Empty(StoredWrites(lab, audited));
        Assert.Equal(before, await ResourceVersionAsync(lab));
        return failed;
    }

    [Fact]
    public async Task Unsigned_wrong_key_tampered_and_revoked_targets_are_refused_with_distinct_ids_and_a_signed_one_is_rolled_back_to()
    {
        await using var lab = await EngineLab.StartAsync();
        await using var registry = await RegistryServer.StartAsync(authenticated: true);
        (string good, string bad) = await DeployGoodThenBadAsync(lab, registry);
        using var pipeline = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var stranger = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        EnvironmentConfig environment = Environment(lab, registry.Url, pipeline.ExportSubjectPublicKeyInfoPem());

        // Unsigned: no sha256-<hex>.sig manifest at all.
        PreflightCheck unsigned = await RefusedAsync(lab, environment, TargetVerificationErrorIds.Unsigned);
        Assert.Contains($"no signature manifest {Repository}:{good.Replace(':', '-')}.sig", unsigned.Saw);
        Assert.Equal($"{registry.Url.Authority}/{Repository}@{good}", unsigned.Target);

        // Signed by another key.
        byte[] strangers = Payload(good, "wrong-key");
        await AttachAsync(registry, good, strangers, Sign(stranger, strangers));
        PreflightCheck wrongKey = await RefusedAsync(lab, environment, TargetVerificationErrorIds.SignatureInvalid);
        Assert.Contains("none of the 1 signature(s)", wrongKey.Saw);

        // The pipeline's signature over the payload of another image, copied next to the target.
        byte[] other = Payload(bad, "other-image");
        await AttachAsync(registry, good, other, Sign(pipeline, other));
        PreflightCheck copied = await RefusedAsync(lab, environment, TargetVerificationErrorIds.OtherDigest);
        Assert.Contains($"vouches for {ImageRefs.Short(bad)}", copied.Saw);

        // A signed payload changed in the registry's storage after it was pushed.
        byte[] signedPayload = Payload(good, "tampered-at-rest");
        string payloadDigest = await AttachAsync(registry, good, signedPayload, Sign(pipeline, signedPayload));
        byte[] edited = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(signedPayload).Replace("tampered-at-rest", "tampered-at-rrr"));
        registry.OverwriteBlobAtRest(payloadDigest, edited);
        PreflightCheck tampered = await RefusedAsync(lab, environment, TargetVerificationErrorIds.PayloadTampered);
        Assert.Contains("does not hash to the digest", tampered.Saw);

        // The same edit re-pushed under its new digest, with the signature of the original: the signature no longer verifies.
        byte[] original = Payload(good, "edited-and-repushed");
        byte[] repushed = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(original).Replace("edited-and-repushed", "edited-and-REPUSHED"));
        await AttachAsync(registry, good, repushed, Sign(pipeline, original));
        await RefusedAsync(lab, environment, TargetVerificationErrorIds.SignatureInvalid);

        // Properly signed by the pipeline: passes, unless the digest is revoked (the downgrade a denylist stops).
        byte[] valid = Payload(good, "valid");
        await AttachAsync(registry, good, valid, Sign(pipeline, valid));
        PreflightCheck revoked = await RefusedAsync(lab, Environment(lab, registry.Url, pipeline.ExportSubjectPublicKeyInfoPem(), good), TargetVerificationErrorIds.Revoked);
        Assert.Contains("denylist", revoked.Saw);

        RollbackEngine engine = lab.RollbackEngine();
        RollbackRequest request = Request(environment);
        MechanismPlan plan = await engine.PlanAsync(request, RollbackReporter.Silent, CancellationToken.None);
        PreflightCheck passed = Assert.Single(plan.Preflight, c => c.Check == TargetVerification.CheckName);
        Assert.Equal(PreflightVerdict.Passed, passed.Verdict);
        Assert.Contains("verifies with the configured key", passed.Saw);
        Assert.Contains($"\"GET /v2/{Repository}/manifests/{good.Replace(':', '-')}.sig HTTP/1.1\" 200", registry.Log);

        RollbackResult result = await engine.RunAsync(request, plan, RollbackReporter.Silent, CancellationToken.None);

        Assert.Equal(RollbackOutcome.Succeeded, result.Outcome);
        Assert.Equal(good, result.RollbackTargetRef);
        Assert.Empty(result.ForcedChecks);
    }

    [Fact]
    public async Task An_unsigned_target_forced_with_a_reason_is_rolled_back_to_and_the_timeline_and_receipt_record_the_override()
    {
        await using var lab = await EngineLab.StartAsync();
        await using var registry = await RegistryServer.StartAsync(authenticated: true);
        (string good, _) = await DeployGoodThenBadAsync(lab, registry);
        using var pipeline = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        EnvironmentConfig environment = Environment(lab, registry.Url, pipeline.ExportSubjectPublicKeyInfoPem());
        var timeline = new List<string>();
        var reporter = new RollbackReporter { Timeline = (role, text) => timeline.Add($"{role}: {text}") };
        RollbackEngine engine = lab.RollbackEngine();
        RollbackRequest request = Request(environment, forceReason: "signing service down; build 1.7.0 checked by hand");

        MechanismPlan plan = await engine.PlanAsync(request, reporter, CancellationToken.None);
        PreflightCheck forced = Assert.Single(plan.Preflight, c => c.Check == TargetVerification.CheckName);
        Assert.Equal((PreflightVerdict.Forced, TargetVerificationErrorIds.Unsigned), (forced.Verdict, forced.ErrorId));
        Assert.DoesNotContain(plan.Preflight, c => c.Failed);

        RollbackResult result = await engine.RunAsync(request, plan, reporter, CancellationToken.None);

        Assert.Equal(RollbackOutcome.Succeeded, result.Outcome);
        Assert.Equal(good, result.RollbackTargetRef);
        ForcedCheck recorded = Assert.Single(result.ForcedChecks);
        Assert.Equal((TargetVerification.CheckName, TargetVerificationErrorIds.Unsigned, "signing service down; build 1.7.0 checked by hand"), (recorded.Check, recorded.ErrorId, recorded.Reason));
        Assert.Contains(timeline, line => line.StartsWith("OPS: FORCED Cluster rollback of lab past preflight target-verify (PreflightTargetUnsigned:", StringComparison.Ordinal)
            && line.EndsWith("signing service down; build 1.7.0 checked by hand", StringComparison.Ordinal));

        ReceiptInput input = Samples.Input("INC-SIG");
        input.ForcedChecks = result.ForcedChecks;
        RollbackReceipt receipt = Samples.Factory().Create(input);
        Assert.Equal(TargetVerificationErrorIds.Unsigned, Assert.Single(receipt.KfmIntegrity.ForcedChecks!).ErrorId);
        Assert.Contains("\"forced_checks\"", receipt.ToJson());
        // The runbook's receipt fields are unchanged: the override lives in the extension object only.
        Assert.Null(Samples.Factory().Create(Samples.Input("INC-SIG")).KfmIntegrity.ForcedChecks);
    }

    [Fact]
    public void A_key_that_is_not_ECDSA_P256_PEM_is_refused_with_its_own_id()
    {
        using var dir = new TempDirectory();
        using var rsa = RSA.Create(2048);
        File.WriteAllText(dir.File("rsa.pub"), rsa.ExportSubjectPublicKeyInfoPem());
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        File.WriteAllText(dir.File("p384.pub"), p384.ExportSubjectPublicKeyInfoPem());

        Assert.Equal("CosignKeyInvalid", Assert.Throws<KfmException>(() => CosignSignatures.LoadPublicKey(dir.File("rsa.pub"))).ErrorId);
        Assert.Equal("CosignKeyInvalid", Assert.Throws<KfmException>(() => CosignSignatures.LoadPublicKey(dir.File("p384.pub"))).ErrorId);
        Assert.Equal("CosignKeyUnreadable", Assert.Throws<KfmException>(() => CosignSignatures.LoadPublicKey(dir.File("missing.pub"))).ErrorId);
    }
}
