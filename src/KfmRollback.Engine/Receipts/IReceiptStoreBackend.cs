
namespace KfmRollback.Engine.Receipts;

/// <summary>
/// Where a <see cref="ReceiptStore"/> keeps its files and how a save is made durable. The ledger,
/// digests, locking and verification live in ReceiptStore; a backend only knows its medium.
/// </summary>
internal interface IReceiptStoreBackend
{
    /// <summary>Absolute directory holding the receipt files and ledger.ndjson.</summary>
    string Directory { get; }

    /// <summary>Lock file path; must not itself count as store content.</summary>
    string LockFilePath { get; }

    /// <summary>Human description for messages (no secrets: a path).</summary>
    string Description { get; }

    /// <summary>
    /// True when the files in <see cref="Directory"/> are this machine's copy of a store others write too
    /// (a git remote, a blob container): reads and saves then start with <see cref="Refresh"/>, and a save
    /// counts only once <see cref="Publish"/> landed.
    /// </summary>
    bool IsShared { get; }

    /// <summary>Creates what is missing (directory, repository) or throws ReceiptStoreNotWritable having written nothing.</summary>
    void Prepare();

    /// <summary>Shared stores, under the lock: makes <see cref="Directory"/> show the shared store as it is now.</summary>
    void Refresh(bool forSave);

    /// <summary>Called under the lock before any write; refuses states a save must not build on.</summary>
    void EnsureReadyForWrite();

    /// <summary>
    /// Receipts this machine wrote that never reached the shared store (a save interrupted between its
    /// local commit and its push), for the next save to chain on top of the shared head.
    /// </summary>
    IReadOnlyList<PendingReceipt> Pending();

    /// <summary>
    /// Makes the files just written durable; returns a commit id when the medium has one. Throws
    /// <see cref="ReceiptStoreRaceLost"/> when a concurrent writer took the ledger position first.
    /// </summary>
    string? Persist(IReadOnlyList<string> writtenPaths, StoreChange change);

    /// <summary>
    /// Shared stores: lands what <see cref="Persist"/> made durable locally (a push). Throws
    /// <see cref="ReceiptStoreRaceLost"/> when a concurrent writer landed first, and a KfmException
    /// saying the receipt is not stored for anything else.
    /// </summary>
    void Publish();

    /// <summary>The commit that recorded <paramref name="path"/>, when the medium has commits.</summary>
    string? RecordedBy(string path);

    /// <summary>Whether what recorded <paramref name="path"/> had already landed in the shared store before this save (always, for a local one).</summary>
    bool IsPublished(string path);

    /// <summary>Medium-specific findings for Verify (e.g. uncommitted edits).</summary>
    IEnumerable<ReceiptStoreProblem> ExtraProblems();
}

/// <summary>What a save changed, for commit messages and trailers; <paramref name="LedgerLine"/> when it added one.</summary>
internal sealed record StoreChange(string IncidentId, string Environment, string ReceiptDigest, long Sequence, string ChainHead, DateTimeOffset At, string? LedgerLine);

/// <summary>A receipt written on this machine but never landed in the shared store, with its signature envelope if it had one.</summary>
internal sealed record PendingReceipt(string Digest, RollbackReceipt Receipt, byte[]? Signature);

/// <summary>
/// A concurrent writer landed first (a non-fast-forward push, a ledger position already taken): the save
/// is redone on top of theirs. Never leaves the store: after the last attempt it becomes ReceiptStoreContended.
/// </summary>
internal sealed class ReceiptStoreRaceLost : Exception
{
    public ReceiptStoreRaceLost(string detail) : base(detail) { }
}

/// <summary>A plain directory: atomic renames are all the durability there is.</summary>
internal sealed class DirectoryStoreBackend : IReceiptStoreBackend
{
    public DirectoryStoreBackend(string directory)
    {
        Directory = Path.GetFullPath(directory);
    }

    public string Directory { get; }
    public string LockFilePath => Path.Combine(Directory, ".kfm-receipts.lock");
    public string Description => $"directory {Directory}";

    public void Prepare()
    {
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw ReceiptStore.NotWritable(Description, "the directory cannot be created", ex);
        }
    }

    public bool IsShared => false;
    public void Refresh(bool forSave) { }
    public void EnsureReadyForWrite() { }
    public IReadOnlyList<PendingReceipt> Pending() => Array.Empty<PendingReceipt>();
    public string? Persist(IReadOnlyList<string> writtenPaths, StoreChange change) => null;
    public void Publish() { }
    public string? RecordedBy(string path) => null;
    public bool IsPublished(string path) => true;
    public IEnumerable<ReceiptStoreProblem> ExtraProblems() => Array.Empty<ReceiptStoreProblem>();
}
