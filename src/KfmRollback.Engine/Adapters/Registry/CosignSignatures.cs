using System.Security.Cryptography;
using System.Text.Json;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Adapters.Registry;

/// <summary>What a keyed cosign check of one digest found.</summary>
public enum CosignVerdict
{
    /// <summary>A simple-signing payload for this digest carries a signature that verifies with the key.</summary>
    Verified,
    /// <summary>No signature manifest (<c>sha256-&lt;hex&gt;.sig</c>), or one with no simple-signing layer.</summary>
    Unsigned,
    /// <summary>Signature layers exist, and none verifies with the key: another key signed it, or the payload was edited and re-pushed after signing.</summary>
    SignatureInvalid,
    /// <summary>A payload the registry served does not match the digest its signature manifest names: changed at rest or in transit.</summary>
    PayloadTampered,
    /// <summary>A signature verifies with the key, but its payload vouches for another digest (a signature copied from another image).</summary>
    OtherDigest,
}

/// <summary>The outcome of <see cref="CosignSignatures.VerifyAsync"/>: the verdict and what was seen (digests and counts only).</summary>
public sealed record CosignCheck(CosignVerdict Verdict, string SignatureTag, string Saw);

/// <summary>
/// Keyed cosign signature verification over the OCI distribution API, as sigstore/cosign's
/// specification has it (specs/SIGNATURE_SPEC.md; docs.sigstore.dev "Signature Specification"):
/// the signatures of <c>repo@sha256:&lt;hex&gt;</c> are the layers of the image manifest tagged
/// <c>sha256-&lt;hex&gt;.sig</c> in the same repository; each layer of media type
/// <c>application/vnd.dev.cosign.simplesigning.v1+json</c> is a "simple signing" payload whose
/// <c>critical.image.docker-manifest-digest</c> names the signed digest, and its annotation
/// <c>dev.cosignproject.cosign/signature</c> holds the base64 signature over the payload's bytes
/// (ECDSA P-256 with SHA-256, ASN.1 DER, for a key from <c>cosign generate-key-pair</c>).
/// Knows registries and signatures only, nothing of rollbacks.
/// </summary>
public sealed class CosignSignatures(IRegistryClient registry)
{
    public const string SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json";
    public const string SignatureAnnotation = "dev.cosignproject.cosign/signature";

    /// <summary>The tag cosign stores the signatures of <paramref name="digest"/> under: <c>sha256-&lt;hex&gt;.sig</c>.</summary>
    public static string SignatureTag(string digest) => digest.Replace(':', '-') + ".sig";

