using KfmRollback.Engine.Adapters.Prometheus;
using KfmRollback.Engine.Adapters.Http;
using KfmRollback.Engine.Adapters.PullRequests;
using KfmRollback.Engine.Adapters.Git;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Tests.GitOps;
using KfmRollback.Engine.Tests.Receipts;
using LibGit2Sharp;

namespace KfmRollback.Engine.Tests;

/// <summary>
/// Ctrl+C reaches every long call: Git clone, fetch and push (libgit2's progress callbacks return
/// false), Prometheus, probes and pull-request providers. Each is cancelled mid-way and must leave
/// nothing half-done.
/// </summary>
public sealed class CancellationTests : IDisposable
{
    private readonly GitTestRepo _repo = new();
    private readonly GitHttpServer _server = new();
    private readonly TempDir _cache = new();
    private readonly string _served;

    public CancellationTests()
    {
        // Enough objects that a transfer reports progress more than once.
        var random = new Random(7);
        for (int i = 0; i < 200; i++)
        {
            var bytes = new byte[8192];
            random.NextBytes(bytes);
            _repo.Write($"blobs/{i:D3}.bin", Convert.ToBase64String(bytes));
        }
        _repo.Commit("bulk");
        _repo.Push();
        _served = _server.Serve(_repo.Bare, "infra.git");
    }

    private GitOpsConfig HttpConfig() => new()
    {
        Url = _server.UrlOf("infra.git"), File = GitTestRepo.File, Kind = GitOpsKind.Kustomize, ImageName = "kfm-api",
        Branch = "main", Author = new GitAuthor(),
    };

    private GitCredential Credential => new(GitHttpServer.User, GitHttpServer.Password);

    [Fact]
    public void A_clone_cancelled_mid_transfer_leaves_no_half_clone_and_the_next_open_clones_afresh()
    {
        using var cts = new CancellationTokenSource();
        int calls = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => GitOpsRepository.Open(HttpConfig(), Credential, _cache.Path, cts.Token,
            (_, _) => { if (Interlocked.Increment(ref calls) == 1) cts.Cancel(); }).Dispose());
        Assert.True(calls >= 1, "the transfer reported progress before it was cancelled");
        Assert.False(Directory.Exists(GitOpsRepository.CacheDirectory(HttpConfig().Url!.OriginalString, _cache.Path)), "no half clone is left to pass for the cache");

