using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Adapters.Channels;

/// <summary>
/// An Atlassian Statuspage incident (developer.statuspage.io, "Create an incident", "Update an
/// incident"): the first message creates it with POST <c>/v1/pages/{page_id}/incidents</c>, each later
/// one updates it with PATCH <c>/v1/pages/{page_id}/incidents/{incident_id}</c>; the body is
/// <c>{"incident":{"name","status","body"}}</c>, the key goes in <c>Authorization: OAuth &lt;key&gt;</c>.
/// Statuses: identified, monitoring, resolved. Statuspage answers 201 (created, with the incident's
/// <c>id</c>) or 200 (updated); 401/404/422 are final, 420/429 mean rate limited.
/// </summary>
internal sealed partial class StatuspageChannel : HttpChannel
{
    public const string PublicService = "https://api.statuspage.io/";

    public StatuspageChannel(ChannelHttp http) : base(http)
    {
    }

    public override ChannelKind Kind => ChannelKind.Statuspage;

    public override async Task<ChannelAnswer> PostAsync(ChannelMessage message, CancellationToken cancellationToken)
    {
        Uri baseUrl = Http.BaseUrl(PublicService);
        string key = Http.Secret();
        string pageId = Http.Channel.PageId!;
        bool create = message.ThreadId is null;
        if (!create && !IdRule().IsMatch(message.ThreadId!))
        {
            return new ChannelAnswer(false, null, 0, "recorded incident id is not a Statuspage id", null);
        }
        Uri url = new(baseUrl, create ? $"v1/pages/{pageId}/incidents" : $"v1/pages/{pageId}/incidents/{message.ThreadId}");
        var incident = new JsonObject
        {
            ["status"] = message.Status switch { ChannelStatus.Monitoring => "monitoring", ChannelStatus.Resolved => "resolved", _ => "identified" },
            ["body"] = message.Text,
        };
        if (create)
        {
            incident["name"] = message.Title;
        }
        var body = new JsonObject { ["incident"] = incident };
        var (answer, attempts, error) = await Http.SendAsync(() =>
        {
            var request = new HttpRequestMessage(create ? HttpMethod.Post : HttpMethod.Patch, url) { Content = ChannelHttp.Json(body) };
            request.Headers.Authorization = new AuthenticationHeaderValue("OAuth", key);
            return request;
        }, cancellationToken, create ? ct => FindCreatedAsync(baseUrl, key, pageId, message, ct) : null).ConfigureAwait(false);
        if (answer is null || answer.Status is < 200 or > 299)
        {
            return new ChannelAnswer(false, answer?.Status, attempts, error, message.ThreadId);
        }
        string? id = IncidentId(answer.Body);
        if (create && id is null)
        {
            return new ChannelAnswer(false, answer.Status, attempts, "answer named no incident id", null);
        }
        return new ChannelAnswer(true, answer.Status, attempts, null, id ?? message.ThreadId);
    }

    /// <summary>
    /// A create that failed without a rate limit (a 5xx, a timeout, a connection cut mid-answer) may still
    /// have created the incident, and Statuspage takes no idempotency key: a second POST would put a
    /// second incident on the public page. So before a retry this reads the page's unresolved incidents
    /// ("Get a list of unresolved incidents", GET <c>/v1/pages/{page_id}/incidents/unresolved</c>) and
    /// takes the one this message created (same name, an update with this text, created since the
    /// message was composed, allowing for clock skew). When that list cannot be read, nothing is sent again.
    /// </summary>
    private async Task<ChannelHttpAnswer?> FindCreatedAsync(Uri baseUrl, string key, string pageId, ChannelMessage message, CancellationToken cancellationToken)
    {
        Uri url = new(baseUrl, $"v1/pages/{pageId}/incidents/unresolved");
        var (answer, error) = await Http.AttemptAsync(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Get, url);
            request.Headers.Authorization = new AuthenticationHeaderValue("OAuth", key);
            return request;
        }, cancellationToken).ConfigureAwait(false);
        if (answer is null || answer.Status != 200 || Unresolved(answer.Body) is not { } incidents)
        {
            throw new UnconfirmedException($"create unconfirmed and not retried: the unresolved incidents could not be read ({error ?? $"HTTP {answer!.Status}"})");
        }
        DateTimeOffset since = message.At - CreatedSkew;
        foreach (JsonObject incident in incidents.OfType<JsonObject>())
        {
            bool same = (string?)incident["name"] == message.Title
                && incident["created_at"] is JsonValue created && created.TryGetValue(out string? at)
                && DateTimeOffset.TryParse(at, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out DateTimeOffset createdAt)
                && createdAt >= since
                && incident["incident_updates"] is JsonArray updates
                && updates.OfType<JsonObject>().Any(u => (string?)u["body"] == message.Text);
            if (same && incident["id"] is JsonValue v && v.TryGetValue(out string? id) && IdRule().IsMatch(id))
            {
                return new ChannelHttpAnswer(201, new JsonObject { ["id"] = id }.ToJsonString(), null);
            }
        }
        return null;
    }

    /// <summary>How far the status page's clock may be behind the one that stamped the message.</summary>
    private static readonly TimeSpan CreatedSkew = TimeSpan.FromMinutes(5);

    private static JsonArray? Unresolved(string body)
    {
        try
        {
            return JsonNode.Parse(body) as JsonArray;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string? IncidentId(string body)
    {
        try
        {
            return JsonNode.Parse(body) is JsonObject o && o["id"] is JsonValue v && v.TryGetValue(out string? id) && IdRule().IsMatch(id) ? id : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    [GeneratedRegex("^[A-Za-z0-9]{1,64}$", RegexOptions.CultureInvariant)]
    private static partial Regex IdRule();
}
