using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Adapters.Channels;

/// <summary>How far along the matter a message reports, in the terms status pages use.</summary>
public enum ChannelStatus
{
    /// <summary>The cause is known and being worked on.</summary>
    Identified,
    /// <summary>A fix is in place and being watched.</summary>
    Monitoring,
    /// <summary>Over.</summary>
    Resolved,
}

/// <summary>
/// One message for a channel: a fixed title, the text, the status, when, and a few fixed-vocabulary
/// details. <paramref name="ThreadId"/> is what the channel answered to an earlier message of the same
/// matter (a Statuspage incident id), for channels that update one record instead of adding messages.
/// </summary>
public sealed record ChannelMessage(string Title, string Text, ChannelStatus Status, DateTimeOffset At,
    IReadOnlyDictionary<string, string> Details, string? ThreadId);

/// <summary>
/// What a channel answered: delivered or not, the last HTTP status (null when no answer came), how
/// many requests were sent, a short error token the API documents (Slack's <c>channel_not_found</c>,
/// "timeout", "connection refused"), and the id of the record the channel keeps (Statuspage).
/// Never the URL, a key or the answer's body.
/// </summary>
public sealed record ChannelAnswer(bool Delivered, int? StatusCode, int Attempts, string? Error, string? ThreadId);

/// <summary>A place people read incident updates: a chat webhook, a paging service, a status page.</summary>
public interface IUpdateChannel : IDisposable
{
    /// <summary>The configured name (shown instead of the URL).</summary>
    string Name { get; }

    ChannelKind Kind { get; }

    /// <summary>Sends <paramref name="message"/>, retried within the channel's bounds; throws KfmException only for configuration the operator must fix (a missing secret).</summary>
    Task<ChannelAnswer> PostAsync(ChannelMessage message, CancellationToken cancellationToken);
}
