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

    /// <summary>Creates what is missing (directory, repository) or throws ReceiptStoreNotWritable having written nothing.</summary>
    void Prepare();

    /// <summary>Called under the lock before any write; refuses states a save must not build on.</summary>
    void EnsureReadyForWrite();

    /// <summary>Makes the files just written durable; returns a commit id when the medium has one.</summary>
    string? Persist(IReadOnlyList<string> writtenPaths, StoreChange change);

    /// <summary>The commit that recorded <paramref name="path"/>, when the medium has commits.</summary>
    string? RecordedBy(string path);

    /// <summary>Medium-specific findings for Verify (e.g. uncommitted edits).</summary>
    IEnumerable<ReceiptStoreProblem> ExtraProblems();
}

/// <summary>What a save changed, for commit messages and trailers.</summary>
internal sealed record StoreChange(string IncidentId, string Environment, string ReceiptDigest, long Sequence, string ChainHead, DateTimeOffset At);

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

    public void EnsureReadyForWrite() { }
    public string? Persist(IReadOnlyList<string> writtenPaths, StoreChange change) => null;
    public string? RecordedBy(string path) => null;
    public IEnumerable<ReceiptStoreProblem> ExtraProblems() => Array.Empty<ReceiptStoreProblem>();
}
