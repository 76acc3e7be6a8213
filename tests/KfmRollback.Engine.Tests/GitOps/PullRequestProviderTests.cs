using KfmRollback.Engine.Adapters.PullRequests;
using KfmRollback.Engine.Adapters.Git;
using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Configuration;
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

    private static JsonObject GitHubPr(string state, string? mergedAt, string? mergeSha) => new()
    {
        ["id"] = 1, ["number"] = 12, ["state"] = state, ["title"] = "t", ["merged_at"] = mergedAt, ["merge_commit_sha"] = mergeSha,
        ["html_url"] = "https://github.example.test/kfm/infra/pull/12", ["url"] = "https://github.example.test/api/v3/repos/kfm/infra/pulls/12",
        ["head"] = new JsonObject { ["ref"] = "ops/rollback-api-1", ["sha"] = new string('a', 40), ["label"] = "kfm:ops/rollback-api-1" },
        ["base"] = new JsonObject { ["ref"] = "main", ["sha"] = new string('b', 40), ["label"] = "kfm:main" },
    };

    [Fact]
    public async Task GitHubReportsMergeCommitAndApprovals_AndSurfacesAMergeRefusal()
    {
        string state = "open";
        using var api = new LoopbackApi(call =>
        {
            if (call.Method == "GET" && call.PathAndQuery.StartsWith("/api/v3/repos/kfm/infra/pulls?", StringComparison.Ordinal))
            {
                Assert.Contains("state=all", call.PathAndQuery);
                return (200, new JsonArray(state == "merged" ? GitHubPr("closed", "2026-11-28T10:05:00Z", new string('c', 40)) : GitHubPr(state, null, null)).ToJsonString());
            }
            if (call.Method == "GET" && call.PathAndQuery.StartsWith("/api/v3/repos/kfm/infra/pulls/12/reviews", StringComparison.Ordinal))
                return (200, Reviews(("bob", "APPROVED", Pushed), ("carol", "CHANGES_REQUESTED", Pushed), ("carol", "APPROVED", Pushed)));
            if (call.Method == "PUT" && call.PathAndQuery == "/api/v3/repos/kfm/infra/pulls/12/merge")
            {
                Assert.Equal("squash", call.Body!["merge_method"]!.GetValue<string>());
                Assert.Equal(new string('a', 40), call.Body["sha"]!.GetValue<string>());
                return (405, "{\"message\":\"At least 2 approving reviews are required by reviewers with write access.\"}");
            }
            return (404, "{\"message\":\"Not Found\"}");
        });
        var provider = new GitHubPullRequests(new PullRequestConfig { Provider = PrProvider.Github, Repository = "kfm/infra", BaseUrl = api.BaseUrl, TokenEnv = _variable }, Token);
        var open = await provider.GetStatusAsync("ops/rollback-api-1", "main", Pushed, CancellationToken.None);
        Assert.Equal(new PullRequestStatus(PullRequestState.Open, null, 2, "https://github.example.test/kfm/infra/pull/12", Pushed), open);
        var refused = await Assert.ThrowsAsync<KfmRollback.Engine.Core.KfmException>(() => provider.MergeAsync("ops/rollback-api-1", "main", Pushed, MergeStrategy.Squash, CancellationToken.None));
        Assert.Equal(GitOpsErrorIds.MergeRefused, refused.ErrorId);
        Assert.Contains("2 approving reviews", refused.Message);
        state = "merged";
        var merged = await provider.GetStatusAsync("ops/rollback-api-1", "main", Pushed, CancellationToken.None);
        Assert.Equal(PullRequestState.Merged, merged!.State);
        Assert.Equal(new string('c', 40), merged.MergeCommit);
        state = "closed";
        Assert.Equal(PullRequestState.Closed, (await provider.GetStatusAsync("ops/rollback-api-1", "main", Pushed, CancellationToken.None))!.State);
        Assert.Empty(api.Failures);
    }

    [Fact]
    public async Task AzureDevOpsCompletesThePullRequestAndReportsLastMergeCommit()
    {
        string expectedAuth = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(":" + Token));
        bool completed = false;
        using var api = new LoopbackApi(call =>
        {
            Assert.Equal(expectedAuth, call.Headers["Authorization"]);
            const string collection = "/contoso/Platform/_apis/git/repositories/infra/pullrequests";
            string Pr() => new JsonObject
            {
                ["pullRequestId"] = 31, ["status"] = completed ? "completed" : "active",
                ["lastMergeSourceCommit"] = new JsonObject { ["commitId"] = new string('a', 40) },
                ["lastMergeCommit"] = completed ? new JsonObject { ["commitId"] = new string('d', 40) } : null,
                ["reviewers"] = new JsonArray(new JsonObject { ["vote"] = 10 }, new JsonObject { ["vote"] = -5 }),
                ["repository"] = new JsonObject { ["webUrl"] = "https://dev.example.test/contoso/Platform/_git/infra" },
            }.ToJsonString();
            if (call.Method == "GET" && call.PathAndQuery.StartsWith(collection + "?", StringComparison.Ordinal))
            {
                Assert.Contains("searchCriteria.status=all", call.PathAndQuery);
                return (200, $"{{\"value\":[{Pr()}],\"count\":1}}");
            }
            if (call.Method == "GET" && call.PathAndQuery == collection + "/31/iterations?api-version=7.1")
                return (200, Iterations(Pushed));
            if (call.Method == "PATCH" && call.PathAndQuery == collection + "/31?api-version=7.1")
            {
                Assert.Equal("completed", call.Body!["status"]!.GetValue<string>());
                Assert.Equal(new string('a', 40), call.Body["lastMergeSourceCommit"]!["commitId"]!.GetValue<string>());
                Assert.Equal("noFastForward", call.Body["completionOptions"]!["mergeStrategy"]!.GetValue<string>());
                completed = true;
                return (200, Pr());
            }
            return (404, "{\"message\":\"not found\"}");
        });
        var provider = new AzureDevOpsPullRequests(new PullRequestConfig { Provider = PrProvider.AzureDevops, Repository = "contoso/Platform/infra", BaseUrl = api.BaseUrl, TokenEnv = _variable }, Token);
        var open = await provider.GetStatusAsync("ops/rollback-api-1", "main", Pushed, CancellationToken.None);
        Assert.Equal(PullRequestState.Open, open!.State);
        Assert.Equal(1, open.Approvals);
        var merged = await provider.MergeAsync("ops/rollback-api-1", "main", Pushed, MergeStrategy.Merge, CancellationToken.None);
        Assert.Equal(PullRequestState.Merged, merged!.State);
        Assert.Equal(new string('d', 40), merged.MergeCommit);
        Assert.Empty(api.Failures);
    }

    /// <summary>The commit the module pushed (the PR's head in these fakes unless a test moves it).</summary>
    private static readonly string Pushed = new('a', 40);

    /// <summary>GitHub's list-reviews answer: each review with its user, state and commit_id.</summary>
    private static string Reviews(params (string User, string State, string CommitId)[] reviews) =>
        new JsonArray(reviews.Select((r, i) => (JsonNode)new JsonObject
        {
            ["id"] = i + 1, ["state"] = r.State, ["commit_id"] = r.CommitId, ["user"] = new JsonObject { ["login"] = r.User },
            ["body"] = "", ["html_url"] = "https://github.example.test/kfm/infra/pull/12#review", ["pull_request_url"] = "https://github.example.test/api/v3/repos/kfm/infra/pulls/12",
        }).ToArray()).ToJsonString();

    /// <summary>Azure DevOps' list-iterations answer: one iteration per push, with its source commit.</summary>
    private static string Iterations(params string[] sourceCommits) =>
        new JsonObject
        {
            ["value"] = new JsonArray(sourceCommits.Select((c, i) => (JsonNode)new JsonObject { ["id"] = i + 1, ["sourceRefCommit"] = new JsonObject { ["commitId"] = c } }).ToArray()),
            ["count"] = sourceCommits.Length,
        }.ToJsonString();

    private static JsonObject GitHubPrWithHead(string headSha)
    {
        var pr = GitHubPr("open", null, null);
        pr["head"]!["sha"] = headSha;
        return pr;
    }

    [Fact]
    public async Task GitHubCountsOnlyApprovalsOfThePushedCommit_AndMergesExactlyThatCommit()
    {
        string headNow = Pushed;
        using var api = new LoopbackApi(call =>
        {
            if (call.Method == "GET" && call.PathAndQuery.StartsWith("/api/v3/repos/kfm/infra/pulls?", StringComparison.Ordinal))
                return (200, new JsonArray(GitHubPrWithHead(headNow)).ToJsonString());
            if (call.Method == "GET" && call.PathAndQuery.StartsWith("/api/v3/repos/kfm/infra/pulls/12/reviews", StringComparison.Ordinal))
                // bob and erin approved an earlier commit; carol approved the pushed one, then commented (a comment changes no verdict).
                return (200, Reviews(("bob", "APPROVED", new string('9', 40)), ("erin", "APPROVED", new string('9', 40)), ("carol", "APPROVED", Pushed), ("carol", "COMMENTED", Pushed)));
            if (call.Method == "PUT" && call.PathAndQuery == "/api/v3/repos/kfm/infra/pulls/12/merge")
            {
                // GitHub's merge API: "sha" is the SHA the pull request head must match to allow the merge.
                Assert.Equal(Pushed, call.Body!["sha"]!.GetValue<string>());
                return (200, $"{{\"sha\":\"{new string('c', 40)}\",\"merged\":true,\"message\":\"Pull Request successfully merged\"}}");
            }
            return (404, "{\"message\":\"Not Found\"}");
        });
        var provider = new GitHubPullRequests(new PullRequestConfig { Provider = PrProvider.Github, Repository = "kfm/infra", BaseUrl = api.BaseUrl, TokenEnv = _variable }, Token);

        var open = await provider.GetStatusAsync("ops/rollback-api-1", "main", Pushed, CancellationToken.None);
        Assert.Equal(1, open!.Approvals);
        var merged = await provider.MergeAsync("ops/rollback-api-1", "main", Pushed, MergeStrategy.Merge, CancellationToken.None);
        Assert.Equal(new string('c', 40), merged!.MergeCommit);

        // Someone pushes to the rollback branch: it is never merged, whatever its approvals.
        headNow = new string('e', 40);
        int puts = api.Calls.Count(c => c.Method == "PUT");
        var moved = await Assert.ThrowsAsync<KfmRollback.Engine.Core.KfmException>(() => provider.MergeAsync("ops/rollback-api-1", "main", Pushed, MergeStrategy.Merge, CancellationToken.None));
        Assert.Equal(GitOpsErrorIds.PullRequestHeadMoved, moved.ErrorId);
        Assert.Equal(puts, api.Calls.Count(c => c.Method == "PUT"));
        Assert.Empty(api.Failures);
    }

    [Fact]
    public async Task AzureDevOpsCountsVotesOnlyWhenTheSourceNeverHeldAnotherCommit_AndCompletesThePushedCommit()
    {
        string[] iterations = { Pushed };
        string head = Pushed;
        using var api = new LoopbackApi(call =>
        {
            const string collection = "/contoso/Platform/_apis/git/repositories/infra/pullrequests";
            string Pr() => new JsonObject
            {
                ["pullRequestId"] = 31, ["status"] = "active",
                ["lastMergeSourceCommit"] = new JsonObject { ["commitId"] = head },
                ["reviewers"] = new JsonArray(new JsonObject { ["vote"] = 10 }, new JsonObject { ["vote"] = 5 }),
                ["repository"] = new JsonObject { ["webUrl"] = "https://dev.example.test/contoso/Platform/_git/infra" },
            }.ToJsonString();
            if (call.Method == "GET" && call.PathAndQuery.StartsWith(collection + "?", StringComparison.Ordinal))
                return (200, $"{{\"value\":[{Pr()}],\"count\":1}}");
            if (call.Method == "GET" && call.PathAndQuery == collection + "/31/iterations?api-version=7.1")
                return (200, Iterations(iterations));
            if (call.Method == "PATCH" && call.PathAndQuery == collection + "/31?api-version=7.1")
            {
                // Azure DevOps completes only while lastMergeSourceCommit is the source's head.
                Assert.Equal(Pushed, call.Body!["lastMergeSourceCommit"]!["commitId"]!.GetValue<string>());
                return (200, Pr().Replace("\"active\"", "\"completed\"").Replace("\"reviewers\"", $"\"lastMergeCommit\":{{\"commitId\":\"{new string('d', 40)}\"}},\"reviewers\""));
            }
            return (404, "{\"message\":\"not found\"}");
        });
        var provider = new AzureDevOpsPullRequests(new PullRequestConfig { Provider = PrProvider.AzureDevops, Repository = "contoso/Platform/infra", BaseUrl = api.BaseUrl, TokenEnv = _variable }, Token);

        Assert.Equal(2, (await provider.GetStatusAsync("ops/rollback-api-1", "main", Pushed, CancellationToken.None))!.Approvals);
        // The branch held another commit once: votes may have been cast on it, so none counts.
        iterations = new[] { new string('9', 40), Pushed };
        Assert.Equal(0, (await provider.GetStatusAsync("ops/rollback-api-1", "main", Pushed, CancellationToken.None))!.Approvals);
        iterations = new[] { Pushed };
        Assert.Equal(PullRequestState.Merged, (await provider.MergeAsync("ops/rollback-api-1", "main", Pushed, MergeStrategy.Squash, CancellationToken.None))!.State);

        head = new string('e', 40);
        iterations = new[] { Pushed, head };
        int patches = api.Calls.Count(c => c.Method == "PATCH");
        var moved = await Assert.ThrowsAsync<KfmRollback.Engine.Core.KfmException>(() => provider.MergeAsync("ops/rollback-api-1", "main", Pushed, MergeStrategy.Squash, CancellationToken.None));
        Assert.Equal(GitOpsErrorIds.PullRequestHeadMoved, moved.ErrorId);
        Assert.Equal(patches, api.Calls.Count(c => c.Method == "PATCH"));
        Assert.Empty(api.Failures);
    }

    public void Dispose()
    {
        Environment.SetEnvironmentVariable(_variable, null);
        _repo.Dispose();
    }
}