        using var repository = GitOpsRepository.Open(HttpConfig(), Credential, _cache.Path);
        Assert.Equal(Git.Run(_served, "rev-parse", "refs/heads/main"), repository.DeployTip().Sha);
    }

    [Fact]
    public void A_fetch_cancelled_mid_transfer_keeps_the_clone_usable()
    {
        using (GitOpsRepository.Open(HttpConfig(), Credential, _cache.Path)) { }
        // New objects on the remote for the next fetch to receive.
        var random = new Random(8);
        for (int i = 0; i < 100; i++)
        {
            var bytes = new byte[8192];
            random.NextBytes(bytes);
            _repo.Write($"more/{i:D3}.bin", Convert.ToBase64String(bytes));
        }
        _repo.Commit("more");
        Git.Run(_repo.Seed, "push", "-q", _served, "main");

        using var cts = new CancellationTokenSource();
        Assert.ThrowsAny<OperationCanceledException>(() => GitOpsRepository.Open(HttpConfig(), Credential, _cache.Path, cts.Token, (_, _) => cts.Cancel()).Dispose());
        using var repository = GitOpsRepository.Open(HttpConfig(), Credential, _cache.Path);
        Assert.Equal(Git.Run(_served, "rev-parse", "refs/heads/main"), repository.DeployTip().Sha);
    }

    [Fact]
    public void A_push_cancelled_mid_way_pushes_no_branch()
    {
        using var cts = new CancellationTokenSource();
        using var repository = GitOpsRepository.Open(HttpConfig(), Credential, _cache.Path, cts.Token,
            (status, _) => { if (status.StartsWith("Writing", StringComparison.Ordinal)) cts.Cancel(); });
        var tip = repository.DeployTip();
        var random = new Random(9);
        var big = new byte[4 << 20];
        random.NextBytes(big);
        var blob = repository.Repo.ObjectDatabase.CreateBlob(new MemoryStream(big));
        var tree = repository.Repo.ObjectDatabase.CreateTree(TreeDefinition.From(tip.Tree).Add("big.bin", blob, Mode.NonExecutableFile));
        var signature = new Signature("t", "t@example.test", DateTimeOffset.UtcNow);
        var commit = repository.Repo.ObjectDatabase.CreateCommit(signature, signature, "big", tree, new[] { tip }, prettifyMessage: false);

        Assert.ThrowsAny<OperationCanceledException>(() => repository.Push(commit, "ops/rollback-api-cancelled"));
        Assert.DoesNotContain("ops/rollback-api-cancelled", Git.Run(_served, "for-each-ref", "--format=%(refname:short)", "refs/heads"));
        Assert.Null(repository.Repo.Refs["refs/kfm-rollback/push"]);
    }

    [Fact]
    public async Task Prometheus_probes_and_pull_request_providers_stop_at_once_when_cancelled()
    {
        using var silent = new SilentServer();
        var prometheus = new PrometheusClient(new PrometheusConfig { Url = silent.Url });
        await AssertCancelledQuickly(token => prometheus.QueryAsync("up", DateTimeOffset.UtcNow, token));

        using var probes = new ProbeClient(new ApiConfig
        {
            BaseUrl = silent.Url,
            Probe = new ProbePlan { Callers = new Dictionary<string, ProbeCaller>(), Endpoints = Array.Empty<ProbeEndpoint>() },
        });
        await AssertCancelledQuickly(token => probes.SendManyAsync(new[] { new ProbeRequest(HttpMethod.Get, "/api/v1/datasets", null) }, token));

        string variable = "KFM_TEST_PR_TOKEN_" + Guid.NewGuid().ToString("N")[..6].ToUpperInvariant();
        System.Environment.SetEnvironmentVariable(variable, "tok");
        try
        {
            foreach (var provider in new[] { PrProvider.Github, PrProvider.AzureDevops })
            {
                var pr = PullRequestProviders.For(new PullRequestConfig { Provider = provider, Repository = provider == PrProvider.Github ? "kfm/infra" : "contoso/Platform/infra", BaseUrl = silent.Url, TokenEnv = variable }, null);
                await AssertCancelledQuickly(token => pr.FindOrCreateAsync(new PullRequestDraft("ops/x", "main", "t", "b"), token));
            }
        }
        finally
        {
            System.Environment.SetEnvironmentVariable(variable, null);
        }
    }

    /// <summary>Cancelled 200 ms in, the call must end by itself well before any timeout, with cancellation.</summary>
    private static async Task AssertCancelledQuickly(Func<CancellationToken, Task> call)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var watch = Stopwatch.StartNew();
        Exception? thrown = await Record.ExceptionAsync(() => call(cts.Token));
        Assert.True(thrown is OperationCanceledException || thrown?.InnerException is OperationCanceledException, $"expected cancellation, got {thrown?.GetType().Name}: {thrown?.Message}");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed} to stop");
    }

    public void Dispose()
    {
        _server.Dispose();
        _repo.Dispose();
        _cache.Dispose();
    }

    /// <summary>Accepts connections and never answers: every call to it hangs until cancelled.</summary>
    private sealed class SilentServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly List<Socket> _held = new();

        public SilentServer()
        {
            _listener.Start();
            _ = Task.Run(async () =>
            {
                try
                {
                    while (true)
                    {
                        Socket socket = await _listener.AcceptSocketAsync().ConfigureAwait(false);
                        lock (_held) { _held.Add(socket); }
                    }
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
            });
        }

        public Uri Url => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");

        public void Dispose()
        {
            _listener.Stop();
            lock (_held) { _held.ForEach(s => s.Dispose()); }
        }
    }
}
