using System.Text.Json.Nodes;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Adapters.Channels;

/// <summary>
/// A Microsoft Teams Workflows webhook (a workflow whose trigger is "When a Teams webhook request is
/// received", which replaces the retiring Microsoft 365 connectors), following Microsoft's Teams
/// platform docs "Create and send messages" (webhooks-and-connectors/how-to/connectors-using:
/// Workflows take Adaptive Cards only, no MessageCard) and "Create an Incoming Webhook" / "Send Adaptive
/// Cards using an Incoming Webhook" (add-incoming-webhook: the card travels as the one attachment of a
/// message, <c>{"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","content":{…}}]}</c>;
/// more than four requests a second are throttled with 429, to be retried with backoff; 28 KB at most).
/// The workflow's trigger answers 202 Accepted (a connector webhook 200); both count as delivered.
/// </summary>
internal sealed class TeamsWorkflowChannel : HttpChannel
{
    public TeamsWorkflowChannel(ChannelHttp http) : base(http)
    {
    }

    public override ChannelKind Kind => ChannelKind.Teams;

    public override async Task<ChannelAnswer> PostAsync(ChannelMessage message, CancellationToken cancellationToken)
    {
        Uri url = Http.WebhookUrl();
        var card = new JsonObject
        {
            ["$schema"] = "http://adaptivecards.io/schemas/adaptive-card.json",
            ["type"] = "AdaptiveCard",
            ["version"] = "1.4",
            ["body"] = new JsonArray
            {
                new JsonObject { ["type"] = "TextBlock", ["text"] = message.Title, ["weight"] = "Bolder", ["size"] = "Medium", ["wrap"] = true },
                new JsonObject { ["type"] = "TextBlock", ["text"] = message.Text, ["wrap"] = true },
            },
        };
        var body = new JsonObject
        {
            ["type"] = "message",
            ["attachments"] = new JsonArray
            {
                new JsonObject { ["contentType"] = "application/vnd.microsoft.card.adaptive", ["contentUrl"] = null, ["content"] = card },
            },
        };
        var (answer, attempts, error) = await PostJsonAsync(url, body, cancellationToken).ConfigureAwait(false);
        bool delivered = answer is { Status: 200 or 202 };
        return new ChannelAnswer(delivered, answer?.Status, attempts, delivered ? null : error, null);
    }
}
