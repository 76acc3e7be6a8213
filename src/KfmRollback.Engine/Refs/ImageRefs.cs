using System.Text.RegularExpressions;

namespace KfmRollback.Engine;

/// <summary>Image references: digests versus mutable tags, and the normalisation of pods' imageID.</summary>
public static partial class ImageRefs
{
    [GeneratedRegex("^sha256:[a-f0-9]{64}$", RegexOptions.CultureInvariant)]
    private static partial Regex DigestPattern();

    [GeneratedRegex("^[a-f0-9]{40}$", RegexOptions.CultureInvariant)]
    private static partial Regex GitShaPattern();

    public static bool IsDigest(string? value) => value is not null && DigestPattern().IsMatch(value);

    public static bool IsGitSha(string? value) => value is not null && GitShaPattern().IsMatch(value);

    /// <summary>True for the immutable refs a rollback may target: an image digest or a full git SHA.</summary>
    public static bool IsImmutable(string? value) => IsDigest(value) || IsGitSha(value);

    /// <summary>The <c>sha256:…</c> part of <c>repo@sha256:…</c>, or null for a tag reference.</summary>
    public static string? DigestOf(string? image)
    {
        if (string.IsNullOrEmpty(image))
        {
            return null;
        }
        int at = image.LastIndexOf('@');
        string candidate = at >= 0 ? image[(at + 1)..] : image;
        return IsDigest(candidate) ? candidate : null;
    }

    /// <summary>
    /// A pod's imageID in whatever form the runtime wrote it (<c>docker-pullable://repo@sha256:…</c>,
    /// <c>repo@sha256:…</c>, bare <c>sha256:…</c>) reduced to its digest.
    /// </summary>
    public static string? NormaliseImageId(string? imageId)
    {
        if (string.IsNullOrEmpty(imageId))
        {
            return null;
        }
        int scheme = imageId.IndexOf("://", StringComparison.Ordinal);
        string withoutScheme = scheme >= 0 ? imageId[(scheme + 3)..] : imageId;
        return DigestOf(withoutScheme);
    }

    /// <summary>The repository part of an image reference (<c>registry/repo</c>), without tag or digest.</summary>
    public static string Repository(string image)
    {
        int at = image.IndexOf('@');
        string withoutDigest = at >= 0 ? image[..at] : image;
        int slash = withoutDigest.LastIndexOf('/');
        int colon = withoutDigest.LastIndexOf(':');
        return colon > slash ? withoutDigest[..colon] : withoutDigest;
    }

    /// <summary>
    /// The repository path inside its registry (the OCI distribution spec's &lt;name&gt;): the image's
    /// repository without its registry host, as docker resolves it (a first component with '.' or ':',
    /// or "localhost", is a host; a single Docker Hub component is under library/).
    /// </summary>
    public static string RepositoryPath(string image)
    {
        string repository = Repository(image);
        int slash = repository.IndexOf('/');
        if (slash < 0)
        {
            return "library/" + repository;
        }
        string first = repository[..slash];
        return first.Contains('.') || first.Contains(':') || first == "localhost" ? repository[(slash + 1)..] : repository;
    }

    /// <summary>A digest shortened for people (<c>sha256:</c> and 12 hex), or "unknown".</summary>
    public static string Short(string? digest) => digest is null ? "unknown" : digest.Length > 19 ? digest[..19] : digest;
}
