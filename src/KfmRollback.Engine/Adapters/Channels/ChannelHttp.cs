using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Configuration.Binding;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Adapters.Channels;

/// <summary>One HTTP answer of a channel's API: status, body (read for documented fields only) and Retry-After.</summary>
internal sealed record ChannelHttpAnswer(int Status, string Body, RetryConditionHeaderValue? RetryAfter);

/// <summary>
/// What every channel adapter shares: its secret read by reference, and requests retried within
/// bounds: a 429 after the Retry-After it names (at most <see cref="MaxRetryAfter"/>), a 5xx, a
/// timeout or a dropped connection after a doubling backoff; any other answer is final.
/// </summary>
internal sealed partial class ChannelHttp : IDisposable
{
    /// <summary>A Retry-After longer than this ends the retries: an incident update that late is news to nobody.</summary>
    public static readonly TimeSpan MaxRetryAfter = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    private readonly HttpClient _http;
    private readonly int _attempts;
    private readonly Func<TimeSpan, CancellationToken, Task> _delay;

    public ChannelHttp(CommsConfig comms, CommsChannelConfig channel, HttpMessageHandler? handler, Func<TimeSpan, CancellationToken, Task>? delay)
    {
        Channel = channel;
        // No redirects: a webhook that answers 3xx would carry the secret's request elsewhere.
        _http = new HttpClient(handler ?? new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false }, disposeHandler: handler is null)
        {
            Timeout = comms.Timeout,
        };
        _attempts = comms.Attempts;
        _delay = delay ?? Task.Delay;
    }

    public CommsChannelConfig Channel { get; }

    /// <summary>The channel's secret (webhook URL, routing key, API key), read now from its environment variable or file.</summary>
    public string Secret()
    {
        string key = Channel.SecretEnv is not null ? "secret_env" : "secret_file";
        string where = Channel.SecretEnv is { } env ? $"environment variable {env}" : $"file '{Channel.SecretFile}'";
        return SecretReference.Read(Channel.SecretEnv, Channel.SecretFile)
            ?? throw new KfmException("CommsSecretMissing", KfmErrorKind.ObjectNotFound,
                $"Channel {Channel.Name} ({ConfigSchema.YamlName(Channel.Kind)}): its {CommsChannelConfig.SecretWhat(Channel.Kind)} is read from {where} (comms.channels[].{key}), which is not set or is empty. Set it and rerun; nothing was posted to {Channel.Name}.",
                Channel.Name);
    }

    /// <summary>The webhook URL held by the secret, checked by the transport rule; neither the URL nor any part of it is ever named.</summary>
    public Uri WebhookUrl()
    {
        string value = Secret();
        if (!Uri.TryCreate(value, UriKind.Absolute, out Uri? url) || (url.Scheme != Uri.UriSchemeHttps && url.Scheme != Uri.UriSchemeHttp))
        {
            throw new KfmException("CommsWebhookUrlInvalid", KfmErrorKind.InvalidArgument,
                $"Channel {Channel.Name}: its secret is not an absolute http(s) URL. Put the webhook URL the service gave you, and nothing else, in the secret (comms.channels[].secret_env or secret_file).", Channel.Name);
        }
        CheckTransport(url, "webhook URL");
        return url;
    }

    /// <summary>The API base URL (base_url, else the public service's), checked by the transport rule.</summary>
    public Uri BaseUrl(string publicService)
    {
        Uri url = Channel.BaseUrl ?? new Uri(publicService);
        CheckTransport(url, "base_url");
        return url;
    }

    private void CheckTransport(Uri url, string what)
    {
        if (Transport.Refusal(url) is { } why)
        {
            throw new KfmException("InsecureTransport", KfmErrorKind.SecurityError,
                $"Channel {Channel.Name}: its {what} would carry the channel's secret, and {why}. Use the https:// URL the service gives.", Channel.Name);
        }
    }

    /// <summary>JSON content as the APIs document it (application/json, UTF-8).</summary>
    public static HttpContent Json(JsonNode body) =>
        new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");

    /// <summary>
    /// Sends the request <paramref name="build"/> makes (once per attempt) until an answer is final or
    /// the attempts run out. Returns the last answer (null when none came), the attempts made and, when
    /// none came, why ("timeout", "connection refused").
    /// <paramref name="beforeRetry"/> is for a request that is not idempotent (a create): an attempt that
    /// failed other than by a rate limit may still have been carried out, so before each retry it looks
    /// for the result; an answer it returns is final (no second create), and an exception it throws
    /// (<see cref="UnconfirmedException"/>) ends the retries.
    /// </summary>
    public async Task<(ChannelHttpAnswer? Answer, int Attempts, string? Error)> SendAsync(Func<HttpRequestMessage> build, CancellationToken cancellationToken,
        Func<CancellationToken, Task<ChannelHttpAnswer?>>? beforeRetry = null)
    {
        TimeSpan backoff = FirstBackoff;
        for (int attempt = 1; ; attempt++)
        {
            var (last, error) = await AttemptAsync(build, cancellationToken).ConfigureAwait(false);
            TimeSpan? wait = last is null ? backoff : RetryWait(last, backoff);
            if (wait is null || attempt >= _attempts)
            {
                return (last, attempt, error);
            }
            await _delay(wait.Value, cancellationToken).ConfigureAwait(false);
            backoff = backoff * 2 > MaxBackoff ? MaxBackoff : backoff * 2;
            if (beforeRetry is not null && !RateLimited(last))
            {
                try
                {
                    if (await beforeRetry(cancellationToken).ConfigureAwait(false) is { } found)
                    {
                        return (found, attempt, null);
                    }
                }
                catch (UnconfirmedException unconfirmed)
                {
                    return (last, attempt, unconfirmed.Message);
                }
            }
        }
    }

    /// <summary>One request, no retry: the answer, or why none came.</summary>
    public async Task<(ChannelHttpAnswer? Answer, string? Error)> AttemptAsync(Func<HttpRequestMessage> build, CancellationToken cancellationToken)
    {
        try
        {
            using HttpRequestMessage request = build();
            using HttpResponseMessage response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            string body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            return (new ChannelHttpAnswer((int)response.StatusCode, body, response.Headers.RetryAfter), null);
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (null, "timeout");
        }
        catch (HttpRequestException e)
        {
            return (null, Describe(e));
        }
    }

    /// <summary>A rate-limit answer: the request was refused, not carried out, so sending it again cannot duplicate it.</summary>
    private static bool RateLimited(ChannelHttpAnswer? answer) =>
        answer?.Status is (int)HttpStatusCode.TooManyRequests or 420;

    /// <summary>How long to wait before trying again, or null when the answer is final.</summary>
    private static TimeSpan? RetryWait(ChannelHttpAnswer answer, TimeSpan backoff)
    {
        // 420 is Statuspage's older rate-limit answer, documented beside 429.
        if (answer.Status is (int)HttpStatusCode.TooManyRequests or 420 or (int)HttpStatusCode.ServiceUnavailable)
        {
            if (answer.RetryAfter is null) return backoff;
            TimeSpan asked = RetryAfter.Delay(answer.RetryAfter, backoff, TimeSpan.MaxValue, DateTimeOffset.UtcNow);
            return asked > MaxRetryAfter ? null : asked;
        }
        return answer.Status >= 500 ? backoff : null;
    }

    /// <summary>A dropped connection in a few fixed words (the exception's message can name the host).</summary>
    private static string Describe(HttpRequestException e) => e.HttpRequestError switch
    {
        HttpRequestError.ConnectionError => "connection refused or dropped",
        HttpRequestError.NameResolutionError => "host name not resolved",
        HttpRequestError.SecureConnectionError => "TLS handshake failed",
        HttpRequestError.ResponseEnded => "connection closed mid-answer",
        _ => "request failed",
    };

    /// <summary>An error token an API documents (invalid_payload, channel_not_found), or null for any other body.</summary>
    public static string? Token(string body)
    {
        string trimmed = body.Trim();
        return TokenRule().IsMatch(trimmed) ? trimmed : null;
    }

    [GeneratedRegex("^[a-z][a-z_]{1,47}$", RegexOptions.CultureInvariant)]
    private static partial Regex TokenRule();

    public void Dispose() => _http.Dispose();
}

/// <summary>A non-idempotent request's result could not be looked up, so it is not sent again; the message says so in a few fixed words.</summary>
internal sealed class UnconfirmedException(string message) : Exception(message);
