namespace KfmRollback.Engine.Adapters.Registry;

/// <summary>A manifest as the registry describes it: its digest, media type and size.</summary>
public sealed record ManifestDescriptor(string Repository, string Digest, string? MediaType, long? Size);

/// <summary>A manifest's bytes (an image index or an image manifest), checked against its digest.</summary>
public sealed record RegistryManifest(ManifestDescriptor Descriptor, byte[] Content);

/// <summary>Credentials for a registry: a user name and its password or token (never logged, never shown).</summary>
public sealed record RegistryCredential(string Username, string Secret)
{
    public override string ToString() => $"{Username} (secret withheld)";
}

/// <summary>
/// An OCI distribution API (the "pull" category of the OCI distribution spec, which Docker's
/// registry v2 API shares): does a manifest exist, fetch it, fetch a blob. Knows registries only,
/// nothing of rollbacks. Signature checks (cosign: a manifest tagged <c>sha256-&lt;hex&gt;.sig</c> and its
/// layer blobs) are built on these three calls.
/// </summary>
public interface IRegistryClient
{
    /// <summary>The registry's base URL (requests go to <c>/v2/...</c> under it).</summary>
    Uri BaseUrl { get; }

    /// <summary>
    /// <c>HEAD /v2/&lt;name&gt;/manifests/&lt;reference&gt;</c>: the manifest's descriptor, or null when the
    /// registry answers 404 (the manifest is unknown). Errors (unreachable, unauthorized, 5xx) throw.
    /// </summary>
    Task<ManifestDescriptor?> HeadManifestAsync(string repository, string reference, CancellationToken cancellationToken);

    /// <summary><c>GET /v2/&lt;name&gt;/manifests/&lt;reference&gt;</c>; a digest reference is verified against the bytes.</summary>
    Task<RegistryManifest> GetManifestAsync(string repository, string reference, CancellationToken cancellationToken);

    /// <summary><c>GET /v2/&lt;name&gt;/blobs/&lt;digest&gt;</c>, verified against the digest.</summary>
    Task<byte[]> GetBlobAsync(string repository, string digest, CancellationToken cancellationToken);
}
