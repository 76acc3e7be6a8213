using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Adapters.Registry;

/// <summary>
/// The pull side of the OCI distribution spec (v1.1, "Pull": "Pulling manifests", "Checking if
/// content exists in the registry", "Pulling blobs") over HTTP, with the registry token
/// authentication Docker's registry and its successors use: a 401 names a Basic realm (credentials
/// sent to this registry only) or a Bearer realm, whose token is fetched with the credentials only
/// when the realm is this registry's own origin (ACR, GHCR) and anonymously otherwise: a URL a remote
/// hands back never receives credentials.
/// </summary>
public sealed partial class OciRegistryClient : IRegistryClient
{
    /// <summary>What the client accepts for a manifest: OCI image index and manifest, Docker v2 manifest list and manifest.</summary>
    public static readonly IReadOnlyList<string> ManifestMediaTypes = new[]
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    };

    private readonly HttpClient _http;
    private readonly RegistryCredential? _credential;
    private readonly Dictionary<string, AuthenticationHeaderValue> _authorizations = new(StringComparer.Ordinal);

    public OciRegistryClient(Uri baseUrl, RegistryCredential? credential, HttpClient http)
    {
        BaseUrl = new Uri(baseUrl.GetLeftPart(UriPartial.Path).TrimEnd('/') + "/");
        _credential = credential;
        _http = http;
    }

    public Uri BaseUrl { get; }

    private string Host => BaseUrl.Authority;

    // The spec's <reference> grammar (OCI distribution spec, "Pulling manifests"); <name> is RegistryConfig.IsRepositoryName.
    [GeneratedRegex(@"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$", RegexOptions.CultureInvariant)]
    private static partial Regex TagPattern();

    public async Task<ManifestDescriptor?> HeadManifestAsync(string repository, string reference, CancellationToken cancellationToken)
    {
        Validate(repository, reference);
        using HttpResponseMessage response = await SendAsync(HttpMethod.Head, repository, $"manifests/{reference}", accept: true, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        EnsureSuccess(response, $"checking manifest {repository}@{reference}");
        string? digest = response.Headers.TryGetValues("Docker-Content-Digest", out IEnumerable<string>? values) ? values.FirstOrDefault() : null;
        if (ImageRefs.IsDigest(reference) && digest is not null && digest != reference)
        {
            throw new KfmException("RegistryDigestMismatch", KfmErrorKind.SecurityError,
                $"Registry {Host} answered a HEAD of {repository}@{reference} with another digest ({digest}). Do not trust this registry's answer; check registry.url.", reference);
        }
        return new ManifestDescriptor(repository, digest ?? reference, response.Content.Headers.ContentType?.MediaType, response.Content.Headers.ContentLength);
    }

    public async Task<RegistryManifest> GetManifestAsync(string repository, string reference, CancellationToken cancellationToken)
    {
        Validate(repository, reference);
        using HttpResponseMessage response = await SendAsync(HttpMethod.Get, repository, $"manifests/{reference}", accept: true, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            throw new KfmException("RegistryManifestNotFound", KfmErrorKind.ObjectNotFound,
                $"Registry {Host} has no manifest {repository}@{reference}.", reference);
        }
        EnsureSuccess(response, $"fetching manifest {repository}@{reference}");
        byte[] content = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        string digest = Sha256(content);
        if (ImageRefs.IsDigest(reference) && digest != reference)
        {
            throw new KfmException("RegistryDigestMismatch", KfmErrorKind.SecurityError,
                $"The manifest registry {Host} served for {repository}@{reference} hashes to {digest}: it is not the content asked for. Do not use it; check registry.url.", reference);
        }
        return new RegistryManifest(new ManifestDescriptor(repository, digest, response.Content.Headers.ContentType?.MediaType, content.LongLength), content);
    }

    public async Task<byte[]> GetBlobAsync(string repository, string digest, CancellationToken cancellationToken)
    {
        Validate(repository, digest);
        if (!ImageRefs.IsDigest(digest))
        {
            throw new KfmException("RegistryReferenceInvalid", KfmErrorKind.InvalidArgument, $"A blob is fetched by digest (sha256: and 64 hex characters); '{digest}' is not one.", digest);
        }
        using HttpResponseMessage response = await SendAsync(HttpMethod.Get, repository, $"blobs/{digest}", accept: false, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            throw new KfmException("RegistryBlobNotFound", KfmErrorKind.ObjectNotFound, $"Registry {Host} has no blob {repository}@{digest}.", digest);
        }
        EnsureSuccess(response, $"fetching blob {repository}@{digest}");
        byte[] content = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        if (Sha256(content) != digest)
        {
            throw new KfmException("RegistryDigestMismatch", KfmErrorKind.SecurityError,
                $"The blob registry {Host} served for {repository}@{digest} does not hash to that digest. Do not use it; check registry.url.", digest);
        }
        return content;
    }

    private static void Validate(string repository, string reference)
    {
        if (!RegistryConfig.IsRepositoryName(repository))
        {
            throw new KfmException("RegistryRepositoryInvalid", KfmErrorKind.InvalidArgument,
                $"'{repository}' is not a registry repository name (lowercase path components such as kfm/kfm-api). Set registry.repository in the configuration.", repository);
        }
        if (!ImageRefs.IsDigest(reference) && !TagPattern().IsMatch(reference))
        {
            throw new KfmException("RegistryReferenceInvalid", KfmErrorKind.InvalidArgument,
                $"'{reference}' is neither a digest (sha256:<64 hex>) nor a tag.", reference);
        }
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string repository, string path, bool accept, CancellationToken cancellationToken)
    {
        var uri = new Uri(BaseUrl, $"v2/{repository}/{path}");
        string scope = $"repository:{repository}:pull";
        HttpResponseMessage response = await SendOnceAsync(method, uri, accept, Authorization(scope), cancellationToken).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Unauthorized)
        {
            return response;
        }
        AuthenticationHeaderValue? challenge = response.Headers.WwwAuthenticate.FirstOrDefault();
        response.Dispose();
        AuthenticationHeaderValue authorization = await AnswerAsync(challenge, scope, cancellationToken).ConfigureAwait(false);
        lock (_authorizations) { _authorizations[scope] = authorization; }
        response = await SendOnceAsync(method, uri, accept, authorization, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            response.Dispose();
            throw Unauthorized(_credential is null ? "it asks for credentials and none are configured" : "it refused the configured credentials");
        }
        return response;
    }

    private AuthenticationHeaderValue? Authorization(string scope)
    {
        lock (_authorizations) { return _authorizations.TryGetValue(scope, out AuthenticationHeaderValue? value) ? value : null; }
    }

    private async Task<HttpResponseMessage> SendOnceAsync(HttpMethod method, Uri uri, bool accept, AuthenticationHeaderValue? authorization, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, uri);
        if (accept)
        {
            foreach (string type in ManifestMediaTypes)
            {
                request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(type));
            }
        }
        request.Headers.Authorization = authorization;
        try
        {
            return await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new KfmException("RegistryUnreachable", KfmErrorKind.ConnectionError,
                $"Cannot reach registry {Host} ({(ex is TaskCanceledException ? "timed out" : ex.Message)}). Check registry.url and the network.", Host, ex);
        }
    }

    /// <summary>The Authorization that answers a 401's challenge (Basic, or a Bearer token from the realm).</summary>
    private async Task<AuthenticationHeaderValue> AnswerAsync(AuthenticationHeaderValue? challenge, string scope, CancellationToken cancellationToken)
    {
        if (challenge is null)
        {
            throw Unauthorized("it answered 401 without a WWW-Authenticate challenge");
        }
        if (string.Equals(challenge.Scheme, "Basic", StringComparison.OrdinalIgnoreCase))
        {
            return Basic() ?? throw Unauthorized("it asks for credentials and none are configured (registry.username with registry.token_env or token_file)");
        }
        if (!string.Equals(challenge.Scheme, "Bearer", StringComparison.OrdinalIgnoreCase))
        {
            throw Unauthorized($"it asks for {challenge.Scheme} authentication, which the module does not speak");
        }
        Dictionary<string, string> parameters = ChallengeParameters(challenge.Parameter ?? "");
        if (!parameters.TryGetValue("realm", out string? realm) || !Uri.TryCreate(realm, UriKind.Absolute, out Uri? realmUri)
            || (realmUri.Scheme != Uri.UriSchemeHttps && realmUri.Scheme != Uri.UriSchemeHttp))
        {
            throw Unauthorized("its Bearer challenge names no usable token realm");
        }
        var query = new List<string>();
        if (parameters.TryGetValue("service", out string? service))
        {
            query.Add("service=" + Uri.EscapeDataString(service));
        }
        query.Add("scope=" + Uri.EscapeDataString(parameters.TryGetValue("scope", out string? asked) ? asked : scope));
        using var request = new HttpRequestMessage(HttpMethod.Get, new UriBuilder(realmUri) { Query = string.Join("&", query) }.Uri);
        // Tokens stay at their origin: the realm is a URL the registry handed back.
        bool sameOrigin = Uri.Compare(realmUri, BaseUrl, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0;
        if (sameOrigin)
        {
            request.Headers.Authorization = Basic();
        }
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new KfmException("RegistryUnreachable", KfmErrorKind.ConnectionError,
                $"Cannot reach the token service {realmUri.Authority} of registry {Host} ({(ex is TaskCanceledException ? "timed out" : ex.Message)}).", Host, ex);
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                throw Unauthorized($"its token service {realmUri.Authority} answered {(int)response.StatusCode}{(sameOrigin || _credential is null ? "" : " (credentials are sent only to the registry's own origin)")}");
            }
            using JsonDocument token = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
            string? value = token.RootElement.TryGetProperty("token", out JsonElement t) && t.ValueKind == JsonValueKind.String ? t.GetString()
                : token.RootElement.TryGetProperty("access_token", out JsonElement a) && a.ValueKind == JsonValueKind.String ? a.GetString() : null;
            return string.IsNullOrEmpty(value)
                ? throw Unauthorized($"its token service {realmUri.Authority} answered without a token")
                : new AuthenticationHeaderValue("Bearer", value);
        }
    }

    private AuthenticationHeaderValue? Basic()
    {
        if (_credential is null)
        {
            return null;
        }
        // The one transport rule, again where the credential is attached: never over plain HTTP but to loopback.
        Transport.EnsureCredentialsAllowed(BaseUrl, "registry.url");
        return new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{_credential.Username}:{_credential.Secret}")));
    }

    /// <summary>RFC 7235 auth-params: <c>realm="…",service="…",scope="…"</c>.</summary>
    private static Dictionary<string, string> ChallengeParameters(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (Match m in ChallengeParameter().Matches(text))
        {
            result[m.Groups["key"].Value] = m.Groups["quoted"].Success ? m.Groups["quoted"].Value.Replace("\\\"", "\"") : m.Groups["token"].Value;
        }
        return result;
    }

    [GeneratedRegex(@"(?<key>[A-Za-z0-9_-]+)\s*=\s*(?:""(?<quoted>(?:[^""\\]|\\.)*)""|(?<token>[^,\s]+))", RegexOptions.CultureInvariant)]
    private static partial Regex ChallengeParameter();

    private void EnsureSuccess(HttpResponseMessage response, string what)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }
        throw response.StatusCode switch
        {
            HttpStatusCode.Forbidden => new KfmException("RegistryForbidden", KfmErrorKind.PermissionDenied,
                $"Registry {Host} refused {what} (403 Forbidden): the configured identity may not pull it. Grant it pull access.", Host),
            HttpStatusCode.TooManyRequests => new KfmException("RegistryUnavailable", KfmErrorKind.ConnectionError,
                $"Registry {Host} is rate-limiting {what} (429). Retry shortly.", Host),
            { } code when (int)code >= 500 => new KfmException("RegistryUnavailable", KfmErrorKind.ConnectionError,
                $"Registry {Host} failed {what} ({(int)code} {code}). Retry shortly, or check the registry.", Host),
            { } code => new KfmException("RegistryRequestFailed", KfmErrorKind.InvalidOperation,
                $"Registry {Host} answered {(int)code} {code} for {what}.", Host),
        };
    }

    private KfmException Unauthorized(string why) => new("RegistryUnauthorized", KfmErrorKind.PermissionDenied,
        $"Registry {Host} did not let the module in: {why}. Check registry.username and registry.token_env / token_file.", Host);

    private static string Sha256(byte[] content) => "sha256:" + Convert.ToHexString(SHA256.HashData(content)).ToLowerInvariant();
}
