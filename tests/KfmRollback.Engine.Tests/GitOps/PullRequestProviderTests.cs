using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.GitOps;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Tests.Receipts;

namespace KfmRollback.Engine.Tests.GitOps;

public class PullRequestProviderTests : IDisposable
{
    private const string Token = "pr-token-abc";
    private readonly string _variable = "KFM_TEST_PR_TOKEN_" + Guid.NewGuid().ToString("N")[..6].ToUpperInvariant();
    private readonly GitTestRepo _repo = new();
    private readonly List<JsonNode> _opened = new();

    public PullRequestProviderTests() => Environment.SetEnvironmentVariable(_variable, Token);

    private GitOpsConfig Config(PrProvider provider, string repository, Uri baseUrl)
    {
        var c = _repo.Config();
        return new GitOpsConfig { Path = c.Path, File = c.File, Kind = c.Kind, ImageName = c.ImageName, Pr = new PullRequestConfig { Provider = provider, Repository = repository, BaseUrl = baseUrl, TokenEnv = _variable } };
    }

    private static GitOpsRollbackRequest Request => new() { Environment = "prod", IncidentId = "INC-9", Reason = "p95 latency", BlastRadius = "api" };

    /// <summary>GitHub's REST API as Octokit calls it on an Enterprise base URL (/api/v3).</summary>
    private (int, string) GitHub(ApiCall call)
    {
        Assert.Equal($"token {Token}", call.Headers["Authorization"], ignoreCase: true);
        Assert.Contains("application/vnd.github", call.Headers["Accept"]);
        Assert.Contains("KfmRollback", call.Headers["User-Agent"]);
        if (call.Method == "GET" && call.PathAndQuery.StartsWith("/api/v3/repos/kfm/infra/pulls?", StringComparison.Ordinal))
        {
            Assert.Contains("state=open", call.PathAndQuery);
            Assert.Contains("head=kfm", Uri.UnescapeDataString(call.PathAndQuery).Replace("%3A", ":"));
            var list = new JsonArray(_opened.Select(p => (JsonNode)JsonNode.Parse(p.ToJsonString())!).ToArray());
            return (200, list.ToJsonString());
        }
        if (call.Method == "POST" && call.PathAndQuery == "/api/v3/repos/kfm/infra/pulls")
        {
            foreach (var field in new[] { "title", "head", "base" })
                Assert.False(string.IsNullOrEmpty(call.Body?[field]?.GetValue<string>()), field + " is required");
            string head = call.Body!["head"]!.GetValue<string>();
            var pr = new JsonObject
            {
                ["id"] = 1, ["number"] = 12, ["state"] = "open", ["title"] = call.Body["title"]!.GetValue<string>(), ["body"] = call.Body["body"]?.GetValue<string>(),
                ["html_url"] = "https://github.example.test/kfm/infra/pull/12", ["url"] = "https://github.example.test/api/v3/repos/kfm/infra/pulls/12",
                ["head"] = new JsonObject { ["ref"] = head, ["sha"] = new string('a', 40), ["label"] = "kfm:" + head },
                ["base"] = new JsonObject { ["ref"] = call.Body["base"]!.GetValue<string>(), ["sha"] = new string('b', 40), ["label"] = "kfm:main" },
            };
            _opened.Add(pr);
            return (201, pr.ToJsonString());
        }
        return (404, "{\"message\":\"Not Found\"}");
    }

