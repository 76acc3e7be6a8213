using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Adapters.BlobStorage;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Receipts;

/// <summary>
/// Where receipts go, from explicit parameters or the environment's <c>receipts</c> section, and
/// how to open that store. Keeps the choice of backend and signing out of the cmdlets.
/// </summary>
public sealed record ReceiptStoreLocation
{
    /// <summary>The local directory: the store, the git clone, or the blob container's local copy.</summary>
    public required string Path { get; init; }
    public bool IsGit { get; init; }
    public string? Branch { get; init; }
    public string Subdirectory { get; init; } = string.Empty;
    public string? SigningKeyFile { get; init; }
    public string? PublicKeyFile { get; init; }
    /// <summary>Git: the shared repository saves are pushed to; null: the clone's origin, when it has one.</summary>
    public string? RemoteUrl { get; init; }
    /// <summary>Git: the token for <see cref="RemoteUrl"/>, by reference.</summary>
    public string? TokenEnv { get; init; }
    public string? TokenFile { get; init; }
    /// <summary>A blob container store; <see cref="Path"/> is then its local copy.</summary>
    public ReceiptBlobConfig? Blob { get; init; }

    /// <summary>Where the store is, for messages and -WhatIf (no credential).</summary>
    public string Description => Blob is { } blob
        ? $"blob container {blob.Container}{(blob.Prefix is null ? string.Empty : "/" + blob.Prefix)}"
        : IsGit ? $"{Path} (git{(RemoteUrl is null ? string.Empty : ", pushed to " + Safety.Redactor.Default.Url(RemoteUrl))})" : Path;

    /// <summary>
    /// Where evidence bundles go by default: <c>evidence/</c> inside a store directory, or a
    /// <c>-evidence</c> sibling of a git store (whose committed tree holds receipts only) or of a
    /// blob container's local copy.
    /// </summary>
    public string EvidenceDirectory => IsGit || Blob is not null
        ? System.IO.Path.TrimEndingDirectorySeparator(Path) + "-evidence"
        : System.IO.Path.Combine(Path, "evidence");

    /// <summary>
    /// An environment's evidence directory: <c>evidence.directory</c>, else <c>evidence/</c> inside a
    /// receipt store directory, else a <c>-evidence</c> sibling of a git receipt store (whose tree
    /// holds receipts only); null when it has neither.
    /// </summary>
    public static string? EvidenceDirectoryOf(EnvironmentConfig environment) => environment.Evidence.Directory
        ?? (environment.Receipts is null ? null : FromConfig(environment.Receipts).EvidenceDirectory);

    public static ReceiptStoreLocation FromConfig(ReceiptsConfig receipts) => receipts switch
    {
        { Git: { } git } => new ReceiptStoreLocation
        {
            Path = git.Path ?? StateFolder("git", $"{git.Url!.OriginalString}#{git.Branch}"),
            IsGit = true,
            Branch = git.Branch,
            Subdirectory = git.Directory,
            RemoteUrl = git.Url?.OriginalString,
            TokenEnv = git.TokenEnv,
            TokenFile = git.TokenFile,
            SigningKeyFile = receipts.SigningKeyFile,
            PublicKeyFile = receipts.PublicKeyFile,
        },
        { Blob: { } blob } => new ReceiptStoreLocation
        {
            Path = blob.Cache ?? StateFolder("blob", $"{blob.AccountUrl?.OriginalString ?? blob.ConnectionStringEnv ?? blob.ConnectionStringFile}#{blob.Container}#{blob.Prefix}"),
            Blob = blob,
            SigningKeyFile = receipts.SigningKeyFile,
            PublicKeyFile = receipts.PublicKeyFile,
        },
        _ => new ReceiptStoreLocation
        {
            Path = receipts.Store!,
            SigningKeyFile = receipts.SigningKeyFile,
            PublicKeyFile = receipts.PublicKeyFile,
        },
    };

    /// <summary>The module's own local copy of a shared store, named by a hash so nothing of the address lands in a path.</summary>
    private static string StateFolder(string kind, string key) =>
        GitOpsRepository.CacheDirectory(key, System.IO.Path.Combine(KfmPaths.StateDirectory(), "receipts", kind));

