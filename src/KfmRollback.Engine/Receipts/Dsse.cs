using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Receipts;

/// <summary>DSSE envelope (secure-systems-lab/dsse), as written to <c>&lt;hex&gt;.dsse.json</c>.</summary>
public sealed class DsseEnvelope
{
    [JsonPropertyName("payloadType")] public required string PayloadType { get; init; }
    /// <summary>Standard base64 of the payload bytes.</summary>
    [JsonPropertyName("payload")] public required string Payload { get; init; }
    [JsonPropertyName("signatures")] public required IReadOnlyList<DsseSignature> Signatures { get; init; }

    private static readonly JsonSerializerOptions Pretty = new() { WriteIndented = true };

    public string ToJson() => JsonSerializer.Serialize(this, Pretty);

    public static DsseEnvelope Parse(string json)
    {
        try
        {
            return JsonSerializer.Deserialize<DsseEnvelope>(json) ?? throw new JsonException();
        }
        catch (JsonException ex)
        {
            throw new KfmException("DsseEnvelopeInvalid", KfmErrorKind.InvalidData,
                "The DSSE envelope is not valid JSON with payloadType, payload and signatures. Re-sign the receipt.", null, ex);
        }
    }
}

public sealed class DsseSignature
{
    /// <summary>Hint only (sha256 of the public key's SubjectPublicKeyInfo); never used to decide trust.</summary>
    [JsonPropertyName("keyid")] public string? KeyId { get; init; }
    [JsonPropertyName("sig")] public required string Sig { get; init; }
}

public sealed record DsseVerification(bool IsValid, string Detail);

/// <summary>
/// Signs receipts as an in-toto Statement v1 inside a DSSE envelope with an ECDSA P-256 key.
/// Signatures are ECDSA-SHA256 over PAE, encoded as ASN.1 DER (what cosign and most DSSE tooling emit);
/// verification also accepts IEEE P1363 (r||s), which encodes the same (r, s) pair without ambiguity.
/// </summary>
public sealed class DsseSigner : IDisposable
{
    public const string PayloadType = "application/vnd.in-toto+json";
    public const string StatementType = "https://in-toto.io/Statement/v1";
    public const string PredicateType = "https://kfm.dev/attestations/rollback-receipt/v1";
    private const string P256Oid = "1.2.840.10045.3.1.7";

    private readonly ECDsa _key;

    private DsseSigner(ECDsa key)
    {
        _key = key;
        KeyId = KeyIdOf(key);
    }

    public string KeyId { get; }

    /// <summary>Loads a P-256 private key from PEM ("PRIVATE KEY" PKCS#8 or "EC PRIVATE KEY" SEC1).</summary>
    public static DsseSigner FromPem(string privateKeyPem)
    {
        var key = LoadP256(privateKeyPem, "DsseSigningKeyInvalid", "signing key");
        try
        {
            // Fails for a public-only key, which cannot sign.
            key.ExportParameters(includePrivateParameters: true);
        }
        catch (CryptographicException ex)
        {
            key.Dispose();
            throw new KfmException("DsseSigningKeyInvalid", KfmErrorKind.InvalidArgument,
                "The signing key PEM holds no private key. Pass the ECDSA P-256 private key (PKCS#8 or SEC1 PEM).", null, ex);
        }
        return new DsseSigner(key);
    }

    /// <summary>The in-toto Statement for a receipt: its subjects are the receipt's image/commit subjects.</summary>
    public static JsonObject Statement(RollbackReceipt receipt)
    {
        var subjects = new JsonArray();
        foreach (var s in receipt.KfmIntegrity.Subjects)
        {
            var digest = new JsonObject();
            foreach (var (alg, value) in s.Digest) digest[alg] = value;
            subjects.Add(new JsonObject { ["name"] = s.Name, ["digest"] = digest });
        }
        return new JsonObject
        {
            ["_type"] = StatementType,
            ["subject"] = subjects,
            ["predicateType"] = PredicateType,
            ["predicate"] = ReceiptJson.ToJsonObject(receipt),
        };
    }

