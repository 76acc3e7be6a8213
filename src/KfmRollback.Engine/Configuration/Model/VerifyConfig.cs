using KfmRollback.Engine.Configuration.Binding;

namespace KfmRollback.Engine.Configuration;

/// <summary>
/// What a rollback target must prove before the module rolls back to it (issue 19 item 3): a cosign
/// signature by the release pipeline's key on the target digest, and that the digest is not revoked.
/// Checked in the preflight (Get-KfmRollbackPlan, -WhatIf, and again under the lock before Apply);
/// a target that fails is refused before any change unless -Force -ForceReason, which the receipt
/// and the timeline record. Replaying an old, validly signed release is a downgrade attack: the
/// denylist is how a release that must never run again is revoked while its signature stays valid.
/// </summary>
public sealed class VerifyConfig : IConfigSection
{
    /// <summary>
    /// The cosign public key (ECDSA P-256, PEM "PUBLIC KEY" as <c>cosign generate-key-pair</c> writes
    /// cosign.pub) whose signature the target digest must carry. Absent: signatures are not checked.
    /// Needs the environment's registry section (the signature is read from the registry).
    /// </summary>
    [LocalPath]
    public string? PublicKeyFile { get; init; }

    /// <summary>A file of revoked digests, one <c>sha256:…</c> a line (<c>#</c> starts a comment).</summary>
    [LocalPath]
    public string? DenylistFile { get; init; }

    /// <summary>Revoked digests written inline (<c>sha256:…</c>), with or in place of <see cref="DenylistFile"/>.</summary>
    public IReadOnlyList<string> Denylist { get; init; } = Array.Empty<string>();

    /// <summary>True when the section asks for a signature check.</summary>
    public bool ChecksSignatures => PublicKeyFile is not null;

    void IConfigSection.Validate(ValidationScope scope)
    {
        if (PublicKeyFile is null && DenylistFile is null && Denylist.Count == 0)
            throw scope.Missing("public_key_file", "a verify section checks the target's cosign signature (public_key_file), revoked digests (denylist, denylist_file), or both; name at least one.");
        if (Denylist.FirstOrDefault(d => !ImageRefs.IsDigest(d)) is { } bad)
            throw scope.Invalid("denylist", $"each entry must be an image digest (sha256: and 64 lowercase hex characters); '{bad}' is not one.");
    }
}
