using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Adapters.Channels;

/// <summary>The one place that knows which channel adapters exist and which one a configured channel uses.</summary>
public static class UpdateChannels
{
    /// <summary>
    /// The adapter for <paramref name="channel"/>. Nothing is read or sent yet: the secret is read when a
    /// message is posted. <paramref name="handler"/> and <paramref name="delay"/> are for tests (the
    /// waits between retries are handed to <paramref name="delay"/> instead of slept).
    /// </summary>
    public static IUpdateChannel Open(CommsConfig comms, CommsChannelConfig channel, HttpMessageHandler? handler = null, Func<TimeSpan, CancellationToken, Task>? delay = null)
    {
        var http = new ChannelHttp(comms, channel, handler, delay);
        return channel.Kind switch
        {
            ChannelKind.Slack => new SlackWebhookChannel(http),
            ChannelKind.Teams => new TeamsWorkflowChannel(http),
            ChannelKind.Pagerduty => new PagerDutyChangeChannel(http),
            ChannelKind.Statuspage => new StatuspageChannel(http),
            _ => throw new ArgumentOutOfRangeException(nameof(channel), channel.Kind, "unknown channel kind"),
        };
    }
}