    /// <summary>Reads an ECDSA P-256 public key in PEM (cosign.pub); refuses anything else with a clear error.</summary>
    public static ECDsa LoadPublicKey(string path)
    {
        string pem;
        try
        {
            pem = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new KfmException("CosignKeyUnreadable", KfmErrorKind.ReadError,
                $"Cannot read the cosign public key {Path.GetFileName(path)} ({ex.GetType().Name}). Check verify.public_key_file and that the module may read it.", path, ex);
        }
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            if (key.ExportParameters(false).Curve.Oid.Value != ECCurve.NamedCurves.nistP256.Oid.Value)
            {
                throw new CryptographicException("not P-256");
            }
            return key;
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            key.Dispose();
            throw new KfmException("CosignKeyInvalid", KfmErrorKind.InvalidData,
                $"{Path.GetFileName(path)} is not an ECDSA P-256 public key in PEM (-----BEGIN PUBLIC KEY-----, as cosign generate-key-pair writes cosign.pub). Point verify.public_key_file at the release pipeline's cosign.pub.", path);
        }
    }

    /// <summary>
    /// Checks the signatures of <paramref name="digest"/> in <paramref name="repository"/> against
    /// <paramref name="key"/>. Registry failures (unreachable, unauthorized, 5xx) throw; a missing
    /// signature manifest is <see cref="CosignVerdict.Unsigned"/>.
    /// </summary>
    public async Task<CosignCheck> VerifyAsync(string repository, string digest, ECDsa key, CancellationToken cancellationToken)
    {
        if (!ImageRefs.IsDigest(digest))
        {
            throw new KfmException("RegistryReferenceInvalid", KfmErrorKind.InvalidArgument, $"A signature is looked up by digest (sha256: and 64 hex characters); '{digest}' is not one.", digest);
        }
        string tag = SignatureTag(digest);
        if (await registry.HeadManifestAsync(repository, tag, cancellationToken).ConfigureAwait(false) is null)
        {
            return new CosignCheck(CosignVerdict.Unsigned, tag, $"no signature manifest {repository}:{tag}");
        }
        RegistryManifest manifest = await registry.GetManifestAsync(repository, tag, cancellationToken).ConfigureAwait(false);
        List<SignatureLayer> layers = Layers(manifest.Content);
        if (layers.Count == 0)
        {
            return new CosignCheck(CosignVerdict.Unsigned, tag, $"signature manifest {repository}:{tag} holds no {SimpleSigningMediaType} layer");
        }
        CosignCheck? other = null;
        int invalid = 0;
        foreach (SignatureLayer layer in layers)
        {
            byte[] payload;
            try
            {
                payload = await registry.GetBlobAsync(repository, layer.Digest, cancellationToken).ConfigureAwait(false);
            }
            catch (KfmException ex) when (ex.ErrorId == "RegistryDigestMismatch")
            {
                return new CosignCheck(CosignVerdict.PayloadTampered, tag,
                    $"the signed payload {ImageRefs.Short(layer.Digest)} the registry served does not hash to the digest the signature manifest {tag} names: it was changed after it was pushed");
            }
            if (!Verifies(key, payload, layer.Signature))
            {
                invalid++;
                continue;
            }
            string? signed = SignedDigest(payload);
            if (signed == digest)
            {
                return new CosignCheck(CosignVerdict.Verified, tag, $"signature {layers.IndexOf(layer) + 1} of {layers.Count} in {tag} verifies with the configured key and vouches for {ImageRefs.Short(digest)}");
            }
            other ??= new CosignCheck(CosignVerdict.OtherDigest, tag,
                $"a signature in {tag} verifies with the configured key but its payload vouches for {(signed is null ? "no image digest" : ImageRefs.Short(signed))}, not {ImageRefs.Short(digest)}: a signature copied from another image");
        }
        return other ?? new CosignCheck(CosignVerdict.SignatureInvalid, tag,
            $"none of the {invalid} signature(s) in {tag} verifies with the configured key: it was signed with another key, or its payload was changed after signing");
    }

    /// <summary>ECDSA over SHA-256 of the payload bytes; cosign writes the signature ASN.1 DER, base64-encoded.</summary>
    private static bool Verifies(ECDsa key, byte[] payload, string? signature)
    {
        if (signature is null)
        {
            return false;
        }
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(signature);
        }
        catch (FormatException)
        {
            return false;
        }
        return key.VerifyData(payload, bytes, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
    }

    /// <summary><c>critical.image.docker-manifest-digest</c> of a simple-signing payload, or null when it has none.</summary>
    private static string? SignedDigest(byte[] payload)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(payload);
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("critical", out JsonElement critical) && critical.ValueKind == JsonValueKind.Object
                && critical.TryGetProperty("image", out JsonElement image) && image.ValueKind == JsonValueKind.Object
                && image.TryGetProperty("docker-manifest-digest", out JsonElement digest) && digest.ValueKind == JsonValueKind.String
                ? digest.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private sealed record SignatureLayer(string Digest, string? Signature);

    /// <summary>The simple-signing layers of a signature manifest, with their signature annotation.</summary>
    private static List<SignatureLayer> Layers(byte[] manifest)
    {
        var result = new List<SignatureLayer>();
        try
        {
            using JsonDocument document = JsonDocument.Parse(manifest);
            if (!document.RootElement.TryGetProperty("layers", out JsonElement layers) || layers.ValueKind != JsonValueKind.Array)
            {
                return result;
            }
            foreach (JsonElement layer in layers.EnumerateArray())
            {
                if (layer.ValueKind == JsonValueKind.Object
                    && layer.TryGetProperty("mediaType", out JsonElement type) && type.ValueKind == JsonValueKind.String && type.GetString() == SimpleSigningMediaType
                    && layer.TryGetProperty("digest", out JsonElement digest) && digest.ValueKind == JsonValueKind.String && ImageRefs.IsDigest(digest.GetString()))
                {
                    string? signature = layer.TryGetProperty("annotations", out JsonElement annotations) && annotations.ValueKind == JsonValueKind.Object
                        && annotations.TryGetProperty(SignatureAnnotation, out JsonElement value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
                    result.Add(new SignatureLayer(digest.GetString()!, signature));
                }
            }
        }
        catch (JsonException)
        {
            throw new KfmException("CosignManifestInvalid", KfmErrorKind.InvalidData, "The registry served a signature manifest that is not JSON. Check the registry, or re-sign the target.");
        }
        return result;
    }
}
