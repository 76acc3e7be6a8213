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
internal sealed partial class StatuspageChannel : IUpdateChannel
{
    public const string PublicService = "https://api.statuspage.io/";
    private readonly ChannelHttp _http;

    public StatuspageChannel(ChannelHttp http) => _http = http;

    public string Name => _http.Channel.Name;
    public ChannelKind Kind => ChannelKind.Statuspage;

    public void Dispose() => _http.Dispose();

    public async Task<ChannelAnswer> PostAsync(ChannelMessage message, CancellationToken cancellationToken)
    {
        Uri baseUrl = _http.BaseUrl(PublicService);
        string key = _http.Secret();
        string pageId = _http.Channel.PageId!;
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
        var (answer, attempts, error) = await _http.SendAsync(() =>
        {
            var request = new HttpRequestMessage(create ? HttpMethod.Post : HttpMethod.Patch, url) { Content = ChannelHttp.Json(body) };
            request.Headers.Authorization = new AuthenticationHeaderValue("OAuth", key);
            return request;
        }, cancellationToken).ConfigureAwait(false);
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
