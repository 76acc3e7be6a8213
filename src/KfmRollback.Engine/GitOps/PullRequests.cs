using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using Octokit;

namespace KfmRollback.Engine.GitOps;

/// <summary>A pull request as the provider reports it.</summary>
public sealed record PullRequestInfo(string Url, bool Created);

/// <summary>What to open: head branch into base branch, with title and body.</summary>
public sealed record PullRequestDraft(string Head, string Base, string Title, string Body);

/// <summary>
/// One code host's PR API. FindOrCreate first looks for an open PR from the same head branch, so
/// a rerun for the same incident returns the existing PR instead of opening a second one.
/// </summary>
public interface IPullRequestProvider
{
    Task<PullRequestInfo?> FindOrCreateAsync(PullRequestDraft draft, CancellationToken cancellationToken);

    /// <summary>A URL people open to see or start the change (compare view, or null when unknown).</summary>
    string? CompareUrl(PullRequestDraft draft);
}

public static class PullRequestProviders
{
    public static IPullRequestProvider For(PullRequestConfig config, Uri? repositoryUrl, HttpMessageHandler? handler = null) => config.Provider switch
    {
        PrProvider.Github => new GitHubPullRequests(config, Token(config)),
        PrProvider.AzureDevops => new AzureDevOpsPullRequests(config, Token(config), handler),
        _ => new NoPullRequests(repositoryUrl),
    };

    internal static string Token(PullRequestConfig config)
    {
        string? token = SecretReference.Read(config.TokenEnv, config.TokenFile);
        if (string.IsNullOrWhiteSpace(token))
            throw new KfmException(GitOpsErrorIds.TokenUnavailable, KfmErrorKind.InvalidArgument,
                $"The PR token ({(config.TokenEnv is not null ? "$" + config.TokenEnv : config.TokenFile)}) is not available. Set gitops.pr.token_env or token_file.");
        return token.Trim();
    }

    internal static KfmException Failed(string provider, string what, Exception? inner = null) =>
        new(GitOpsErrorIds.PullRequestFailed, KfmErrorKind.ConnectionError,
            $"{provider} could not {what}. The rollback branch is pushed; open the pull request by hand or rerun.", provider, inner);
}

/// <summary>No PR API: the branch is pushed and the compare URL (for https remotes on a known host shape) is returned.</summary>
public sealed class NoPullRequests : IPullRequestProvider
{
    private readonly Uri? _repositoryUrl;

    public NoPullRequests(Uri? repositoryUrl) => _repositoryUrl = repositoryUrl;

    public Task<PullRequestInfo?> FindOrCreateAsync(PullRequestDraft draft, CancellationToken cancellationToken) => Task.FromResult<PullRequestInfo?>(null);

    public string? CompareUrl(PullRequestDraft draft)
    {
        if (_repositoryUrl is null || _repositoryUrl.Scheme == Uri.UriSchemeFile)
            return null;
        string root = _repositoryUrl.GetLeftPart(UriPartial.Path).TrimEnd('/');
        if (root.EndsWith(".git", StringComparison.Ordinal))
            root = root[..^4];
        return $"{root}/compare/{Uri.EscapeDataString(draft.Base)}...{Uri.EscapeDataString(draft.Head).Replace("%2F", "/")}";
    }
}

/// <summary>GitHub (and GitHub Enterprise through gitops.pr.base_url) via Octokit.</summary>
public sealed class GitHubPullRequests : IPullRequestProvider
{
    private readonly GitHubClient _client;
    private readonly string _owner;
    private readonly string _name;

    public GitHubPullRequests(PullRequestConfig config, string token)
    {
        var product = new Octokit.ProductHeaderValue("KfmRollback");
        var connection = new Connection(product, ApiBase(config.BaseUrl), new Octokit.Internal.InMemoryCredentialStore(new Credentials(token)),
            new CancellableHttpClient(), new Octokit.Internal.SimpleJsonSerializer());
        _client = new GitHubClient(connection);
        var parts = config.Repository!.Split('/');
        (_owner, _name) = (parts[0], parts[1]);
    }

    public async Task<PullRequestInfo?> FindOrCreateAsync(PullRequestDraft draft, CancellationToken cancellationToken)
    {
        using var scope = CancellableHttpClient.Use(cancellationToken);
        try
        {
            var open = await _client.PullRequest.GetAllForRepository(_owner, _name,
                new PullRequestRequest { State = ItemStateFilter.Open, Head = $"{_owner}:{draft.Head}", Base = draft.Base }).ConfigureAwait(false);
            var existing = open.FirstOrDefault(p => p.Head?.Ref == draft.Head);
            if (existing is not null)
                return new PullRequestInfo(existing.HtmlUrl, Created: false);
            var created = await _client.PullRequest.Create(_owner, _name, new NewPullRequest(draft.Title, draft.Head, draft.Base) { Body = draft.Body }).ConfigureAwait(false);
            return new PullRequestInfo(created.HtmlUrl, Created: true);
        }
        catch (ApiException e)
        {
            throw PullRequestProviders.Failed("GitHub", $"open the pull request (HTTP {(int)e.StatusCode})", e);
        }
    }

