
namespace KfmRollback.Engine.Receipts;

/// <summary>What <see cref="ReceiptStore.Save"/> did. <see cref="ChainHead"/> is worth copying into the incident ticket as an anchor.</summary>
public sealed record ReceiptSaveResult(
    string Digest,
    string Path,
    string LedgerPath,
    long Sequence,
    string ChainHead,
    string? CommitId,
    string? SignaturePath,
    bool AlreadyStored);

/// <summary>A receipt read back from a store, after its file content was checked against its digest.</summary>
public sealed record StoredReceipt(
    string Digest,
    string Path,
    RollbackReceipt Receipt,
    LedgerEntry? LedgerEntry,
    string? SignaturePath);

public enum ReceiptProblemKind
{
    /// <summary>A ledger line is not a complete JSON entry.</summary>
    LedgerLineUnparsable,
    /// <summary>A ledger line's content no longer matches its entry_digest (the line was edited).</summary>
    LedgerEntryAltered,
    /// <summary>A line's prev or seq does not follow the line before it (a line was removed, inserted or reordered).</summary>
    ChainBroken,
    /// <summary>The ledger names a receipt whose file is gone.</summary>
    ReceiptMissing,
    /// <summary>A receipt file's canonical content no longer hashes to its name (the file was edited).</summary>
    ReceiptDigestMismatch,
    /// <summary>A receipt file hashes correctly but no longer satisfies the receipt schema.</summary>
    ReceiptSchemaInvalid,
    /// <summary>The ledger's incident_id/environment disagree with the receipt it points to.</summary>
    LedgerEntryMismatch,
    /// <summary>A receipt file that no ledger line records (inserted, or left by an interrupted save: re-save it).</summary>
    ReceiptUnrecorded,
    /// <summary>The anchor recorded earlier is not in the chain: the tail was cut off or the ledger rewritten.</summary>
    AnchorNotFound,
    /// <summary>A public key was given but a receipt has no DSSE envelope.</summary>
    SignatureMissing,
    /// <summary>The DSSE envelope does not verify with the key, or does not attest this receipt.</summary>
    SignatureInvalid,
    /// <summary>Git backend: store files differ from the last commit.</summary>
    UncommittedChange,
    /// <summary>Git backend: a commit changed or removed ledger lines an earlier commit recorded.</summary>
    LedgerHistoryRewritten,
    /// <summary>An evidence bundle a receipt names is missing, or one of its files was changed, removed or added.</summary>
    EvidenceInvalid,
}

public sealed record ReceiptStoreProblem(ReceiptProblemKind Kind, long? Sequence, string? Path, string Detail);

public sealed record ReceiptStoreReport(
    bool IsValid,
    int Entries,
    string? ChainHead,
    IReadOnlyList<ReceiptStoreProblem> Problems)
{
    /// <summary>The earliest problem in ledger order: where to start the investigation.</summary>
    public ReceiptStoreProblem? FirstProblem => Problems.Count > 0 ? Problems[0] : null;
}
