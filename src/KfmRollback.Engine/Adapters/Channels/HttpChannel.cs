using System.Text.Json.Nodes;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Adapters.Channels;

/// <summary>
/// What the HTTP channels share (Slack, Teams, PagerDuty, Statuspage): its <see cref="ChannelHttp"/> (retries, secrets,
/// transport rule), its configured name, and a JSON POST (Statuspage, which also PATCHes with its own header,
/// sends through <see cref="Http"/> itself). A channel file says only what its API takes and what counts as delivered.
/// </summary>
internal abstract class HttpChannel : IUpdateChannel
{
    protected HttpChannel(ChannelHttp http) => Http = http;

    protected ChannelHttp Http { get; }

    public string Name => Http.Channel.Name;
    public abstract ChannelKind Kind { get; }

    public void Dispose() => Http.Dispose();

    public abstract Task<ChannelAnswer> PostAsync(ChannelMessage message, CancellationToken cancellationToken);

    /// <summary>POSTs <paramref name="body"/> as JSON to <paramref name="url"/>, retried within the channel's bounds.</summary>
    protected Task<(ChannelHttpAnswer? Answer, int Attempts, string? Error)> PostJsonAsync(Uri url, JsonNode body, CancellationToken cancellationToken) =>
        Http.SendAsync(() => new HttpRequestMessage(HttpMethod.Post, url) { Content = ChannelHttp.Json(body) }, cancellationToken);
}
