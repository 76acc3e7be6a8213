using KfmRollback.Engine.Adapters.PullRequests;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Configuration;
using Octokit;

namespace KfmRollback.Engine.Adapters.Trackers;

/// <summary>
/// One follow-up as a tracker files it: its title starts with <paramref name="TitlePrefix"/> (what a
/// rerun finds it by, with the first of <paramref name="Labels"/>), a body, and the labels it carries.
/// </summary>
internal sealed record TrackerItem(string TitlePrefix, string Title, string Body, IReadOnlyList<string> Labels);

/// <summary>
/// GitHub issues (Octokit, as the rollback PRs): an issue labelled kfm-follow-up whose title starts
/// with "[incident]" is the follow-up; a rerun finds it instead of opening another.
/// </summary>
internal sealed class GitHubIssues
{
    private readonly GitHubClient _client;
    private readonly string _owner, _name;

    public GitHubIssues(TrackerConfig config)
    {
        var product = new Octokit.ProductHeaderValue("KfmRollback");
        _client = config.BaseUrl is { } baseUrl ? new GitHubClient(product, baseUrl) : new GitHubClient(product);
        _client.Credentials = new Credentials(PullRequestProviders.Token(config, "follow_up"));
        string[] parts = config.Repository!.Split('/');
        (_owner, _name) = (parts[0], parts[1]);
    }

    public async Task<(string Url, bool Created)> FindOrCreateAsync(TrackerItem item, CancellationToken cancellationToken)
    {
        try
        {
            var request = new RepositoryIssueRequest { State = ItemStateFilter.All };
            request.Labels.Add(item.Labels[0]);
            var existing = (await _client.Issue.GetAllForRepository(_owner, _name, request).ConfigureAwait(false))
                .FirstOrDefault(i => i.Title.StartsWith(item.TitlePrefix, StringComparison.Ordinal));
            if (existing is not null) return (existing.HtmlUrl, false);
            var issue = new NewIssue(item.Title) { Body = item.Body };
            foreach (string label in item.Labels) issue.Labels.Add(label);
            Issue created = await _client.Issue.Create(_owner, _name, issue).ConfigureAwait(false);
            return (created.HtmlUrl, true);
        }
        catch (ApiException e)
        {
            throw FollowUpErrors.Failed("GitHub", $"open the follow-up issue (HTTP {(int)e.StatusCode})", e);
        }
    }
}

/// <summary>
/// Azure DevOps Boards (REST 7.1): a WIQL query for a work item tagged kfm-follow-up whose title
/// starts with "[incident]", else a new Task created with a JSON Patch document.
/// </summary>
internal sealed class AzureDevOpsWorkItems
{
    private const string ApiVersion = "7.1";
    private readonly HttpClient _http;
    private readonly string _project;

    public AzureDevOpsWorkItems(TrackerConfig config, HttpMessageHandler? handler)
    {
        string[] parts = config.Repository!.Split('/');
        Uri baseUrl = config.BaseUrl ?? new Uri("https://dev.azure.com/");
        _project = $"{baseUrl.ToString().TrimEnd('/')}/{Uri.EscapeDataString(parts[0])}/{Uri.EscapeDataString(parts[1])}";
        _http = handler is null ? new HttpClient() : new HttpClient(handler, disposeHandler: false);
        // A PAT goes in Basic auth with an empty user name, as Azure DevOps documents.
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(":" + PullRequestProviders.Token(config, "follow_up"))));
        _http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
    }

    public async Task<(string Url, bool Created)> FindOrCreateAsync(TrackerItem item, CancellationToken cancellationToken)
    {
        string prefix = item.TitlePrefix.Replace("'", "''", StringComparison.Ordinal);
        var query = new JsonObject
        {
            ["query"] = $"SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project AND [System.Tags] CONTAINS '{item.Labels[0]}' AND [System.Title] CONTAINS '{prefix}'",
        };
        JsonNode found = await SendAsync(HttpMethod.Post, $"{_project}/_apis/wit/wiql?api-version={ApiVersion}", query.ToJsonString(), "application/json", cancellationToken).ConfigureAwait(false);
        if (found["workItems"] is JsonArray { Count: > 0 } items && items[0]?["id"]?.GetValue<int>() is int id)
            return ($"{_project}/_workitems/edit/{id}", false);
        string tags = string.Join("; ", item.Labels);
        var patch = new JsonArray(
            Field("System.Title", item.Title),
            Field("System.Description", "<pre>" + System.Net.WebUtility.HtmlEncode(item.Body) + "</pre>"),
            Field("System.Tags", tags));
        JsonNode created = await SendAsync(HttpMethod.Post, $"{_project}/_apis/wit/workitems/$Task?api-version={ApiVersion}", patch.ToJsonString(), "application/json-patch+json", cancellationToken).ConfigureAwait(false);
        return (created["_links"]?["html"]?["href"]?.GetValue<string>() ?? $"{_project}/_workitems/edit/{created["id"]}", true);
    }

    private static JsonNode Field(string name, string value) => new JsonObject { ["op"] = "add", ["path"] = "/fields/" + name, ["value"] = value };

    private async Task<JsonNode> SendAsync(HttpMethod method, string url, string body, string contentType, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, url) { Content = new StringContent(body, Encoding.UTF8) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        try
        {
            using HttpResponseMessage response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
                throw FollowUpErrors.Failed("Azure DevOps", $"open the follow-up work item (HTTP {(int)response.StatusCode})");
            return JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)) ?? new JsonObject();
        }
        catch (Exception e) when (e is HttpRequestException or JsonException)
        {
            throw FollowUpErrors.Failed("Azure DevOps", "be reached or understood", e);
        }
    }
}

internal static class FollowUpErrors
{
    public static Core.KfmException Failed(string provider, string what, Exception? inner = null) =>
        new("FollowUpFailed", Core.KfmErrorKind.ConnectionError,
            $"{provider} could not {what}. Nothing was opened: rerun New-KfmFollowUp (it finds an existing follow-up first) or open it by hand.", provider, inner);
}
