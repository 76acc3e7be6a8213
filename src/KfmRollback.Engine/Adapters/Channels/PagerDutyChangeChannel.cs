using System.Globalization;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Adapters.Channels;

/// <summary>
/// PagerDuty Events API v2 change events (developer.pagerduty.com, "Send Change Events"): POST
/// <c>/v2/change/enqueue</c> with <c>routing_key</c> and <c>payload</c> (<c>summary</c> up to 1024
/// characters, <c>timestamp</c>, <c>source</c>, <c>custom_details</c>). PagerDuty answers 202 with
/// <c>{"status":"success",…}</c>; 400 for an invalid event, 429 when rate limited, 5xx to retry.
/// </summary>
internal sealed class PagerDutyChangeChannel : IUpdateChannel
{
    public const string PublicService = "https://events.pagerduty.com/";
    private const int SummaryLimit = 1024;
    private readonly ChannelHttp _http;

    public PagerDutyChangeChannel(ChannelHttp http) => _http = http;

    public string Name => _http.Channel.Name;
    public ChannelKind Kind => ChannelKind.Pagerduty;

    public void Dispose() => _http.Dispose();

    public async Task<ChannelAnswer> PostAsync(ChannelMessage message, CancellationToken cancellationToken)
    {
        Uri url = new(_http.BaseUrl(PublicService), "v2/change/enqueue");
        string routingKey = _http.Secret();
        string summary = message.Text.Length <= SummaryLimit ? message.Text : message.Text[..(SummaryLimit - 1)] + "…";
        var details = new JsonObject { ["title"] = message.Title, ["status"] = message.Status.ToString().ToLowerInvariant() };
        foreach (var (key, value) in message.Details)
        {
            details[key] = value;
        }
        var body = new JsonObject
        {
            ["routing_key"] = routingKey,
            ["payload"] = new JsonObject
            {
                ["summary"] = summary,
                ["timestamp"] = message.At.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
                ["source"] = _http.Channel.Source ?? "kfm-rollback",
                ["custom_details"] = details,
            },
        };
        var (answer, attempts, error) = await _http.SendAsync(() => new HttpRequestMessage(HttpMethod.Post, url) { Content = ChannelHttp.Json(body) }, cancellationToken).ConfigureAwait(false);
        bool delivered = answer is { Status: 202 };
        return new ChannelAnswer(delivered, answer?.Status, attempts, delivered ? null : error, null);
    }
}
