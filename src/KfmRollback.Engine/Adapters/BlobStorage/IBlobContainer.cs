using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Adapters.BlobStorage;

/// <summary>A blob as a listing shows it: its name, the MD5 the service keeps of its content (when it has one) and its size.</summary>
public sealed record BlobListing(string Name, byte[]? ContentMd5, long Size);

/// <summary>Why a blob call failed, as far as the caller needs it to say what to do.</summary>
public enum BlobFailure
{
    /// <summary>The credential was refused or lacks the permission (401/403).</summary>
    Denied,
    /// <summary>The container does not exist.</summary>
    ContainerNotFound,
    /// <summary>The service could not be reached, or answered with an error.</summary>
    Unavailable,
}

/// <summary>
/// A failed blob call. <see cref="RemoteCallException{TFailure}.Detail"/> carries the service's status and
/// error code only: the SDK's own message repeats request headers and URLs, which may hold a SAS signature.
/// </summary>
public sealed class BlobStorageException : RemoteCallException<BlobFailure>
{
    public BlobStorageException(BlobFailure failure, string operation, string detail, Exception? inner)
        : base("blob", failure, operation, detail, inner)
    {
    }
}

/// <summary>
/// One blob container, written only with create-if-absent: what a caller writes is never overwritten,
/// by it or by anyone racing it. Knows blobs only, nothing of what they hold.
/// </summary>
public interface IBlobContainer
{
    /// <summary>Where the container is, for messages (no credential).</summary>
    string Description { get; }

    /// <summary>
    /// Creates blob <paramref name="name"/> with <paramref name="content"/> only if no blob has that name
    /// (a Put Blob with <c>If-None-Match: *</c>): true when created, false when the name was taken.
    /// </summary>
    bool TryCreate(string name, byte[] content, CancellationToken cancellationToken);

    /// <summary>The blob's content, or null when there is no such blob.</summary>
    byte[]? Read(string name, CancellationToken cancellationToken);

    /// <summary>Every blob whose name starts with <paramref name="prefix"/>, in name order.</summary>
    IReadOnlyList<BlobListing> List(string prefix, CancellationToken cancellationToken);
}