    public DsseEnvelope Sign(RollbackReceipt receipt)
    {
        var payload = Jcs.Canonicalize(Statement(receipt));
        var signature = _key.SignData(Pae(PayloadType, payload), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        return new DsseEnvelope
        {
            PayloadType = PayloadType,
            Payload = Convert.ToBase64String(payload),
            Signatures = new[] { new DsseSignature { KeyId = KeyId, Sig = Convert.ToBase64String(signature) } },
        };
    }

    /// <summary>DSSE pre-authentication encoding: "DSSEv1" SP len(type) SP type SP len(body) SP body.</summary>
    public static byte[] Pae(string payloadType, byte[] body)
    {
        var type = Encoding.UTF8.GetBytes(payloadType);
        var header = Encoding.UTF8.GetBytes($"DSSEv1 {type.Length} {payloadType} {body.Length} ");
        return header.Concat(body).ToArray();
    }

    /// <summary>
    /// True when some signature verifies with <paramref name="publicKeyPem"/> and the payload is a KFM
    /// rollback-receipt statement whose predicate hashes to <paramref name="expectedReceiptDigest"/>
    /// (when given). keyid is ignored: only the key decides.
    /// </summary>
    public static DsseVerification Verify(DsseEnvelope envelope, string publicKeyPem, string? expectedReceiptDigest = null)
    {
        using var key = LoadP256(publicKeyPem, "DssePublicKeyInvalid", "public key");
        return Verify(envelope, key, expectedReceiptDigest);
    }

    internal static DsseVerification Verify(DsseEnvelope envelope, ECDsa key, string? expectedReceiptDigest)
    {
        if (envelope.PayloadType != PayloadType)
            return new(false, $"payloadType is not {PayloadType}.");
        var payload = DecodeBase64(envelope.Payload);
        if (payload is null) return new(false, "payload is not base64.");
        var pae = Pae(envelope.PayloadType, payload);
        var signed = (envelope.Signatures ?? Array.Empty<DsseSignature>()).Any(s => DecodeBase64(s.Sig) is { } sig && VerifyEither(key, pae, sig));
        if (!signed) return new(false, "no signature verifies with the given public key.");

        JsonObject? statement;
        try { statement = JsonNode.Parse(payload) as JsonObject; }
        catch (JsonException) { statement = null; }
        if (statement is null || StringOf(statement["_type"]) != StatementType || StringOf(statement["predicateType"]) != PredicateType)
            return new(false, $"payload is not an in-toto {StatementType} with predicateType {PredicateType}.");
        if (expectedReceiptDigest is not null && ReceiptDigest.Of(statement["predicate"]) != expectedReceiptDigest)
            return new(false, "the signed predicate is a different receipt than the one stored.");
        return new(true, "signature valid.");
    }

    private static string? StringOf(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    private static bool VerifyEither(ECDsa key, byte[] data, byte[] signature) =>
        key.VerifyData(data, signature, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence)
        || (signature.Length == 64 && key.VerifyData(data, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation));

    /// <summary>Standard or URL-safe base64, padded or not, as DSSE verifiers must accept.</summary>
    internal static byte[]? DecodeBase64(string? text)
    {
        if (text is null) return null;
        var s = text.Trim().Replace('-', '+').Replace('_', '/');
        s = s.PadRight(s.Length + (4 - s.Length % 4) % 4, '=');
        try { return Convert.FromBase64String(s); }
        catch (FormatException) { return null; }
    }

    internal static ECDsa LoadP256(string pem, string errorId, string what)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            var curve = key.ExportParameters(false).Curve;
            if (curve.Oid?.Value != P256Oid && curve.Oid?.FriendlyName is not ("nistP256" or "ECDSA_P256"))
                throw new CryptographicException("not P-256");
            return key;
        }
        catch (Exception ex) when (ex is ArgumentException or CryptographicException)
        {
            key.Dispose();
            // Never echo the PEM: it may be a private key.
            throw new KfmException(errorId, KfmErrorKind.InvalidArgument,
                $"The {what} is not an ECDSA P-256 key in PEM form (PKCS#8 'PRIVATE KEY', SEC1 'EC PRIVATE KEY' or 'PUBLIC KEY'). " +
                "Create one with `openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt`.", null, ex);
        }
    }

    private static string KeyIdOf(ECDsa key) => ReceiptDigest.Sha256Hex(key.ExportSubjectPublicKeyInfo());

    public void Dispose() => _key.Dispose();
}
