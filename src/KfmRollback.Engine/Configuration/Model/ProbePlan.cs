using KfmRollback.Engine.Configuration.Binding;

namespace KfmRollback.Engine.Configuration;

/// <summary>A caller's privilege as the policy sees it.</summary>
public enum CallerRole
{
    /// <summary>Must never learn whether a restricted resource exists.</summary>
    Public,
    /// <summary>An authorised steward; gets explicit denies with reasons.</summary>
    Restricted,
}

/// <summary>HTTP methods a probe may use.</summary>
public enum ProbeMethod
{
    [YamlName("GET")] Get,
    [YamlName("HEAD")] Head,
    [YamlName("POST")] Post,
    [YamlName("PUT")] Put,
    [YamlName("PATCH")] Patch,
    [YamlName("DELETE")] Delete,
}

/// <summary>
/// The policy-invariant probe plan (checklist B): who calls, what they call, and which ids they
/// use. Restricted ids are never written here: they are restricted details themselves, so the
/// plan only points at where to read them.
/// </summary>
public sealed class ProbePlan : IConfigSection
{
    /// <summary>Caller name → credentials and role.</summary>
    [RequiredKey, NonEmpty]
    public IReadOnlyDictionary<string, ProbeCaller> Callers { get; init; } = new Dictionary<string, ProbeCaller>();

    /// <summary>Endpoints to probe.</summary>
    [RequiredKey, NonEmpty]
    public IReadOnlyList<ProbeEndpoint> Endpoints { get; init; } = Array.Empty<ProbeEndpoint>();

    /// <summary>Environment variable holding restricted ids (comma or newline separated).</summary>
    [EnvVarName]
    public string? RestrictedIdsEnv { get; init; }

    /// <summary>File holding restricted ids, one per line.</summary>
    [LocalPath]
    public string? RestrictedIdsFile { get; init; }

    /// <summary>The restricted ids, read from <see cref="RestrictedIdsEnv"/> or <see cref="RestrictedIdsFile"/> (none when neither is set).</summary>
    public IReadOnlyList<string> RestrictedIds()
    {
        string? text = Core.SecretReference.Read(RestrictedIdsEnv, RestrictedIdsFile);
        return (text ?? string.Empty).Split(new[] { ',', '\n', '\r' }, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    /// <summary>Template for ids that certainly do not exist; <c>{random}</c> is replaced per sample.</summary>
    public string MissingIdPattern { get; init; } = "kfm_probe_missing_{random}";

    /// <summary>Requests per comparison (status, body, headers and timing are compared as distributions).</summary>
    [Range(5, 10000)]
    public int Samples { get; init; } = 30;

    /// <summary>Requests in flight at once.</summary>
    [Range(1, 64)]
    public int Concurrency { get; init; } = 8;

    /// <summary>
    /// Response headers that must match between "restricted and exists" and "does not exist"
    /// (presence and value): the ones an API tends to set only for a real object. Per-request
    /// headers (Date, request ids, trace ids) do not belong here.
    /// </summary>
    [NonEmpty]
    public IReadOnlyList<string> ComparedHeaders { get; init; } = new[]
    {
        "cache-control", "content-language", "etag", "last-modified", "link", "location", "vary", "www-authenticate",
    };

    /// <summary>policy_label values a response may carry; anything else is a failure (default deny).</summary>
    [NonEmpty]
    public IReadOnlyList<string> AllowedPolicyLabels { get; init; } = new[]
    {
        "public", "public_generalized", "internal", "restricted", "restricted_sensitive_location", "embargoed", "quarantine",
    };

    void IConfigSection.Validate(ValidationScope scope)
    {
        // The existence-leak comparison is only meaningful from a caller who must not see restricted data.
        if (!Callers.Values.Any(c => c.Role == CallerRole.Public))
            throw scope.Invalid("callers", "needs at least one caller with role public (the existence-leak checks run as that caller).");
        if (Endpoints.Any(e => e.Path.Contains("{id}", StringComparison.Ordinal)))
            scope.ExactlyOne("endpoints with an {id} placeholder are probed with restricted ids, read from an environment variable or a file (never inline).",
                "restricted_ids_env", "restricted_ids_file");
        else
            scope.AtMostOne("restricted_ids_env", "restricted_ids_file");
        foreach (string header in ComparedHeaders)
            if (header.Length == 0 || header.Any(c => c is not (>= 'a' and <= 'z' or >= '0' and <= '9' or '-')))
                throw scope.Invalid("compared_headers", $"'{header}' is not a header name in lower case (letters, digits and '-').");
        if (!MissingIdPattern.Contains("{random}", StringComparison.Ordinal))
            throw scope.Invalid("missing_id_pattern", "must contain {random} so each sample asks for a different missing id.");
    }
}

/// <summary>One probe caller. Exactly one of token_env, token_file or anonymous: true.</summary>
public sealed class ProbeCaller : IConfigSection
{
    /// <summary>Environment variable holding the caller's bearer token.</summary>
    [EnvVarName]
    public string? TokenEnv { get; init; }

    /// <summary>File holding the caller's bearer token.</summary>
    [LocalPath]
    public string? TokenFile { get; init; }

    /// <summary>Call without credentials.</summary>
    public bool Anonymous { get; init; }

    /// <summary>The caller's role.</summary>
    [RequiredKey]
    public CallerRole Role { get; init; }

    void IConfigSection.Validate(ValidationScope scope)
    {
        var ways = (TokenEnv is null ? 0 : 1) + (TokenFile is null ? 0 : 1) + (Anonymous ? 1 : 0);
        if (ways == 0)
            throw scope.Missing("token_env", "a caller needs exactly one of token_env, token_file or anonymous: true.");
        if (ways > 1)
            throw scope.Invalid(Anonymous ? "anonymous" : "token_file", "conflicts with another credential; set exactly one of token_env, token_file or anonymous: true.");
        if (Anonymous && Role == CallerRole.Restricted)
            throw scope.Invalid("role", "cannot be restricted for an anonymous caller.");
    }
}

/// <summary>One endpoint to probe.</summary>
public sealed class ProbeEndpoint : IConfigSection
{
    /// <summary>Path, optionally with an <c>{id}</c> placeholder (e.g. /api/v1/datasets/{id}).</summary>
    [RequiredKey, UrlPath]
    public string Path { get; init; } = null!;

    /// <summary>HTTP method.</summary>
    public ProbeMethod Method { get; init; } = ProbeMethod.Get;

    /// <summary>Behind the policy boundary: unauthenticated calls must be denied and responses carry policy fields.</summary>
    public bool Governed { get; init; } = true;

    /// <summary>JSON request body for POST/PUT/PATCH probes.</summary>
    [LocalPath]
    public string? BodyFile { get; init; }

    void IConfigSection.Validate(ValidationScope scope)
    {
        if (BodyFile is not null && Method is ProbeMethod.Get or ProbeMethod.Head or ProbeMethod.Delete)
            throw scope.Invalid("body_file", $"cannot be sent with {ConfigSchema.YamlName(Method)}.");
    }
}
