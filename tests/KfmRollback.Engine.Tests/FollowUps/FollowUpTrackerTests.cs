using KfmRollback.Engine.Aftermath;
using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Tests.GitOps;
using Xunit;

namespace KfmRollback.Engine.Tests.FollowUps;

/// <summary>
/// New-KfmFollowUp's trackers against loopback servers imitating each provider's documented API:
/// an earlier follow-up is found before one is created (a rerun opens nothing), the fields are
/// sent as the provider expects them, and the governance-review flag travels as a label or tag.
/// </summary>
public sealed class FollowUpTrackerTests : IDisposable
{
    private const string Token = "follow-up-token-7f3a";
    private readonly string _variable = "KFM_TEST_FOLLOW_UP_" + Guid.NewGuid().ToString("N")[..6].ToUpperInvariant();
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "kfm-follow-up-tests", Guid.NewGuid().ToString("N")[..12]);
    private readonly List<JsonObject> _items = new();

    public FollowUpTrackerTests() => Environment.SetEnvironmentVariable(_variable, Token);

    public void Dispose()
    {
        Environment.SetEnvironmentVariable(_variable, null);
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static FollowUpPlan Plan(string incident, bool governance) => new()
    {
        IncidentId = incident,
        Environment = "prod",
        Title = $"[{incident}] Follow-up: 5xx spike after deploy",
        Items = FollowUpService.RunbookItems,
        GovernanceReview = governance,
        GovernanceReasons = governance ? new[] { "existence leak: a public caller could tell restricted from missing (B.existence-leak/api/v1/datasets/{id}, post evidence)" } : Array.Empty<string>(),
        Body = "## Follow-up\n\n- [ ] Add tests that would have caught the regression\n\n## Governance review\n\n" + (governance ? "REQUIRED:\n- existence leak <&>" : "Not required"),
    };

    private TrackerConfig Tracker(PrProvider provider, string repository, Uri baseUrl) =>
        new() { Provider = provider, Repository = repository, TokenEnv = _variable, BaseUrl = baseUrl };

    /// <summary>GitHub's issues API as Octokit calls it on an Enterprise base URL (/api/v3).</summary>
    private (int, string) GitHub(ApiCall call)
    {
        Assert.Equal($"token {Token}", call.Headers["Authorization"], ignoreCase: true);
        Assert.Contains("KfmRollback", call.Headers["User-Agent"]);
        if (call.Method == "GET" && call.PathAndQuery.StartsWith("/api/v3/repos/kfm/ops/issues?", StringComparison.Ordinal))
        {
            string query = Uri.UnescapeDataString(call.PathAndQuery);
            Assert.Contains("labels=kfm-follow-up", query);
            Assert.Contains("state=all", query);
            return (200, new JsonArray(_items.Select(i => (JsonNode)i.DeepClone()).ToArray()).ToJsonString());
        }
        if (call.Method == "POST" && call.PathAndQuery == "/api/v3/repos/kfm/ops/issues")
        {
            Assert.False(string.IsNullOrEmpty(call.Body?["title"]?.GetValue<string>()), "title is required");
            int number = _items.Count + 7;
            var issue = new JsonObject
            {
                ["id"] = 1000 + number, ["number"] = number, ["state"] = "open", ["title"] = call.Body!["title"]!.GetValue<string>(), ["body"] = call.Body["body"]?.GetValue<string>(),
                ["html_url"] = $"https://github.example.test/kfm/ops/issues/{number}", ["url"] = $"https://github.example.test/api/v3/repos/kfm/ops/issues/{number}",
                ["labels"] = new JsonArray((call.Body["labels"] as JsonArray ?? new JsonArray()).Select(l => (JsonNode)new JsonObject { ["name"] = l!.GetValue<string>() }).ToArray()),
            };
            _items.Add(issue);
            return (201, issue.ToJsonString());
        }
        return (404, "{\"message\":\"Not Found\"}");
    }

    [Fact]
    public async Task GitHub_issue_is_found_before_it_is_created_with_its_labels_and_body()
    {
        using var api = new LoopbackApi(GitHub);
        TrackerConfig tracker = Tracker(PrProvider.Github, "kfm/ops", api.BaseUrl);

        FollowUpResult first = await FollowUpService.OpenAsync(Plan("INC-1042", governance: true), tracker, _dir, null, CancellationToken.None);
        FollowUpResult second = await FollowUpService.OpenAsync(Plan("INC-1042", governance: true), tracker, _dir, null, CancellationToken.None);
        FollowUpResult other = await FollowUpService.OpenAsync(Plan("INC-1043", governance: false), tracker, _dir, null, CancellationToken.None);

        Assert.Empty(api.Failures);
        Assert.Equal(("https://github.example.test/kfm/ops/issues/7", true), (first.Location, first.Created));
        Assert.Equal((first.Location, false), (second.Location, second.Created));
        Assert.Equal(("github", true), (other.Provider, other.Created));
        Assert.NotEqual(first.Location, other.Location);
        ApiCall[] creates = api.Calls.Where(c => c.Method == "POST").ToArray();
        Assert.Equal(2, creates.Length);
        Assert.True(api.Calls.FindIndex(c => c.Method == "GET") < api.Calls.FindIndex(c => c.Method == "POST"), "looked for an existing issue first");
        JsonNode sent = creates[0].Body!;
        Assert.Equal("[INC-1042] Follow-up: 5xx spike after deploy", sent["title"]!.GetValue<string>());
        Assert.Equal(Plan("INC-1042", true).Body, sent["body"]!.GetValue<string>());
        Assert.Equal(new[] { "kfm-follow-up", "governance-review" }, sent["labels"]!.AsArray().Select(l => l!.GetValue<string>()));
        Assert.Equal(new[] { "kfm-follow-up" }, creates[1].Body!["labels"]!.AsArray().Select(l => l!.GetValue<string>()));
    }

    /// <summary>Azure DevOps Boards REST 7.1: WIQL, then a Task created from a JSON Patch document.</summary>
    private (int, string) AzureDevOps(ApiCall call)
    {
        Assert.Equal("Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(":" + Token)), call.Headers["Authorization"]);
        if (call.Method == "POST" && call.PathAndQuery == "/kfm-org/kfm-ops/_apis/wit/wiql?api-version=7.1")
        {
            Assert.StartsWith("application/json", call.Headers["Content-Type"]);
            string query = call.Body!["query"]!.GetValue<string>();
            Assert.Contains("[System.TeamProject] = @project", query);
            Assert.Contains("[System.Tags] CONTAINS 'kfm-follow-up'", query);
            string title = query[(query.IndexOf("[System.Title] CONTAINS '", StringComparison.Ordinal) + 25)..].TrimEnd('\'');
            var found = _items.Where(i => i["fields"]!["System.Title"]!.GetValue<string>().Contains(title.Replace("''", "'", StringComparison.Ordinal), StringComparison.Ordinal))
                .Select(i => (JsonNode)new JsonObject { ["id"] = i["id"]!.GetValue<int>(), ["url"] = "u" }).ToArray();
            return (200, new JsonObject { ["queryType"] = "flat", ["workItems"] = new JsonArray(found) }.ToJsonString());
        }
        if (call.Method == "POST" && call.PathAndQuery == "/kfm-org/kfm-ops/_apis/wit/workitems/$Task?api-version=7.1")
        {
            Assert.StartsWith("application/json-patch+json", call.Headers["Content-Type"]);
            var fields = new JsonObject();
            foreach (JsonNode? op in call.Body!.AsArray())
            {
                Assert.Equal("add", op!["op"]!.GetValue<string>());
                Assert.StartsWith("/fields/", op["path"]!.GetValue<string>());
                fields[op["path"]!.GetValue<string>()["/fields/".Length..]] = op["value"]!.DeepClone();
            }
            int id = 40 + _items.Count;
            var item = new JsonObject { ["id"] = id, ["fields"] = fields, ["_links"] = new JsonObject { ["html"] = new JsonObject { ["href"] = $"https://dev.example.test/kfm-org/kfm-ops/_workitems/edit/{id}" } } };
            _items.Add(item);
            return (200, item.ToJsonString());
        }
        return (404, "{\"message\":\"Not Found\"}");
    }

    [Fact]
    public async Task Azure_DevOps_work_item_is_found_before_it_is_created_with_its_fields_and_tags()
    {
        using var api = new LoopbackApi(AzureDevOps);
        TrackerConfig tracker = Tracker(PrProvider.AzureDevops, "kfm-org/kfm-ops/infra", api.BaseUrl);

        FollowUpResult first = await FollowUpService.OpenAsync(Plan("INC-7", governance: true), tracker, _dir, null, CancellationToken.None);
        FollowUpResult second = await FollowUpService.OpenAsync(Plan("INC-7", governance: true), tracker, _dir, null, CancellationToken.None);

        Assert.Empty(api.Failures);
        Assert.Equal(("https://dev.example.test/kfm-org/kfm-ops/_workitems/edit/40", true), (first.Location, first.Created));
        Assert.False(second.Created);
        Assert.Equal($"{api.BaseUrl}kfm-org/kfm-ops/_workitems/edit/40", second.Location);
        JsonObject fields = _items.Single()["fields"]!.AsObject();
        Assert.Equal("[INC-7] Follow-up: 5xx spike after deploy", fields["System.Title"]!.GetValue<string>());
        Assert.Equal("kfm-follow-up; governance-review", fields["System.Tags"]!.GetValue<string>());
        string description = fields["System.Description"]!.GetValue<string>();
        Assert.StartsWith("<pre>", description);
        Assert.Contains("REQUIRED:", description);
        Assert.Contains("existence leak &lt;&amp;&gt;", description);
        Assert.Equal(3, api.Calls.Count);
    }

    [Fact]
    public async Task A_tracker_error_opens_nothing_and_never_shows_the_token()
    {
        using var api = new LoopbackApi(_ => (500, "{\"message\":\"boom\"}"));

        var github = await Assert.ThrowsAsync<KfmException>(() => FollowUpService.OpenAsync(Plan("INC-9", true), Tracker(PrProvider.Github, "kfm/ops", api.BaseUrl), _dir, null, CancellationToken.None));
        var azure = await Assert.ThrowsAsync<KfmException>(() => FollowUpService.OpenAsync(Plan("INC-9", true), Tracker(PrProvider.AzureDevops, "o/p/r", api.BaseUrl), _dir, null, CancellationToken.None));

        foreach (KfmException e in new[] { github, azure })
        {
            Assert.Equal("FollowUpFailed", e.ErrorId);
            Assert.DoesNotContain(Token, e.Message);
            Assert.Contains("Nothing was opened", e.Message);
        }
        Assert.DoesNotContain(api.Calls, c => c.PathAndQuery.Contains("workitems/$Task", StringComparison.Ordinal));
    }
}
