using System.Net;

namespace KfmRollback.Engine.Core;

/// <summary>
/// The one transport rule: credentials (a bearer token, a PAT, a password) never travel over plain
/// HTTP, except to a loopback host (test servers on this machine). It is checked where the
/// configuration is read (ConfigInvalidValue, with file:line) and again where a credential is attached
/// to a request, so a URL built in code obeys it too.
/// </summary>
public static class Transport
{
    /// <summary>True for localhost, 127.0.0.0/8 and ::1.</summary>
    public static bool IsLoopback(Uri uri) =>
        uri.IsLoopback || (IPAddress.TryParse(uri.Host.Trim('[', ']'), out IPAddress? ip) && IPAddress.IsLoopback(ip));

    /// <summary>True when a credential may be sent to <paramref name="uri"/>: https, or http to a loopback host.</summary>
    public static bool CarriesCredentialsSafely(Uri uri) =>
        uri.Scheme == Uri.UriSchemeHttps || (uri.Scheme == Uri.UriSchemeHttp && IsLoopback(uri));

    /// <summary>Why <paramref name="uri"/> cannot carry a credential, or null when it can.</summary>
    public static string? Refusal(Uri uri) =>
        CarriesCredentialsSafely(uri) ? null
            : uri.Scheme == Uri.UriSchemeHttp ? "plain http:// carries credentials unencrypted; only a loopback host may be reached that way"
            : $"the {uri.Scheme} scheme cannot carry credentials";

    /// <summary>Throws InsecureTransport before a credential would go to <paramref name="uri"/> unencrypted.</summary>
    /// <param name="setting">The configuration key of the URL, named in the message (e.g. prometheus.url).</param>
    public static void EnsureCredentialsAllowed(Uri uri, string setting)
    {
        if (Refusal(uri) is { } why)
        {
            throw new KfmException("InsecureTransport", KfmErrorKind.SecurityError,
                $"{setting} ({uri.Scheme}://{uri.Authority}) would receive a credential, and {why}. Use https:// for {setting}, or remove the credential (token_env/token_file) if that server needs none.", setting);
        }
    }
}