    public string? CompareUrl(PullRequestDraft draft) => null;

    /// <summary>GitHub Enterprise serves its API under /api/v3/ (as Octokit's GitHubClient(product, baseUrl) assumes).</summary>
    private static Uri ApiBase(Uri? baseUrl) =>
        baseUrl is null || baseUrl.Host is "github.com" or "api.github.com" ? GitHubClient.GitHubApiUrl : new Uri(baseUrl, "/api/v3/");

    /// <summary>
    /// Octokit's API takes no CancellationToken, but its transport does: the caller's token flows to
    /// every request of the call through an AsyncLocal, so Ctrl+C stops a slow GitHub at once.
    /// </summary>
    private sealed class CancellableHttpClient : Octokit.Internal.IHttpClient
    {
        private static readonly AsyncLocal<CancellationToken> s_current = new();
        private readonly Octokit.Internal.HttpClientAdapter _inner = new(Octokit.Internal.HttpMessageHandlerFactory.CreateDefault);

        public static IDisposable Use(CancellationToken token)
        {
            CancellationToken previous = s_current.Value;
            s_current.Value = token;
            return new Restore(previous);
        }

        public async Task<IResponse> Send(Octokit.Internal.IRequest request, CancellationToken cancellationToken, Func<object, object>? preprocessResponseBody = null)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, s_current.Value);
            return await _inner.Send(request, linked.Token, preprocessResponseBody).ConfigureAwait(false);
        }

        public void SetRequestTimeout(TimeSpan timeout) => _inner.SetRequestTimeout(timeout);

        public void Dispose() => _inner.Dispose();

        private sealed class Restore(CancellationToken previous) : IDisposable
        {
            public void Dispose() => s_current.Value = previous;
        }
    }
}

/// <summary>Azure DevOps Repos via REST (api-version 7.1): list by sourceRefName, else create.</summary>
public sealed class AzureDevOpsPullRequests : IPullRequestProvider
{
    private const string ApiVersion = "7.1";
    private readonly HttpClient _http;
    private readonly string _collection;

    public AzureDevOpsPullRequests(PullRequestConfig config, string token, HttpMessageHandler? handler = null)
    {
        var parts = config.Repository!.Split('/');
        var baseUrl = config.BaseUrl ?? new Uri("https://dev.azure.com/");
        _collection = $"{baseUrl.ToString().TrimEnd('/')}/{Uri.EscapeDataString(parts[0])}/{Uri.EscapeDataString(parts[1])}/_apis/git/repositories/{Uri.EscapeDataString(parts[2])}/pullrequests";
        _http = handler is null ? new HttpClient() : new HttpClient(handler);
        // A PAT goes in Basic auth with an empty user name, as Azure DevOps documents.
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(":" + token)));
        _http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("KfmRollback", "1.0"));
    }

    public async Task<PullRequestInfo?> FindOrCreateAsync(PullRequestDraft draft, CancellationToken cancellationToken)
    {
        string source = "refs/heads/" + draft.Head;
        string target = "refs/heads/" + draft.Base;
        var list = await Send(HttpMethod.Get, $"{_collection}?searchCriteria.sourceRefName={Uri.EscapeDataString(source)}&searchCriteria.status=active&api-version={ApiVersion}", null, cancellationToken).ConfigureAwait(false);
        if (list["value"] is JsonArray { Count: > 0 } existing)
            return new PullRequestInfo(WebUrl(existing[0]!), Created: false);
        var body = new JsonObject { ["sourceRefName"] = source, ["targetRefName"] = target, ["title"] = draft.Title, ["description"] = Truncate(draft.Body, 4000) };
        var created = await Send(HttpMethod.Post, $"{_collection}?api-version={ApiVersion}", body, cancellationToken).ConfigureAwait(false);
        return new PullRequestInfo(WebUrl(created), Created: true);
    }

    public string? CompareUrl(PullRequestDraft draft) => null;

    private async Task<JsonNode> Send(HttpMethod method, string url, JsonObject? body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, url);
        if (body is not null)
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw PullRequestProviders.Failed("Azure DevOps", "be reached", e);
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
                throw PullRequestProviders.Failed("Azure DevOps", $"open the pull request (HTTP {(int)response.StatusCode})");
            string text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                return JsonNode.Parse(text) ?? new JsonObject();
            }
            catch (JsonException e)
            {
                throw PullRequestProviders.Failed("Azure DevOps", "be understood (the answer was not JSON)", e);
            }
        }
    }

    /// <summary>The API's "url" is the REST resource; people need the web page, built from repository.webUrl and the id.</summary>
    private static string WebUrl(JsonNode pr)
    {
        string? web = pr["repository"]?["webUrl"]?.GetValue<string>();
        int? id = pr["pullRequestId"]?.GetValue<int>();
        return web is not null && id is not null ? $"{web}/pullrequest/{id}" : pr["url"]?.GetValue<string>() ?? "";
    }

    private static string Truncate(string text, int max) => text.Length <= max ? text : text[..max];
}
