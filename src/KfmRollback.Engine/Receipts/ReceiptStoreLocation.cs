using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Receipts;

/// <summary>
/// Where receipts go, from explicit parameters or the environment's <c>receipts</c> section, and
/// how to open that store. Keeps the choice of backend and signing out of the cmdlets.
/// </summary>
public sealed record ReceiptStoreLocation
{
    public required string Path { get; init; }
    public bool IsGit { get; init; }
    public string? Branch { get; init; }
    public string Subdirectory { get; init; } = string.Empty;
    public string? SigningKeyFile { get; init; }
    public string? PublicKeyFile { get; init; }

    /// <summary>
    /// Where evidence bundles go by default: <c>evidence/</c> inside a store directory, or a
    /// <c>-evidence</c> sibling of a git store (whose committed tree holds receipts only).
    /// </summary>
    public string EvidenceDirectory => IsGit
        ? System.IO.Path.TrimEndingDirectorySeparator(Path) + "-evidence"
        : System.IO.Path.Combine(Path, "evidence");

    public static ReceiptStoreLocation FromConfig(ReceiptsConfig receipts) => receipts.Git is { } git
        ? new ReceiptStoreLocation
        {
            Path = git.Path,
            IsGit = true,
            Branch = git.Branch,
            Subdirectory = git.Directory,
            SigningKeyFile = receipts.SigningKeyFile,
            PublicKeyFile = receipts.PublicKeyFile,
        }
        : new ReceiptStoreLocation
        {
            Path = receipts.Store!,
            SigningKeyFile = receipts.SigningKeyFile,
            PublicKeyFile = receipts.PublicKeyFile,
        };

    /// <summary>Opens the store; with <paramref name="forWriting"/> a configured signing key is loaded.</summary>
    public ReceiptStore Open(bool forWriting, IClock? clock = null)
    {
        DsseSigner? signer = forWriting && SigningKeyFile is not null ? DsseSigner.FromPem(ReadKey(SigningKeyFile, "signing key")) : null;
        var options = new ReceiptStoreOptions { Clock = clock, Signer = signer };
        return IsGit
            ? new GitReceiptStore(Path, new GitReceiptStoreOptions { Branch = Branch, Subdirectory = Subdirectory }, options)
            : new ReceiptStore(Path, options);
    }

    /// <summary>The environment's store for reading, or null when none is configured or nothing was stored yet.</summary>
    public static ReceiptStore? OpenExisting(ReceiptsConfig? receipts)
    {
        if (receipts is null)
        {
            return null;
        }
        ReceiptStoreLocation location = FromConfig(receipts);
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
