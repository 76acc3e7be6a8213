using KfmRollback.Engine.Adapters.Git;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using Octokit;

namespace KfmRollback.Engine.Adapters.PullRequests;

/// <summary>A pull request as the provider reports it.</summary>
public sealed record PullRequestInfo(string Url, bool Created);

/// <summary>What to open: head branch into base branch, with title and body.</summary>
public sealed record PullRequestDraft(string Head, string Base, string Title, string Body);

public enum PullRequestState
{
    Open,
    Merged,
    /// <summary>Closed (GitHub) or abandoned (Azure DevOps) without merging.</summary>
    Closed,
    NotFound,
}

/// <summary>How the module merges a rollback PR (Invoke-KfmRollback -MergeWith).</summary>
public enum MergeStrategy
{
    Squash,
    Merge,
}

/// <summary>
/// A pull request's state: merged with which commit, how many approvals it has on the expected head
/// commit (approvals given to other commits do not count), and the head commit it holds now (null when
/// the provider does not say).
/// </summary>
public sealed record PullRequestStatus(PullRequestState State, string? MergeCommit, int Approvals, string? Url, string? HeadSha = null)
{
    /// <summary>True when the PR's head is known and is not the commit the module pushed.</summary>
    public bool HeadMovedFrom(string expectedHead) => HeadSha is not null && !string.Equals(HeadSha, expectedHead, StringComparison.OrdinalIgnoreCase);
}

/// <summary>
/// One code host's PR API. FindOrCreate first looks for an open PR from the same head branch, so
/// a rerun for the same incident returns the existing PR instead of opening a second one.
/// </summary>
public interface IPullRequestProvider
{
    Task<PullRequestInfo?> FindOrCreateAsync(PullRequestDraft draft, CancellationToken cancellationToken);

    /// <summary>A URL people open to see or start the change (compare view, or null when unknown).</summary>
    string? CompareUrl(PullRequestDraft draft);

    /// <summary>
    /// The newest PR from <paramref name="head"/> into <paramref name="base"/>, its approvals counted on
    /// <paramref name="expectedHead"/> (the commit the module pushed) only; null when the provider has no
    /// PR API (Git decides then).
    /// </summary>
    Task<PullRequestStatus?> GetStatusAsync(string head, string @base, string expectedHead, CancellationToken cancellationToken);

    /// <summary>
    /// Merges the open PR through the provider's merge API, so branch protection applies, and only while
    /// its head is <paramref name="expectedHead"/> (GitHub's merge <c>sha</c>, Azure DevOps'
    /// lastMergeSourceCommit): a commit pushed since is never merged unseen. A refusal is
    /// GitOpsMergeRefused with the provider's reason. Null when the provider has no PR API.
    /// </summary>
    Task<PullRequestStatus?> MergeAsync(string head, string @base, string expectedHead, MergeStrategy strategy, CancellationToken cancellationToken);
}

public static class PullRequestProviders
{
    public static IPullRequestProvider For(PullRequestConfig config, Uri? repositoryUrl, HttpMessageHandler? handler = null) => config.Provider switch
    {
        PrProvider.Github => new GitHubPullRequests(config, Token(config)),
        PrProvider.AzureDevops => new AzureDevOpsPullRequests(config, Token(config), handler),
        _ => new NoPullRequests(repositoryUrl),
    };

    /// <summary>The tracker's API token, read only when its base URL may carry it (Core/Transport).</summary>
    internal static string Token(TrackerConfig config, string section = "gitops.pr")
    {
        if (config.BaseUrl is { } baseUrl)
            Transport.EnsureCredentialsAllowed(baseUrl, section + ".base_url");
        string? token = SecretReference.Read(config.TokenEnv, config.TokenFile);
        if (string.IsNullOrWhiteSpace(token))
            throw new KfmException(GitOpsErrorIds.TokenUnavailable, KfmErrorKind.InvalidArgument,
                $"The PR token ({(config.TokenEnv is not null ? "$" + config.TokenEnv : config.TokenFile)}) is not available. Set gitops.pr.token_env or token_file.");
        return token.Trim();
    }

    internal static KfmException Refused(string provider, string why, Exception? inner = null) =>
        new(GitOpsErrorIds.MergeRefused, KfmErrorKind.PermissionDenied,
            $"{provider} refused to merge the rollback pull request: {why}. Branch protection decides; get the approvals or checks it asks for, or merge it in {provider}.", provider, inner);

    /// <summary>The rollback branch no longer holds the commit the module pushed: nothing is merged or deployed.</summary>
    internal static KfmException HeadMoved(string provider, string branch, string expected, string actual) =>
        new(GitOpsErrorIds.PullRequestHeadMoved, KfmErrorKind.SecurityError,
            $"The rollback pull request from {branch} ({provider}) now ends at {Short(actual)}, not at {Short(expected)}, the commit the module pushed and planned. " +
            "Nothing was merged or deployed: someone changed the branch. Check who and why; to go on, close that pull request, delete the branch and run Invoke-KfmRollback again.", branch);

