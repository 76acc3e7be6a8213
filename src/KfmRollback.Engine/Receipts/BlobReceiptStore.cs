using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using KfmRollback.Engine.Adapters.BlobStorage;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Receipts;

public sealed class BlobReceiptStoreOptions
{
    /// <summary>Folder inside the container ("" or e.g. "prod/"): receipts under &lt;prefix&gt;receipts/, the ledger under &lt;prefix&gt;ledger/.</summary>
    public string Prefix { get; init; } = string.Empty;
    /// <summary>Ctrl+C: stops a blob call.</summary>
    public CancellationToken Cancellation { get; init; }
}

/// <summary>
/// A receipt store in a blob container that every operator and job reaches. Receipts and envelopes are
/// blobs named by digest, and each ledger line is its own blob named by its sequence number
/// (ledger/000000000042.json), all created with If-None-Match: * so nothing is ever overwritten: two
/// writers racing for the same sequence number get one 409, and the loser chains its line again on the
/// next number. A local directory mirrors the container for reading and verification.
/// </summary>
public sealed class BlobReceiptStore : ReceiptStore
{
    public BlobReceiptStore(IBlobContainer container, string cacheDirectory, BlobReceiptStoreOptions? blobOptions = null, ReceiptStoreOptions? options = null)
        : base(new BlobStoreBackend(container, cacheDirectory, blobOptions ?? new BlobReceiptStoreOptions()), options)
    {
    }
}

internal sealed partial class BlobStoreBackend : IReceiptStoreBackend
{
    private const string ReceiptFolder = "receipts/";
    private const string LedgerFolder = "ledger/";
    private const string LedgerMirror = ".ledger";

    [GeneratedRegex(@"^[a-f0-9]{64}\.json$|^[a-f0-9]{64}\.dsse\.json$", RegexOptions.CultureInvariant)]
    private static partial Regex ReceiptBlobName();

    [GeneratedRegex(@"^[0-9]{12}\.json$", RegexOptions.CultureInvariant)]
    private static partial Regex LedgerBlobName();

    private readonly IBlobContainer _container;
    private readonly string _prefix;
    private readonly CancellationToken _cancellation;
    private List<ReceiptStoreProblem> _strangers = new();

    public BlobStoreBackend(IBlobContainer container, string cacheDirectory, BlobReceiptStoreOptions options)
    {
        _container = container;
        _prefix = options.Prefix.Replace('\\', '/').Trim('/');
        if (_prefix.Length > 0) _prefix += "/";
        _cancellation = options.Cancellation;
        Directory = Path.GetFullPath(cacheDirectory);
    }

    public string Directory { get; }
    public string LockFilePath => Path.Combine(Directory, ".kfm-receipts.lock");
    public string Description => _container.Description + (_prefix.Length > 0 ? $", folder {_prefix}" : string.Empty);
    public bool IsShared => true;

    public void Prepare()
    {
        try
        {
            System.IO.Directory.CreateDirectory(Path.Combine(Directory, LedgerMirror));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw ReceiptStore.NotWritable($"local copy {Directory} of {Description}", "the directory cannot be created", ex);
        }
    }

    /// <summary>
    /// Makes the local copy show the container: every receipt, envelope and ledger blob whose content differs
    /// from the copy (by the MD5 the service keeps) is downloaded, what the container no longer has is
    /// removed, and ledger.ndjson is rebuilt from the ledger blobs in sequence order, so Verify judges the
    /// container's content and a gap or a replaced line shows as a broken chain.
    /// </summary>
    public void Refresh(bool forSave)
    {
        var outcome = forSave ? "The receipt is NOT stored" : "Nothing was read";
        var receipts = Blob(() => _container.List(_prefix + ReceiptFolder, _cancellation), outcome);
        var ledger = Blob(() => _container.List(_prefix + LedgerFolder, _cancellation), outcome);
        var strangers = new List<ReceiptStoreProblem>();
        Mirror(receipts, ReceiptFolder, ReceiptBlobName(), Directory, strangers, ReceiptProblemKind.ReceiptUnrecorded, outcome);
        var ledgerDirectory = Path.Combine(Directory, LedgerMirror);
        var lines = Mirror(ledger, LedgerFolder, LedgerBlobName(), ledgerDirectory, strangers, ReceiptProblemKind.LedgerLineUnparsable, outcome);
        var ledgerPath = Path.Combine(Directory, ReceiptStore.LedgerFileName);
        if (lines.Count == 0)
        {
            File.Delete(ledgerPath);
        }
        else
        {
            var text = new StringBuilder();
            foreach (var name in lines)
                text.Append(File.ReadAllText(Path.Combine(ledgerDirectory, name)).TrimEnd('\n', '\r')).Append('\n');
            AtomicFile.Replace(ledgerPath, Encoding.UTF8.GetBytes(text.ToString()));
        }
        _strangers = strangers;
    }

