using KfmRollback.Engine.Adapters.Http;
using System.Text.RegularExpressions;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine;

/// <summary>Image references: digests versus mutable tags, and the normalisation of pods' imageID.</summary>
public static partial class ImageRefs
{
    [GeneratedRegex("^sha256:[a-f0-9]{64}$", RegexOptions.CultureInvariant)]
    private static partial Regex DigestPattern();

    [GeneratedRegex("^[a-f0-9]{40}$", RegexOptions.CultureInvariant)]
    private static partial Regex GitShaPattern();

    [GeneratedRegex("^(sha256:)?[a-f0-9]{1,64}$", RegexOptions.CultureInvariant)]
    private static partial Regex DigestPrefixPattern();

    /// <summary>The fewest hex characters a digest prefix needs to name a digest (what the short form shows: <c>sha256:</c> and 12 hex).</summary>
    public const int MinPrefixHex = 12;

    /// <summary>Error ids of a digest prefix that names no digest, several, or is too short to name one.</summary>
    public const string PrefixUnknown = "DigestPrefixUnknown", PrefixAmbiguous = "DigestPrefixAmbiguous", PrefixTooShort = "DigestPrefixTooShort";

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

    /// <summary>
    /// True for a full digest or the start of one (<c>sha256:</c> optional, hex only), as people copy
    /// them from a table; whether it is long enough and names one digest is <see cref="ResolvePrefix"/>'s to say.
    /// </summary>
    public static bool IsDigestOrPrefix(string? value) => value is not null && DigestPrefixPattern().IsMatch(value);

    /// <summary>
    /// The one digest of <paramref name="candidates"/> that <paramref name="given"/> names: a full digest
    /// is returned as it is (whether it is in the history is the caller's rule); a prefix of at least
    /// <see cref="MinPrefixHex"/> hex characters must match exactly one candidate. Unknown, ambiguous and
    /// too-short prefixes are refused with their own error ids, naming the candidates.
    /// </summary>
    /// <param name="history">Where the candidates came from, for the message ("the history of deployment kfm/kfm-api").</param>
    /// <param name="parameter">The parameter that took the prefix, for the message.</param>
    public static string ResolvePrefix(string given, IEnumerable<string?> candidates, string history, string parameter = "-ToRef")
    {
        if (IsDigest(given))
        {
            return given;
        }
        string hex = given.StartsWith("sha256:", StringComparison.Ordinal) ? given[7..] : given;
        var known = candidates.Where(IsDigest).Select(c => c!).Distinct(StringComparer.Ordinal).ToList();
        string Listed(IEnumerable<string> digests) => string.Join(", ", digests.Take(10)) + (digests.Skip(10).Any() ? ", …" : "");
        if (!DigestPrefixPattern().IsMatch(given) || hex.Length < MinPrefixHex)
        {
            throw new KfmException(PrefixTooShort, KfmErrorKind.InvalidArgument,
                $"{parameter} '{given}' is too short to name one image digest: give the full digest or at least {MinPrefixHex} hex characters after 'sha256:' (the short form tables show).", given);
        }
        var matches = known.Where(d => d.AsSpan(7).StartsWith(hex, StringComparison.Ordinal)).ToList();
        if (matches.Count == 0)
        {
            throw new KfmException(PrefixUnknown, KfmErrorKind.ObjectNotFound,
                $"{parameter} '{given}' starts no digest in {history}" + (known.Count == 0 ? ", which names none." : $", which has {Listed(known)}.") +
                $" Pass one of those, or the full digest (sha256:<64 hex>).", given);
        }
        if (matches.Count > 1)
        {
            throw new KfmException(PrefixAmbiguous, KfmErrorKind.Ambiguous,
                $"{parameter} '{given}' starts {matches.Count} digests in {history}: {Listed(matches)}. Pass more of the digest, or the full digest.", given);
        }
        return matches[0];
    }

    /// <summary>A digest shortened for people (<c>sha256:</c> and 12 hex), or "unknown".</summary>
    public static string Short(string? digest) => digest is null ? "unknown" : digest.Length > 19 ? digest[..19] : digest;
}
