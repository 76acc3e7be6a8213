using System.Text.RegularExpressions;
using KfmRollback.Engine.Core;
using LibGit2Sharp;
using LibGit2Sharp.Handlers;

namespace KfmRollback.Engine.Adapters.Git;

/// <summary>Why a clone, fetch or push failed, as far as the caller needs to decide what to say and do.</summary>
public enum GitRemoteFailure
{
    /// <summary>The remote refused the credentials (401/403).</summary>
    Authentication,
    /// <summary>The remote could not be reached or answered something other than a ref update result.</summary>
    Unreachable,
    /// <summary>The remote refused a ref update: not a fast-forward, a hook or a protected branch.</summary>
    Rejected,
}

/// <summary>
/// A failed git network call. <see cref="RemoteCallException{TFailure}.Detail"/> is libgit2's or the
/// remote's text with any URL user info stripped; the credential itself never reaches libgit2's messages.
/// </summary>
public sealed class GitRemoteException : RemoteCallException<GitRemoteFailure>
{
    public GitRemoteException(GitRemoteFailure failure, string operation, string detail, Exception? inner)
        : base("git", failure, operation, detail, inner)
    {
    }
}

/// <summary>
/// Clone, fetch and push through libgit2 with one set of credentials: Ctrl+C stops a transfer between
/// packets, pushes are never forced, and failures come back as <see cref="GitRemoteException"/> with
/// user info stripped. Knows git remotes only, nothing of what a repository holds.
/// </summary>
public sealed partial class GitRemoteTransport
{
    private readonly CredentialsHandler? _credentials;
    private readonly CancellationToken _cancellation;
    private readonly Action<string, int>? _progress;

    public GitRemoteTransport(CredentialsHandler? credentials, CancellationToken cancellation = default, Action<string, int>? progress = null)
    {
        _credentials = credentials;
        _cancellation = cancellation;
        _progress = progress;
    }

    public void Clone(string url, string directory) =>
        Run("clone", () => Repository.Clone(url, directory, new CloneOptions(FetchOptions(prune: false))));

    /// <summary>Fetches <paramref name="refspecs"/> from <paramref name="remoteName"/>.</summary>
    public void Fetch(Repository repository, string remoteName, IEnumerable<string> refspecs, bool prune = false) =>
        Run("fetch", () => Commands.Fetch(repository, remoteName, refspecs, FetchOptions(prune), null));

    /// <summary>
    /// Pushes <paramref name="commit"/> to refs/heads/<paramref name="remoteBranch"/> without force: the
    /// remote takes it only as a fast-forward. A refused update is <see cref="GitRemoteFailure.Rejected"/>.
    /// </summary>
    public void Push(Repository repository, string remoteName, ObjectId commit, string remoteBranch)
    {
        var remote = repository.Network.Remotes[remoteName]
            ?? throw new GitRemoteException(GitRemoteFailure.Unreachable, "push", $"the repository has no remote '{remoteName}'", null);
        string? rejection = null;
        var options = new PushOptions
        {
            CredentialsProvider = _credentials,
            OnPushStatusError = e => rejection = e.Message,
            // Cancelling before the ref updates are sent leaves the remote as it was; libgit2 updates refs only after the pack is whole.
            OnNegotiationCompletedBeforePush = _ => !_cancellation.IsCancellationRequested,
            OnPackBuilderProgress = (_, _, _) => !_cancellation.IsCancellationRequested,
            OnPushTransferProgress = (current, total, _) =>
            {
                if (total > 0)
                    _progress?.Invoke($"Writing objects {current}/{total}", (int)(100L * current / total));
                return !_cancellation.IsCancellationRequested;
            },
        };
        // libgit2's local transport writes the remote ref without comparing it with the value it checked the
        // fast-forward against, so two processes pushing into one repository on disk could each "succeed" and
        // one lose its commit. Pushes through this transport into the same local repository take turns.
        using var turn = LocalGitDirectory(remote.Url) is { } gitDir ? FileLock.Acquire(Path.Combine(gitDir, "kfm-push")) : null;
        // A temporary local ref carries the commit: a refspec needs a ref, and this one never becomes a checked-out branch.
        const string temp = "refs/kfm-rollback/push";
        repository.Refs.Add(temp, commit, allowOverwrite: true);
        try
        {
            Run("push", () => repository.Network.Push(remote, $"{temp}:refs/heads/{remoteBranch}", options));
        }
        catch (GitRemoteException e) when (e.Failure == GitRemoteFailure.Unreachable && IsRejection(e.Detail))
        {
            throw new GitRemoteException(GitRemoteFailure.Rejected, "push", e.Detail, e);
        }
        finally
        {
            repository.Refs.Remove(temp);
        }
        if (rejection is not null)
            throw new GitRemoteException(GitRemoteFailure.Rejected, "push", Sanitize(rejection), null);
    }

    /// <summary>The git directory of a remote on this machine (a file:// URL or a path), else null.</summary>
    private static string? LocalGitDirectory(string url)
    {
        string? path = url.Contains("://", StringComparison.Ordinal)
            ? Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.IsFile ? uri.LocalPath : null
            : Path.GetFullPath(url);
        if (path is null || !Repository.IsValid(path)) return null;
        using var repository = new Repository(path);
        return repository.Info.Path;
    }

    private FetchOptions FetchOptions(bool prune) => new()
    {
        Prune = prune,
        CredentialsProvider = _credentials,
        OnTransferProgress = p =>
        {
            if (p.TotalObjects > 0)
                _progress?.Invoke($"Receiving objects {p.ReceivedObjects}/{p.TotalObjects}", (int)(100L * p.ReceivedObjects / p.TotalObjects));
            return !_cancellation.IsCancellationRequested;
        },
        OnProgress = _ => !_cancellation.IsCancellationRequested,
    };

    private void Run(string operation, Action action)
    {
        _cancellation.ThrowIfCancellationRequested();
        try
        {
            action();
        }
        catch (LibGit2SharpException e) when (_cancellation.IsCancellationRequested)
        {
            throw new OperationCanceledException($"Git {operation} was cancelled.", e, _cancellation);
        }
        catch (LibGit2SharpException e)
        {
            string message = Sanitize(e.Message);
            bool auth = message.Contains("401", StringComparison.Ordinal) || message.Contains("authentication", StringComparison.OrdinalIgnoreCase)
                || message.Contains("credentials", StringComparison.OrdinalIgnoreCase) || message.Contains("403", StringComparison.Ordinal);
            throw new GitRemoteException(auth ? GitRemoteFailure.Authentication : GitRemoteFailure.Unreachable, operation, message, e);
        }
    }

    private static bool IsRejection(string message) =>
        message.Contains("fast-forward", StringComparison.OrdinalIgnoreCase) || message.Contains("fastforward", StringComparison.OrdinalIgnoreCase) || message.Contains("rejected", StringComparison.OrdinalIgnoreCase)
        || message.Contains("hook", StringComparison.OrdinalIgnoreCase) || message.Contains("contains commits that are not present", StringComparison.OrdinalIgnoreCase);

    /// <summary>libgit2 messages may echo a URL: the one redaction strips its user info, so no credential survives.</summary>
    public static string Sanitize(string message) => Safety.Redactor.Default.Text(message);
}
