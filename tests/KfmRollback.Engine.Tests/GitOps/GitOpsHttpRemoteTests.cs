using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Tests.Receipts;

namespace KfmRollback.Engine.Tests.GitOps;

/// <summary>Rollbacks against a real git smart-HTTP server with basic auth (lighttpd + git http-backend).</summary>
public class GitOpsHttpRemoteTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 11, 28, 9, 5, 0, TimeSpan.Zero);
    private readonly GitTestRepo _repo = new();
    private readonly GitHttpServer _server = new();
    private readonly TempDir _cache = new();
    private readonly string _served;

    public GitOpsHttpRemoteTests() => _served = _server.Serve(_repo.Bare, "infra.git");

    private static GitOpsRollbackRequest Request(GitCredential credential) =>
        new() { Environment = "prod", IncidentId = "INC-7", Reason = "errors", Credential = credential };

    private GitOpsRollbackRun Rollback() => new(_repo.Config(url: _server.UrlOf("infra.git")), new FixedClock(Now), _cache.Path);

    [Fact]
    public void ClonesAndPushesOverHttpWithBasicAuth()
    {
        var result = Rollback().Run(Request(new GitCredential(GitHttpServer.User, GitHttpServer.Password)));
        Assert.Equal(RollbackOutcome.PendingMerge, result.Outcome);
        Assert.Equal(GitTestRepo.D2, result.RollbackTargetRef);
        Assert.Equal(result.Commit, Git.Run(_served, "rev-parse", "refs/heads/" + result.Branch));
    }

    [Fact]
    public void TokenFromEnvironmentIsUsed()
    {
        string variable = "KFM_TEST_GIT_TOKEN_" + Guid.NewGuid().ToString("N")[..6].ToUpperInvariant();
        Environment.SetEnvironmentVariable(variable, "tok-123");
        try
        {
            var config = _repo.Config(url: _server.UrlOf("infra.git")) ;
            config = new KfmRollback.Engine.Configuration.GitOpsConfig { Url = config.Url, File = config.File, Kind = config.Kind, ImageName = config.ImageName, TokenEnv = variable };
            // The token user is x-access-token, which this server does not know: the failure proves the token was sent and refused.
            var e = Assert.Throws<KfmException>(() => new GitOpsRollbackRun(config, new FixedClock(Now), _cache.Path).Run(new GitOpsRollbackRequest { Environment = "prod", IncidentId = "INC-7", Reason = "x" }));
            Assert.Equal(GitOpsErrorIds.AuthenticationFailed, e.ErrorId);
            Assert.DoesNotContain("tok-123", e.ToString());
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public void BadCredentialsAreAClearErrorWithoutTheSecret()
    {
        var e = Assert.Throws<KfmException>(() => Rollback().Run(Request(new GitCredential(GitHttpServer.User, "wrong-password-xyz"))));
        Assert.Equal(GitOpsErrorIds.AuthenticationFailed, e.ErrorId);
        Assert.Equal(KfmErrorKind.PermissionDenied, e.Kind);
        Assert.DoesNotContain("wrong-password-xyz", e.ToString());
        Assert.Equal(new[] { "main" }, Git.Run(_served, "for-each-ref", "--format=%(refname:short)", "refs/heads").Split('\n'));
    }

    [Fact]
    public void PreReceiveHookRejectionIsClearAndLeavesCacheConsistent()
    {
        string hook = Path.Combine(_served, "hooks", "pre-receive");
        File.WriteAllText(hook, "#!/bin/sh\necho 'rollbacks need a change ticket' >&2\nexit 1\n");
        File.SetUnixFileMode(hook, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var credential = new GitCredential(GitHttpServer.User, GitHttpServer.Password);
        var e = Assert.Throws<KfmException>(() => Rollback().Run(Request(credential)));
        Assert.Equal(GitOpsErrorIds.PushRejected, e.ErrorId);
        Assert.DoesNotContain(GitHttpServer.Password, e.ToString());
        Assert.Equal("main", Git.Run(_served, "for-each-ref", "--format=%(refname:short)", "refs/heads"));
        string clone = GitOpsRepository.CacheDirectory(_server.UrlOf("infra.git").OriginalString, _cache.Path);
        Assert.Equal("main", Git.Run(clone, "rev-parse", "--abbrev-ref", "HEAD"));
        Assert.Equal("", Git.Run(clone, "status", "--porcelain"));
        Assert.Equal("", Git.Run(clone, "for-each-ref", "refs/kfm-rollback", "refs/heads/ops"));
        // Once the hook lets it through, a rerun succeeds from the same cache.
        File.Delete(hook);
        Assert.Equal(RollbackOutcome.PendingMerge, Rollback().Run(Request(credential)).Outcome);
    }

    [Fact]
    public void NonFastForwardOverHttpIsRejected()
    {
        var config = _repo.Config(url: _server.UrlOf("infra.git"));
        using var repository = GitOpsRepository.Open(config, new GitCredential(GitHttpServer.User, GitHttpServer.Password), _cache.Path);
        var stale = repository.DeployTip().Parents.First();
        var e = Assert.Throws<KfmException>(() => repository.Push(stale, "main"));
        Assert.Equal(GitOpsErrorIds.PushRejected, e.ErrorId);
    }

    public void Dispose()
    {
        _server.Dispose();
        _cache.Dispose();
        _repo.Dispose();
    }
}