    /// <summary>Brings <paramref name="directory"/> in line with the listed blobs; returns the mirrored file names in name order.</summary>
    private List<string> Mirror(IReadOnlyList<BlobListing> listed, string folder, Regex names, string directory,
        List<ReceiptStoreProblem> strangers, ReceiptProblemKind strangerKind, string outcome)
    {
        var kept = new List<string>();
        foreach (var blob in listed)
        {
            var name = blob.Name[(_prefix.Length + folder.Length)..];
            if (!names.IsMatch(name))
            {
                strangers.Add(new ReceiptStoreProblem(strangerKind, null, blob.Name,
                    $"the container holds '{blob.Name}', which the receipt store never writes: it was added by hand. Find out who added it and remove it."));
                continue;
            }
            var local = Path.Combine(directory, name);
            if (!File.Exists(local) || blob.ContentMd5 is null || !MD5.HashData(File.ReadAllBytes(local)).AsSpan().SequenceEqual(blob.ContentMd5))
            {
                var content = Blob(() => _container.Read(blob.Name, _cancellation), outcome);
                if (content is null) continue; // removed since the listing
                AtomicFile.Replace(local, content);
            }
            kept.Add(name);
        }
        var present = kept.ToHashSet(StringComparer.Ordinal);
        foreach (var file in System.IO.Directory.EnumerateFiles(directory).Select(Path.GetFileName))
            if (names.IsMatch(file!) && !present.Contains(file!))
                File.Delete(Path.Combine(directory, file!));
        return kept;
    }

    public void EnsureReadyForWrite() { }

    public IReadOnlyList<PendingReceipt> Pending() => Array.Empty<PendingReceipt>();

    /// <summary>
    /// Creates the receipt and envelope blobs, then the ledger line's blob at its sequence number. A name
    /// already taken is never overwritten: the same receipt is fine, another one under its digest's name is
    /// a conflict, and a taken sequence number means another writer chained first.
    /// </summary>
    public string? Persist(IReadOnlyList<string> writtenPaths, StoreChange change)
    {
        const string outcome = "The receipt is NOT stored";
        foreach (var path in writtenPaths.OrderBy(p => Path.GetFileName(p) == ReceiptStore.LedgerFileName))
        {
            var file = Path.GetFileName(path);
            if (file == ReceiptStore.LedgerFileName)
            {
                var name = $"{_prefix}{LedgerFolder}{change.Sequence:D12}.json";
                if (!Blob(() => _container.TryCreate(name, Encoding.UTF8.GetBytes(change.LedgerLine + "\n"), _cancellation), outcome))
                    throw new ReceiptStoreRaceLost($"ledger position {change.Sequence} was taken by another writer");
                continue;
            }
            var blobName = _prefix + ReceiptFolder + file;
            if (Blob(() => _container.TryCreate(blobName, File.ReadAllBytes(path), _cancellation), outcome)) continue;
            if (file.EndsWith(ReceiptStore.SignatureExtension, StringComparison.Ordinal)) continue; // an envelope for this receipt is there already
            var existing = Blob(() => _container.Read(blobName, _cancellation), outcome);
            if (existing is null || !ReceiptStore.Holds(existing, change.ReceiptDigest))
                throw new KfmException("ReceiptFileConflict", KfmErrorKind.ResourceExists,
                    $"{Description} already holds {blobName} with other content than the receipt it is named after; it was not overwritten, and the receipt is NOT stored. " +
                    "Run Test-KfmRollbackReceipt, find out who wrote that blob, and restore it from a trusted copy before saving again.", blobName);
        }
        return null;
    }

    public void Publish() { }

    public string? RecordedBy(string path) => null;

    public bool IsPublished(string path) => true;

    public IEnumerable<ReceiptStoreProblem> ExtraProblems() => _strangers;

    private T Blob<T>(Func<T> call, string outcome)
    {
        try
        {
            return call();
        }
        catch (BlobStorageException e) when (e.Failure == BlobFailure.Denied)
        {
            throw new KfmException("ReceiptStoreAccessDenied", KfmErrorKind.PermissionDenied,
                $"{outcome}: {Description} refused the credential on {e.Operation} ({e.Detail}). Check that receipts.blob's SAS or connection string " +
                "is current and grants read, create and list on the container (docs/rbac.md), then rerun.", Description, e);
        }
        catch (BlobStorageException e) when (e.Failure == BlobFailure.ContainerNotFound)
        {
            throw new KfmException("ReceiptStoreNotFound", KfmErrorKind.ObjectNotFound,
                $"{outcome}: {Description} does not exist. Create the container (for example `az storage container create --name <container>`) or correct receipts.blob.container; " +
                "the module never creates one, so a mistyped name cannot start a second, empty chain.", Description, e);
        }
        catch (BlobStorageException e)
        {
            throw new KfmException("ReceiptStoreUnavailable", KfmErrorKind.ConnectionError,
                $"{outcome}: {e.Operation} on {Description} failed ({e.Detail}). Check the network and receipts.blob.account_url or the connection string, then rerun.", Description, e);
        }
    }
}
