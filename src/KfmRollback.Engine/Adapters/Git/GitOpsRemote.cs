using System.Text.RegularExpressions;
using KfmRollback.Engine.Core;
using LibGit2Sharp;

namespace KfmRollback.Engine.Adapters.Git;

/// <summary>
/// Which remotes the engine can reach. The libgit2 shipped in LibGit2Sharp.NativeBinaries has
/// HTTPS but not SSH on every platform we ship to, and LibGit2Sharp has no SSH credential type,
/// so ssh:// and scp-like addresses are refused up front with what to use instead.
/// </summary>
public static partial class GitOpsRemote
{
    [GeneratedRegex(@"^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:", RegexOptions.CultureInvariant)]
    private static partial Regex ScpLike();

    public static bool LibGit2HasSsh => GlobalSettings.Version.Features.HasFlag(BuiltInFeatures.Ssh);

    /// <summary>Accepts https, http to a loopback host (test servers), and file; refuses everything else.</summary>
    public static void EnsureSupported(string url) =>
        EnsureSupported(url, GitOpsErrorIds.UnsupportedTransport, "the GitOps repository", "Use an https:// URL (gitops.url) or a local clone (gitops.path).");

    /// <summary>As <see cref="EnsureSupported(string)"/>, for another repository: <paramref name="errorId"/>, what it is, and the fix.</summary>
    public static void EnsureSupported(string url, string errorId, string what, string remedy)
    {
        KfmException Unsupported(string why) => new(errorId, KfmErrorKind.InvalidArgument, $"Cannot reach {what}: {why}. {remedy}", Safety.Redactor.Default.Url(url));

        if (ScpLike().IsMatch(url) || url.StartsWith("ssh://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("git+ssh://", StringComparison.OrdinalIgnoreCase))
            throw Unsupported("SSH remotes are not supported by the bundled libgit2 transport");
        if (!url.Contains("://", StringComparison.Ordinal) && Directory.Exists(url))
            return; // a clone's origin may be a plain (even relative) path: that is the file transport
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri))
            throw Unsupported("the address is not an absolute URL");
        if (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeFile)
            return;
        if (uri.Scheme == Uri.UriSchemeHttp && Transport.IsLoopback(uri))
            return;
        throw Unsupported(uri.Scheme == Uri.UriSchemeHttp
            ? "plain http is only allowed to a loopback host, because credentials would cross the network unencrypted"
            : $"the {uri.Scheme} transport is not supported");
    }
}
