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

    void IConfigSection.Validate(ValidationScope scope) { }
}
