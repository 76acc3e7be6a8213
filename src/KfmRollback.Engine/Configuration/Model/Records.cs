using KfmRollback.Engine.Configuration.Binding;

namespace KfmRollback.Engine.Configuration;

/// <summary>Where rollback receipts go: exactly one of a directory or a git repository.</summary>
public sealed class ReceiptsConfig : IConfigSection
{
    /// <summary>Directory of receipts (content-addressed, never overwritten).</summary>
    [LocalPath]
    public string? Store { get; init; }

    /// <summary>A git repository, for an immutable, reviewable history.</summary>
    public ReceiptGitConfig? Git { get; init; }

    /// <summary>Private key used to sign receipts (optional).</summary>
    [LocalPath]
    public string? SigningKeyFile { get; init; }

    /// <summary>Public key used to verify receipts.</summary>
    [LocalPath]
    public string? PublicKeyFile { get; init; }

    void IConfigSection.Validate(ValidationScope scope)
    {
        scope.ExactlyOne("receipts need a store directory or a git repository.", "store", "git");
        // A signature nobody can verify is theatre: require the matching public key.
        if (SigningKeyFile is not null && PublicKeyFile is null)
            throw scope.Missing("public_key_file", "signing_key_file is set, and signed receipts must be verifiable.");
    }
}

/// <summary>A git repository (local clone) receiving receipts.</summary>
public sealed class ReceiptGitConfig : IConfigSection
{
    /// <summary>Path of the local clone.</summary>
    [RequiredKey, LocalPath]
    public string Path { get; init; } = null!;

    /// <summary>Branch receipts are committed to.</summary>
    public string Branch { get; init; } = "receipts";

    /// <summary>Directory inside the repository.</summary>
    [RepoPath]
    public string Directory { get; init; } = "receipts";

    void IConfigSection.Validate(ValidationScope scope) { }
}

/// <summary>Where incidents and their timelines are journalled.</summary>
public sealed class IncidentsConfig : IConfigSection
{
    /// <summary>Directory holding the append-only incident journal, incidents.ndjson.</summary>
    [RequiredKey, LocalPath]
    public string Journal { get; init; } = null!;

    void IConfigSection.Validate(ValidationScope scope) { }
}

/// <summary>Log checks (checklist D).</summary>
public sealed class ObservabilityConfig : IConfigSection
{
    /// <summary>Regular expressions matching restricted identifiers that must never appear in logs.</summary>
    [RegexPattern]
    public IReadOnlyList<string> RestrictedIdPatterns { get; init; } = Array.Empty<string>();

    /// <summary>How far back logs are read.</summary>
    public TimeSpan LogWindow { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>A trace query API, for the check that traces span policy evaluation (checklist D).</summary>
    public TracesConfig? Traces { get; init; }

    void IConfigSection.Validate(ValidationScope scope) { }
}

/// <summary>Which trace query API <see cref="TracesConfig.Url"/> speaks.</summary>
public enum TraceApiKind
{
    /// <summary>Zipkin API v2: <c>GET /api/v2/trace/{traceId}</c>.</summary>
    Zipkin,
    /// <summary>Jaeger query service: <c>GET /api/traces/{traceId}</c>.</summary>
    Jaeger,
    /// <summary>Grafana Tempo: <c>GET /api/traces/{traceId}</c> (OTLP JSON).</summary>
    Tempo,
}

/// <summary>The trace query API and what a probe's trace must contain.</summary>
public sealed class TracesConfig : IConfigSection
{
    /// <summary>Base URL of the trace query API.</summary>
    [RequiredKey]
    public Uri Url { get; init; } = null!;

    /// <summary>Which API it is.</summary>
    [RequiredKey]
    public TraceApiKind Kind { get; init; }

    /// <summary>The span name of a policy evaluation, expected as a child of the request's server span.</summary>
    public string PolicySpan { get; init; } = "policy.evaluate";

    /// <summary>How long to wait for the probe's trace to arrive (collectors batch and delay).</summary>
    public TimeSpan Deadline { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The governed endpoint probed for a trace; default: the first governed probe endpoint without {id}.</summary>
    public string? Endpoint { get; init; }

    void IConfigSection.Validate(ValidationScope scope)
    {
        if (string.IsNullOrWhiteSpace(PolicySpan)) throw scope.Invalid("policy_span", "must name a span.");
        if (Deadline <= TimeSpan.Zero || Deadline > TimeSpan.FromMinutes(10)) throw scope.Invalid("deadline", "must be more than 0 and at most 10m.");
        if (Endpoint is not null && (!Endpoint.StartsWith('/') || Endpoint.Contains("{id}", StringComparison.Ordinal)))
            throw scope.Invalid("endpoint", "must be a path under api.base_url starting with '/', without {id}.");
    }
}

/// <summary>What people may see in clear: everything shown or stored passes one redaction (Safety/Redactor).</summary>
public sealed class RedactionConfig : IConfigSection
{
    /// <summary>
    /// Env var names of the API's pod template whose literal values are shown in plans, -WhatIf, results,
    /// receipts and evidence; every other literal env value is shown as &lt;redacted sha256:…&gt;.
    /// </summary>
    public IReadOnlyList<string> ShowEnv { get; init; } = Array.Empty<string>();

    void IConfigSection.Validate(ValidationScope scope)
    {
        foreach (string name in ShowEnv)
        {
            if (name.Length == 0 || name.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
                throw scope.Invalid("show_env", $"must list env var names (got '{name}').");
            // A credential shown in clear is exactly what the redaction exists to stop.
            if (Safety.SecretNames.LooksSecret(name))
                throw scope.Invalid("show_env", $"lists '{name}', whose name says it holds a credential; its value is never shown. Remove it from show_env.");
        }
    }
}