    /// <summary>Opens the store; with <paramref name="forWriting"/> a configured signing key is loaded.</summary>
    /// <param name="cancellation">Ctrl+C: stops a fetch, push or blob call of a shared store.</param>
    public ReceiptStore Open(bool forWriting, IClock? clock = null, CancellationToken cancellation = default)
    {
        DsseSigner? signer = forWriting && SigningKeyFile is not null ? DsseSigner.FromPem(ReadKey(SigningKeyFile, "signing key")) : null;
        var options = new ReceiptStoreOptions { Clock = clock, Signer = signer };
        if (Blob is { } blob)
            return new BlobReceiptStore(OpenContainer(blob), Path, new BlobReceiptStoreOptions { Prefix = blob.Prefix ?? string.Empty, Cancellation = cancellation }, options);
        return IsGit
            ? new GitReceiptStore(Path, new GitReceiptStoreOptions
            {
                Branch = Branch, Subdirectory = Subdirectory, RemoteUrl = RemoteUrl, Cancellation = cancellation,
                Credential = GitCredential.FromReference(TokenEnv, TokenFile, "receipts.git", "ReceiptStoreTokenUnavailable", "Set it, then retry."),
            }, options)
            : new ReceiptStore(Path, options);
    }

    private static IBlobContainer OpenContainer(ReceiptBlobConfig blob)
    {
        try
        {
            return blob.AccountUrl is { } account
                ? AzureBlobContainer.FromSas(account, Referenced(blob.SasEnv, blob.SasFile, "sas"), blob.Container)
                : AzureBlobContainer.FromConnectionString(Referenced(blob.ConnectionStringEnv, blob.ConnectionStringFile, "connection_string"), blob.Container);
        }
        catch (BlobStorageException e)
        {
            throw new KfmException("ReceiptStoreCredentialInvalid", KfmErrorKind.InvalidArgument,
                $"The credential for blob container {blob.Container} is unusable: {e.Detail}. Check the value receipts.blob.sas_*/connection_string_* refers to.", blob.Container, e);
        }
    }

    /// <summary>The secret a <c>&lt;key&gt;_env</c>/<c>&lt;key&gt;_file</c> pair refers to; a reference to nothing is an error naming the key, never a value.</summary>
    private static string Referenced(string? environmentVariable, string? file, string key) =>
        SecretReference.Read(environmentVariable, file) ?? throw new KfmException("ReceiptStoreCredentialMissing", KfmErrorKind.InvalidArgument,
            environmentVariable is not null
                ? $"receipts.blob.{key}_env names ${environmentVariable}, which is not set or empty. Set it, then retry."
                : $"receipts.blob.{key}_file {file} does not exist or is empty. Create it, then retry.", environmentVariable ?? file);

    /// <summary>The environment's store for reading, or null when none is configured or nothing was stored yet.</summary>
    public static ReceiptStore? OpenExisting(ReceiptsConfig? receipts)
    {
        if (receipts is null)
        {
            return null;
        }
        ReceiptStoreLocation location = FromConfig(receipts);
        // A shared store exists where it is shared, whether or not this machine has a copy yet.
        if (location.Blob is not null || location.RemoteUrl is not null)
        {
            return location.Open(forWriting: false);
        }
        return Directory.Exists(location.IsGit ? System.IO.Path.Combine(location.Path, location.Subdirectory) : location.Path)
            ? location.Open(forWriting: false)
            : null;
    }

    /// <summary>The public key PEM for verification: the given file, else the configured one, else none.</summary>
    public string? ReadPublicKey(string? overridePath)
    {
        string? path = overridePath ?? PublicKeyFile;
        return path is null ? null : ReadKey(path, "public key");
    }

    private static string ReadKey(string path, string what)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The path is safe to show; the key content never is.
            throw new KfmException("ReceiptKeyUnreadable", KfmErrorKind.ReadError,
                $"Cannot read the {what} file '{path}': {ex.Message}", path, ex);
        }
    }
}