    [Fact]
    public void GitHubPullRequestIsOpenedOnceWithRunbookBody()
    {
        using var api = new LoopbackApi(GitHub);
        var config = Config(PrProvider.Github, "kfm/infra", api.BaseUrl);
        var clock = new FixedClock(new DateTimeOffset(2026, 11, 28, 10, 0, 0, TimeSpan.Zero));

        var first = new GitOpsRollbackRun(config, clock).Run(Request);
        clock.UtcNow = clock.UtcNow.AddMinutes(3);
        var second = new GitOpsRollbackRun(config, clock).Run(Request);

        Assert.Empty(api.Failures);
        Assert.Equal(RollbackOutcome.PendingMerge, first.Outcome);
        Assert.Equal("https://github.example.test/kfm/infra/pull/12", first.PullRequestUrl);
        Assert.Equal(first.PullRequestUrl, second.PullRequestUrl);
        Assert.Single(api.Calls, c => c.Method == "POST");
        string body = api.Calls.Single(c => c.Method == "POST").Body!["body"]!.GetValue<string>();
        Assert.Contains("Incident: INC-9", body);
        Assert.Contains($"last_good_ref: `{GitTestRepo.D2}`", body);
        Assert.Contains("Reason: p95 latency", body);
        Assert.Contains("Blast radius: api", body);
        foreach (var section in new[] { "### A) Health and stability", "### B)", "### C) Contract sanity", "### D) Observability" })
            Assert.Contains(section, body);
        Assert.Contains("- [ ] 5xx rate back to baseline", body);
        Assert.Equal("main", api.Calls.Single(c => c.Method == "POST").Body!["base"]!.GetValue<string>());
    }

    [Fact]
    public void AzureDevOpsPullRequestFollowsTheRestContract()
    {
        string expectedAuth = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(":" + Token));
        using var api = new LoopbackApi(call =>
        {
            Assert.Equal(expectedAuth, call.Headers["Authorization"]);
            Assert.Contains("application/json", call.Headers["Accept"]);
            const string collection = "/contoso/Platform/_apis/git/repositories/infra/pullrequests";
            if (call.Method == "GET" && call.PathAndQuery.StartsWith(collection + "?", StringComparison.Ordinal))
            {
                Assert.Contains("api-version=7.1", call.PathAndQuery);
                Assert.Contains("searchCriteria.sourceRefName=refs%2Fheads%2Fops%2Frollback-api-", call.PathAndQuery);
                return (200, "{\"value\":[],\"count\":0}");
            }
            if (call.Method == "POST" && call.PathAndQuery == collection + "?api-version=7.1")
            {
                Assert.StartsWith("refs/heads/ops/rollback-api-", call.Body!["sourceRefName"]!.GetValue<string>());
                Assert.Equal("refs/heads/main", call.Body["targetRefName"]!.GetValue<string>());
                Assert.False(string.IsNullOrEmpty(call.Body["title"]!.GetValue<string>()));
                Assert.Contains("### D) Observability", call.Body["description"]!.GetValue<string>());
                return (201, "{\"pullRequestId\":31,\"status\":\"active\",\"url\":\"https://dev.example.test/_apis/git/repositories/x/pullRequests/31\",\"repository\":{\"webUrl\":\"https://dev.example.test/contoso/Platform/_git/infra\"}}");
            }
            return (404, "{\"message\":\"not found\"}");
        });
        var result = new GitOpsRollbackRun(Config(PrProvider.AzureDevops, "contoso/Platform/infra", api.BaseUrl), new FixedClock(DateTimeOffset.UtcNow)).Run(Request);
        Assert.Empty(api.Failures);
        Assert.Equal(RollbackOutcome.PendingMerge, result.Outcome);
        Assert.Equal("https://dev.example.test/contoso/Platform/_git/infra/pullrequest/31", result.PullRequestUrl);
    }

    [Fact]
    public void ProviderFailureAfterPushIsReportedNotHidden()
    {
        using var api = new LoopbackApi(_ => (500, "{\"message\":\"boom\"}"));
        var result = new GitOpsRollbackRun(Config(PrProvider.AzureDevops, "contoso/Platform/infra", api.BaseUrl), new FixedClock(DateTimeOffset.UtcNow)).Run(Request);
        Assert.Equal(RollbackOutcome.Failed, result.Outcome);
        Assert.NotNull(result.Branch);
        Assert.Contains("HTTP 500", result.Detail);
        Assert.DoesNotContain(Token, result.Detail);
    }

    public void Dispose()
    {
        Environment.SetEnvironmentVariable(_variable, null);
        _repo.Dispose();
    }
}
