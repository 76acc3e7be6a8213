using System.Security.Cryptography;
using System.Text;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using LibGit2Sharp;

namespace KfmRollback.Engine.Adapters.Git;

/// <summary>
/// The GitOps repository: a local clone (gitops.path) or a cached clone of gitops.url under
/// StateDirectory/gitops/&lt;hash of url&gt;. Every network call goes through here so credentials are
/// applied in one place and never appear in an error.
/// </summary>
public sealed class GitOpsRepository : IDisposable
{
    public const string RemoteName = "origin";
    private readonly GitCredential? _credential;
    private readonly CancellationToken _cancellation;
    private readonly Action<string, int>? _progress;

    private GitOpsRepository(Repository repository, string branch, GitCredential? credential, CancellationToken cancellation, Action<string, int>? progress)
    {
        Repo = repository;
        Branch = branch;
        _credential = credential;
        _cancellation = cancellation;
        _progress = progress;
    }

    public Repository Repo { get; }
    public string Branch { get; }
    public bool HasRemote => Repo.Network.Remotes[RemoteName] is not null;

    /// <summary>Opens (or clones, for a URL) and fetches, so reads see the deploy branch's tip.</summary>
    /// <param name="cancellationToken">Ctrl+C: libgit2's transfer callbacks return false, so a clone, fetch or push stops between packets.</param>
    /// <param name="progress">Transfer progress for people ("Receiving objects", percent).</param>
    public static GitOpsRepository Open(GitOpsConfig config, GitCredential? credential = null, string? cacheRoot = null,
        CancellationToken cancellationToken = default, Action<string, int>? progress = null)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var resolved = GitCredential.Resolve(config, credential);
        GitOpsRepository repository;
        if (config.Path is { } path)
        {
            if (!Repository.IsValid(path))
                throw new KfmException(GitOpsErrorIds.RepositoryUnavailable, KfmErrorKind.ObjectNotFound,
                    $"gitops.path {path} is not a git repository. Clone the GitOps repository there or set gitops.url.", path);
            repository = new GitOpsRepository(new Repository(path), config.Branch, resolved, cancellationToken, progress);
            if (repository.Repo.Network.Remotes[RemoteName] is { } remote)
                GitOpsRemote.EnsureSupported(remote.Url);
        }
        else
        {
            string url = config.Url!.OriginalString;
            GitOpsRemote.EnsureSupported(url);
            string dir = CacheDirectory(url, cacheRoot);
            if (!Repository.IsValid(dir))
            {
                if (Directory.Exists(dir))
                    Directory.Delete(dir, recursive: true); // a clone interrupted earlier: start over
                Directory.CreateDirectory(Path.GetDirectoryName(dir)!);
                try
                {
                    Network(() => Transport(resolved, cancellationToken, progress).Clone(url, dir), url);
                }
                catch (OperationCanceledException)
                {
                    // A half clone must not pass for the cache next time.
                    if (Directory.Exists(dir))
                        Directory.Delete(dir, recursive: true);
                    throw;
                }
            }
            repository = new GitOpsRepository(new Repository(dir), config.Branch, resolved, cancellationToken, progress);
        }
        repository.Fetch();
        return repository;
    }

    /// <summary>The cache directory of a URL: a hash, so neither the URL nor anything in it lands in a path.</summary>
    public static string CacheDirectory(string url, string? cacheRoot = null)
    {
        string hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(url))).ToLowerInvariant()[..16];
        return Path.Combine(cacheRoot ?? Path.Combine(KfmPaths.StateDirectory(), "gitops"), hash);
    }

    public void Fetch()
    {
        if (Repo.Network.Remotes[RemoteName] is not { } remote)
            return;
        var refspecs = remote.FetchRefSpecs.Select(r => r.Specification).ToList();
        Network(() => Transport(_credential, _cancellation, _progress).Fetch(Repo, RemoteName, refspecs, prune: true), remote.Url);
    }

    private static GitRemoteTransport Transport(GitCredential? credential, CancellationToken cancellation, Action<string, int>? progress) =>
        new(credential?.Handler(), cancellation, progress);

    /// <summary>The deploy branch's tip: the remote-tracking branch after fetch, or the local branch without a remote.</summary>
    public Commit DeployTip()
    {
        var branch = HasRemote ? Repo.Branches[$"{RemoteName}/{Branch}"] : Repo.Branches[Branch];
        return branch?.Tip ?? throw new KfmException(GitOpsErrorIds.BranchNotFound, KfmErrorKind.ObjectNotFound,
            $"The deploy branch '{Branch}' does not exist in the GitOps repository. Check gitops.branch.", Branch);
    }

    /// <summary>Blob bytes of <paramref name="path"/> at <paramref name="commit"/>, or null when absent.</summary>
    public static byte[]? ReadFile(Commit commit, string path)
    {
        if (commit[path]?.Target is not Blob blob)
            return null;
        using var stream = blob.GetContentStream();
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }

    /// <summary>
    /// Pushes <paramref name="commit"/> to refs/heads/<paramref name="remoteBranch"/>, never forced.
    /// Rejections (non-fast-forward, hooks) and authentication failures become KfmExceptions.
    /// </summary>
    public void Push(Commit commit, string remoteBranch)
    {
        var remote = Repo.Network.Remotes[RemoteName] ?? throw new KfmException(GitOpsErrorIds.RepositoryUnavailable, KfmErrorKind.InvalidOperation,
            "The GitOps clone has no 'origin' remote to push to. Add one, or set gitops.url.");
        Network(() =>
        {
            try
            {
                Transport(_credential, _cancellation, _progress).Push(Repo, RemoteName, commit.Id, remoteBranch);
            }
            catch (GitRemoteException rejected) when (rejected.Failure == GitRemoteFailure.Rejected)
            {
                // Mapped here, not after Network: KfmException keeps no lower exception to match on.
                throw Rejected(remoteBranch, rejected.Detail, rejected);
            }
        }, remote.Url);
        Fetch();
    }

    /// <summary>Remote-tracking branches whose name starts with <paramref name="prefix"/>.</summary>
    public IEnumerable<Branch> RemoteBranches(string prefix) =>
        Repo.Branches.Where(b => b.IsRemote && b.FriendlyName.StartsWith($"{RemoteName}/{prefix}", StringComparison.Ordinal));

    public void Dispose() => Repo.Dispose();

    private static KfmException Rejected(string branch, string why, Exception? inner) =>
        new(GitOpsErrorIds.PushRejected, KfmErrorKind.InvalidOperation,
            $"The GitOps remote rejected the push to '{branch}' ({why}). Nothing was forced; fetch, check the branch and its hooks, then rerun.", branch, inner);

    /// <summary>Transport failures as the GitOps errors scripts match on (a rejected push is mapped in <see cref="Push"/>).</summary>
    private static void Network(Action action, string url)
    {
        try
        {
            action();
        }
        catch (GitRemoteException e) when (e.Failure == GitRemoteFailure.Authentication)
        {
            throw new KfmException(GitOpsErrorIds.AuthenticationFailed, KfmErrorKind.PermissionDenied,
                $"The GitOps remote {Safety.Redactor.Default.Url(url)} refused the credentials on {e.Operation}. Check gitops.token_env/token_file or -Credential.", e.Operation, e);
        }
        catch (GitRemoteException e)
        {
            throw new KfmException(GitOpsErrorIds.RepositoryUnavailable, KfmErrorKind.ConnectionError,
                $"Git {e.Operation} with {Safety.Redactor.Default.Url(url)} failed: {e.Detail}", e.Operation, e);
        }
    }

    /// <summary>libgit2 messages may echo a URL: the one redaction strips its user info, so no credential survives.</summary>
    internal static string Sanitize(string message) => Safety.Redactor.Default.Text(message);
}
