using System.Text.Json.Nodes;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Adapters.Channels;

/// <summary>
/// A Slack incoming webhook (api.slack.com/messaging/webhooks): POST of JSON with <c>text</c> (the
/// notification and fallback) and <c>blocks</c> (a plain-text header and section, so nothing in the
/// text is read as mrkdwn). Slack answers 200 with the body <c>ok</c>; errors are 400/403/404/410 with
/// a token body (invalid_payload, no_text, channel_not_found, channel_is_archived, no_service), 429
/// with Retry-After when rate limited.
/// </summary>
internal sealed class SlackWebhookChannel : HttpChannel
{
    public SlackWebhookChannel(ChannelHttp http) : base(http)
    {
    }

    public override ChannelKind Kind => ChannelKind.Slack;

    public override async Task<ChannelAnswer> PostAsync(ChannelMessage message, CancellationToken cancellationToken)
    {
        Uri url = Http.WebhookUrl();
        var body = new JsonObject
        {
            ["text"] = $"{message.Title}: {message.Text}",
            ["blocks"] = new JsonArray
            {
                new JsonObject { ["type"] = "header", ["text"] = new JsonObject { ["type"] = "plain_text", ["text"] = message.Title } },
                new JsonObject { ["type"] = "section", ["text"] = new JsonObject { ["type"] = "plain_text", ["text"] = message.Text } },
            },
        };
        var (answer, attempts, error) = await PostJsonAsync(url, body, cancellationToken).ConfigureAwait(false);
        bool delivered = answer is { Status: 200 } && answer.Body.Trim() == "ok";
        return new ChannelAnswer(delivered, answer?.Status, attempts, delivered ? null : error ?? ChannelHttp.Token(answer!.Body), null);
    }
}
