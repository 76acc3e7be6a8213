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

    /// <summary>An Azure Blob Storage container every operator and job reaches.</summary>
    public ReceiptBlobConfig? Blob { get; init; }

    /// <summary>Private key used to sign receipts (optional).</summary>
    [LocalPath]
    public string? SigningKeyFile { get; init; }

    /// <summary>Public key used to verify receipts.</summary>
    [LocalPath]
    public string? PublicKeyFile { get; init; }

    void IConfigSection.Validate(ValidationScope scope)
    {
        scope.ExactlyOne("receipts need a store directory, a git repository or a blob container.", "store", "git", "blob");
        // A signature nobody can verify is theatre: require the matching public key.
        if (SigningKeyFile is not null && PublicKeyFile is null)
            throw scope.Missing("public_key_file", "signing_key_file is set, and signed receipts must be verifiable.");
    }
}

/// <summary>A git repository receiving receipts: a local clone, pushed to its remote when it has one.</summary>
public sealed class ReceiptGitConfig : IConfigSection
{
    /// <summary>Path of the local clone; with <see cref="Url"/> and no path, the module keeps a clone in its state folder.</summary>
    [LocalPath]
    public string? Path { get; init; }

    /// <summary>The shared repository every save is pushed to (https; http only to loopback; file).</summary>
    [GitRemoteUrl]
    public Uri? Url { get; init; }

    /// <summary>Branch receipts are committed to.</summary>
    public string Branch { get; init; } = "receipts";

    /// <summary>Directory inside the repository.</summary>
    [RepoPath]
    public string Directory { get; init; } = "receipts";

    /// <summary>Environment variable holding the token used to fetch and push over https.</summary>
    [EnvVarName]
    public string? TokenEnv { get; init; }

    /// <summary>File holding the token used to fetch and push over https.</summary>
    [LocalPath]
    public string? TokenFile { get; init; }

    void IConfigSection.Validate(ValidationScope scope)
    {
        if (Path is null && Url is null)
            throw scope.Missing("url", "receipts.git needs the shared repository's url (or, for a store on this machine only, the path of a clone).");
        scope.AtMostOne("token_env", "token_file");
        if (!LibGit2Sharp.Reference.IsValidName("refs/heads/" + Branch))
            throw scope.Invalid("branch", $"is not a valid branch name (got '{Branch}').");
    }
}

/// <summary>
/// An Azure Blob Storage container receiving receipts: reached with a SAS for the container (least
/// privilege: read, create, list) or a connection string, both by reference.
/// </summary>
public sealed partial class ReceiptBlobConfig : IConfigSection
{
    /// <summary>The container (3-63 lowercase letters, digits and hyphens). The module never creates it.</summary>
    [RequiredKey]
    public string Container { get; init; } = null!;

    /// <summary>The Blob service endpoint, https://&lt;account&gt;.blob.core.windows.net (with sas_env or sas_file).</summary>
    public Uri? AccountUrl { get; init; }

    /// <summary>Environment variable holding a SAS token for the container.</summary>
    [EnvVarName]
    public string? SasEnv { get; init; }

    /// <summary>File holding a SAS token for the container.</summary>
    [LocalPath]
    public string? SasFile { get; init; }

    /// <summary>Environment variable holding a storage connection string (instead of account_url and a SAS).</summary>
    [EnvVarName]
    public string? ConnectionStringEnv { get; init; }

    /// <summary>File holding a storage connection string.</summary>
    [LocalPath]
    public string? ConnectionStringFile { get; init; }

    /// <summary>Folder inside the container, so several environments can share one.</summary>
    [RepoPath]
    public string? Prefix { get; init; }

    /// <summary>Local copy of the container for reading and verification; default: in the module's state folder.</summary>
    [LocalPath]
    public string? Cache { get; init; }

    [System.Text.RegularExpressions.GeneratedRegex("^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$", System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex ContainerName();

    void IConfigSection.Validate(ValidationScope scope)
    {
        if (!ContainerName().IsMatch(Container))
            throw scope.Invalid("container", $"must be a blob container name: 3-63 lowercase letters, digits and single hyphens (got '{Container}').");
        scope.ExactlyOne("the container is reached with a SAS (with account_url) or a connection string, by reference.",
            "sas_env", "sas_file", "connection_string_env", "connection_string_file");
        var sas = SasEnv is not null || SasFile is not null;
        if (sas && AccountUrl is null)
            throw scope.Missing("account_url", "a SAS needs the Blob service endpoint, https://<account>.blob.core.windows.net.");
        if (!sas && AccountUrl is not null)
            throw scope.Invalid("account_url", "is taken from the connection string; remove it, or use sas_env/sas_file with it.");
        if (AccountUrl is { } url && url.Scheme != Uri.UriSchemeHttps && !Core.Transport.IsLoopback(url))
            throw scope.Invalid("account_url", "must be https:// (plain http only to a loopback host, such as Azurite), so the SAS never crosses the network unencrypted.");
    }
}

/// <summary>Where incidents and their timelines are journalled.</summary>
public sealed partial class IncidentsConfig : IConfigSection
{
    /// <summary>Directory holding the append-only incident journal on this machine, incidents.ndjson.</summary>
    [LocalPath]
    public string? Journal { get; init; }

    /// <summary>
    /// The journal on the environment's own cluster instead, shared by every operator and job that
    /// reaches it: one ConfigMap per incident (and per environment) in this namespace.
    /// </summary>
    public IncidentsClusterConfig? Cluster { get; init; }

    void IConfigSection.Validate(ValidationScope scope) =>
        scope.ExactlyOne("the incident journal lives in a local directory (journal) or on the environment's cluster (cluster.namespace).", "journal", "cluster");
}

/// <summary>Where on the environment's cluster the shared incident journal lives.</summary>
public sealed partial class IncidentsClusterConfig : IConfigSection
{
    /// <summary>Namespace of the journal's ConfigMaps (grant get, list, create, update on configmaps there).</summary>
    [RequiredKey]
    public string Namespace { get; init; } = null!;

    void IConfigSection.Validate(ValidationScope scope)
    {
        if (!DnsLabel().IsMatch(Namespace))
            throw scope.Invalid("namespace", $"must be a Kubernetes namespace name: up to 63 lowercase letters, digits and '-', starting and ending with a letter or digit (got '{Namespace}').");
    }

    [System.Text.RegularExpressions.GeneratedRegex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex DnsLabel();
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
