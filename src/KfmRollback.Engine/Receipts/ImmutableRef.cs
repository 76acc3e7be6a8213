using System.Text.RegularExpressions;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Receipts;

/// <summary>
/// A deployed-revision reference that cannot move: an image digest or a full git commit id. Tags,
/// "latest" and short SHAs can be re-pointed after the fact, which would make the receipt lie.
/// </summary>
public static class ImmutableRef
{
    private static readonly Regex Sha256Digest = new(@"^sha256:[a-fA-F0-9]{64}$", RegexOptions.CultureInvariant);
    private static readonly Regex ImageAtDigest = new(@"^[^\s@]+@(?<digest>sha256:[a-fA-F0-9]{64})$", RegexOptions.CultureInvariant);
    private static readonly Regex GitSha = new(@"^[a-fA-F0-9]{40}$", RegexOptions.CultureInvariant);
    private static readonly Regex ShortHex = new(@"^[a-fA-F0-9]{4,39}$", RegexOptions.CultureInvariant);

    public static bool IsImageDigest(string value) => value.StartsWith(ReceiptDigest.Prefix, StringComparison.Ordinal);

    /// <summary>
    /// Canonical form: <c>sha256:&lt;lowercase hex&gt;</c> or lowercase 40-hex. <c>image@sha256:…</c> is
    /// accepted and reduced to its digest. Anything else throws <c>ReceiptRefNotImmutable</c>.
    /// </summary>
    public static string Normalize(string field, string? value)
    {
        var v = value?.Trim();
        if (string.IsNullOrEmpty(v))
        {
            throw new KfmException("ReceiptFieldMissing", KfmErrorKind.InvalidArgument,
                $"{field} is required. {HowToGetDigest}", field);
        }
        if (Sha256Digest.IsMatch(v) || GitSha.IsMatch(v)) return v.ToLowerInvariant();
        var at = ImageAtDigest.Match(v);
        if (at.Success) return at.Groups["digest"].Value.ToLowerInvariant();

        // Say what kind of reference it is, without echoing it: a ref string can embed registry credentials.
        throw new KfmException("ReceiptRefNotImmutable", KfmErrorKind.InvalidArgument,
            $"{field} {Describe(v)}; a rollback receipt needs an immutable reference: an image digest " +
            $"'sha256:' followed by 64 lowercase hex characters, or a full 40-character git commit SHA. {HowToGetDigest}", field);
    }

    private const string HowToGetDigest =
        "Get the digest of what runs with `kubectl get pods -n <ns> -l <selector> -o jsonpath='{.items[*].status.containerStatuses[*].imageID}'` " +
        "(the part after '@'), or `docker buildx imagetools inspect <image:tag>` / `crane digest <image:tag>`; " +
        "for a git ref use `git rev-parse <ref>`.";

    private static string Describe(string v)
    {
        if (v.Equals("latest", StringComparison.OrdinalIgnoreCase) || v.EndsWith(":latest", StringComparison.OrdinalIgnoreCase))
            return "is the mutable tag 'latest'";
        if (ShortHex.IsMatch(v)) return $"looks like an abbreviated git SHA ({v.Length} hex characters, 40 needed)";
        if (v.StartsWith("sha256:", StringComparison.OrdinalIgnoreCase)) return "is not a complete sha256 digest (64 hex characters needed)";
        var lastSlash = v.LastIndexOf('/');
        if (v.IndexOf(':', lastSlash + 1) >= 0 || v.StartsWith('v')) return "looks like an image or release tag, which can be moved";
        return "is not a digest or a full commit SHA (a branch or tag name can be moved)";
    }

    /// <summary>The in-toto subject describing a ref: sha256 for images, gitCommit for commits.</summary>
    internal static ReceiptSubject ToSubject(string name, string normalizedRef) => new()
    {
        Name = name,
        Digest = IsImageDigest(normalizedRef)
            ? new Dictionary<string, string> { ["sha256"] = ReceiptDigest.Hex(normalizedRef) }
            : new Dictionary<string, string> { ["gitCommit"] = normalizedRef },
    };
}
