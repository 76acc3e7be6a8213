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
internal sealed class PagerDutyChangeChannel : HttpChannel
{
    public const string PublicService = "https://events.pagerduty.com/";
    private const int SummaryLimit = 1024;
    public PagerDutyChangeChannel(ChannelHttp http) : base(http)
    {
    }

    public override ChannelKind Kind => ChannelKind.Pagerduty;

    public override async Task<ChannelAnswer> PostAsync(ChannelMessage message, CancellationToken cancellationToken)
    {
        Uri url = new(Http.BaseUrl(PublicService), "v2/change/enqueue");
        string routingKey = Http.Secret();
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
                ["source"] = Http.Channel.Source ?? "kfm-rollback",
                ["custom_details"] = details,
            },
        };
        var (answer, attempts, error) = await PostJsonAsync(url, body, cancellationToken).ConfigureAwait(false);
        bool delivered = answer is { Status: 202 };
        return new ChannelAnswer(delivered, answer?.Status, attempts, delivered ? null : error, null);
    }
}