    private static string Short(string sha) => sha.Length > 12 ? sha[..12] : sha;

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

    public Task<PullRequestStatus?> GetStatusAsync(string head, string @base, string expectedHead, CancellationToken cancellationToken) => Task.FromResult<PullRequestStatus?>(null);

    public Task<PullRequestStatus?> MergeAsync(string head, string @base, string expectedHead, MergeStrategy strategy, CancellationToken cancellationToken) => Task.FromResult<PullRequestStatus?>(null);

    public string? CompareUrl(PullRequestDraft draft)
    {
        if (_repositoryUrl is null || _repositoryUrl.Scheme == Uri.UriSchemeFile)
            return null;
        // The clone URL may carry user info (a token as the user name): the link people open never does.
        var withoutUser = new UriBuilder(_repositoryUrl) { UserName = string.Empty, Password = string.Empty, Query = string.Empty, Fragment = string.Empty }.Uri;
        string root = withoutUser.GetLeftPart(UriPartial.Path).TrimEnd('/');
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

    public async Task<PullRequestStatus?> GetStatusAsync(string head, string @base, string expectedHead, CancellationToken cancellationToken)
    {
        using var scope = CancellableHttpClient.Use(cancellationToken);
        var (pr, status) = await FindAsync(head, @base, expectedHead).ConfigureAwait(false);
        return status;
    }

    public async Task<PullRequestStatus?> MergeAsync(string head, string @base, string expectedHead, MergeStrategy strategy, CancellationToken cancellationToken)
    {
        using var scope = CancellableHttpClient.Use(cancellationToken);
        var (pr, status) = await FindAsync(head, @base, expectedHead).ConfigureAwait(false);
        if (pr is null || status.State != PullRequestState.Open)
            return status;
        if (status.HeadMovedFrom(expectedHead))
            throw PullRequestProviders.HeadMoved("GitHub", head, expectedHead, status.HeadSha!);
        try
        {
            var merged = await _client.PullRequest.Merge(_owner, _name, pr.Number, new MergePullRequest
            {
                MergeMethod = strategy == MergeStrategy.Squash ? PullRequestMergeMethod.Squash : PullRequestMergeMethod.Merge,
                // GitHub refuses (409) unless the head is still exactly the commit the module pushed and was approved.
                Sha = expectedHead,
            }).ConfigureAwait(false);
            if (!merged.Merged)
                throw PullRequestProviders.Refused("GitHub", merged.Message ?? "not merged");
            return status with { State = PullRequestState.Merged, MergeCommit = merged.Sha };
        }
        catch (ApiException e)
        {
            throw PullRequestProviders.Refused("GitHub", $"HTTP {(int)e.StatusCode}: {e.Message}", e);
        }
    }

    private async Task<(Octokit.PullRequest? Pr, PullRequestStatus Status)> FindAsync(string head, string @base, string expectedHead)
    {
        try
        {
            var all = await _client.PullRequest.GetAllForRepository(_owner, _name,
                new PullRequestRequest { State = ItemStateFilter.All, Head = $"{_owner}:{head}", Base = @base }).ConfigureAwait(false);
            var pr = all.Where(p => p.Head?.Ref == head).OrderByDescending(p => p.Number).FirstOrDefault();
            if (pr is null)
                return (null, new PullRequestStatus(PullRequestState.NotFound, null, 0, null));
            string? headSha = pr.Head?.Sha;
            if (pr.MergedAt is not null)
                return (pr, new PullRequestStatus(PullRequestState.Merged, pr.MergeCommitSha, 0, pr.HtmlUrl, headSha));
            if (pr.State.Value == ItemState.Closed)
                return (pr, new PullRequestStatus(PullRequestState.Closed, null, 0, pr.HtmlUrl, headSha));
            var reviews = await _client.PullRequest.Review.GetAll(_owner, _name, pr.Number).ConfigureAwait(false);
            // A reviewer's latest verdict counts (comments change none), and only when it was given on the
            // commit the module pushed (the review's commit_id): an approval of an earlier or a later
            // commit approves something else.
            int approvals = reviews
                .Where(r => r.State.Value is PullRequestReviewState.Approved or PullRequestReviewState.ChangesRequested or PullRequestReviewState.Dismissed)
                .GroupBy(r => r.User?.Login)
                .Count(g => g.Last() is { } last && last.State.Value == PullRequestReviewState.Approved
                            && string.Equals(last.CommitId, expectedHead, StringComparison.OrdinalIgnoreCase));
            return (pr, new PullRequestStatus(PullRequestState.Open, null, approvals, pr.HtmlUrl, headSha));
        }
        catch (ApiException e)
        {
            throw PullRequestProviders.Failed("GitHub", $"report the pull request's state (HTTP {(int)e.StatusCode})", e);
        }
    }

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

    public async Task<PullRequestStatus?> GetStatusAsync(string head, string @base, string expectedHead, CancellationToken cancellationToken)
    {
        var pr = await FindAsync(head, cancellationToken).ConfigureAwait(false);
        return Status(pr, await OnlyIterationsOfAsync(pr, expectedHead, cancellationToken).ConfigureAwait(false));
    }

    public async Task<PullRequestStatus?> MergeAsync(string head, string @base, string expectedHead, MergeStrategy strategy, CancellationToken cancellationToken)
    {
        var pr = await FindAsync(head, cancellationToken).ConfigureAwait(false);
        var status = Status(pr, await OnlyIterationsOfAsync(pr, expectedHead, cancellationToken).ConfigureAwait(false));
        if (pr is null || status.State != PullRequestState.Open)
            return status;
        if (status.HeadMovedFrom(expectedHead))
            throw PullRequestProviders.HeadMoved("Azure DevOps", head, expectedHead, status.HeadSha!);
        // Completing the PR is Azure DevOps' merge API: branch policies are evaluated and can refuse it,
        // and lastMergeSourceCommit must still be the source's head, the commit the module pushed.
        var body = new JsonObject
        {
            ["status"] = "completed",
            ["lastMergeSourceCommit"] = new JsonObject { ["commitId"] = expectedHead },
            ["completionOptions"] = new JsonObject { ["mergeStrategy"] = strategy == MergeStrategy.Squash ? "squash" : "noFastForward", ["deleteSourceBranch"] = false },
        };
        var updated = await Send(HttpMethod.Patch, $"{_collection}/{pr["pullRequestId"]}?api-version={ApiVersion}", body, cancellationToken, refusal: true).ConfigureAwait(false);
        return Status(updated, votesOnExpected: true);
    }

    /// <summary>
    /// Whether every push to the PR's source (its iterations) was the commit the module pushed. Azure
    /// DevOps keeps a reviewer's vote across pushes unless a branch policy resets it, and the vote does
    /// not say which commit it was given on: votes count only when the branch never held anything else.
    /// </summary>
    private async Task<bool> OnlyIterationsOfAsync(JsonNode? pr, string expectedHead, CancellationToken cancellationToken)
    {
        if (pr?["pullRequestId"] is not { } id || pr["status"]?.GetValue<string>() != "active")
            return false;
        var iterations = await Send(HttpMethod.Get, $"{_collection}/{id}/iterations?api-version={ApiVersion}", null, cancellationToken).ConfigureAwait(false);
        var commits = (iterations["value"] as JsonArray)?.Select(i => i?["sourceRefCommit"]?["commitId"]?.GetValue<string>()).ToList();
        return commits is { Count: > 0 } && commits.All(c => string.Equals(c, expectedHead, StringComparison.OrdinalIgnoreCase));
    }

    private async Task<JsonNode?> FindAsync(string head, CancellationToken cancellationToken)
    {
        var list = await Send(HttpMethod.Get, $"{_collection}?searchCriteria.sourceRefName={Uri.EscapeDataString("refs/heads/" + head)}&searchCriteria.status=all&api-version={ApiVersion}", null, cancellationToken).ConfigureAwait(false);
        return (list["value"] as JsonArray)?.Where(p => p is not null).OrderByDescending(p => p!["pullRequestId"]?.GetValue<int>() ?? 0).FirstOrDefault();
    }

    /// <summary>
    /// active / completed (lastMergeCommit) / abandoned; approvals are reviewer votes of 10 (approved) or
    /// 5 (approved with suggestions), counted only when <paramref name="votesOnExpected"/> (the source
    /// never held another commit); the head is lastMergeSourceCommit.
    /// </summary>
    private static PullRequestStatus Status(JsonNode? pr, bool votesOnExpected)
    {
        if (pr is null)
            return new PullRequestStatus(PullRequestState.NotFound, null, 0, null);
        int approvals = votesOnExpected ? (pr["reviewers"] as JsonArray)?.Count(r => (r?["vote"]?.GetValue<int>() ?? 0) >= 5) ?? 0 : 0;
        string? head = pr["lastMergeSourceCommit"]?["commitId"]?.GetValue<string>();
        return pr["status"]?.GetValue<string>() switch
        {
            "completed" => new PullRequestStatus(PullRequestState.Merged, pr["lastMergeCommit"]?["commitId"]?.GetValue<string>(), approvals, WebUrl(pr), head),
            "abandoned" => new PullRequestStatus(PullRequestState.Closed, null, approvals, WebUrl(pr), head),
            _ => new PullRequestStatus(PullRequestState.Open, null, approvals, WebUrl(pr), head),
        };
    }

    private async Task<JsonNode> Send(HttpMethod method, string url, JsonObject? body, CancellationToken cancellationToken, bool refusal = false)
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
            {
                if (refusal)
                {
                    string why = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                    string? message = null;
                    try { message = JsonNode.Parse(why)?["message"]?.GetValue<string>(); } catch (JsonException) { }
                    throw PullRequestProviders.Refused("Azure DevOps", $"HTTP {(int)response.StatusCode}{(message is null ? "" : ": " + message)}");
                }
                throw PullRequestProviders.Failed("Azure DevOps", $"{(method == HttpMethod.Get ? "report" : "open")} the pull request (HTTP {(int)response.StatusCode})");
            }
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
