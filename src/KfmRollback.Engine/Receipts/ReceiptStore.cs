using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Receipts;

public sealed class ReceiptStoreOptions
{
    public IClock? Clock { get; init; }
    /// <summary>When set, every new receipt also gets a <c>&lt;hex&gt;.dsse.json</c> envelope.</summary>
    public DsseSigner? Signer { get; init; }
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Shared stores: how many times a save is chained again after a concurrent writer landed first.</summary>
    public int MaxSaveAttempts { get; init; } = 25;
}

/// <summary>
/// Immutable, content-addressed receipts plus an append-only, hash-chained ledger.ndjson. Files are
/// named by the sha256 of the receipt's RFC 8785 form and are never overwritten. This class holds all
/// ledger, digest, locking and verification logic; the medium (plain directory or git) is a backend.
/// </summary>
public class ReceiptStore
{
    public const string LedgerFileName = "ledger.ndjson";
    public const string ReceiptExtension = ".json";
    public const string SignatureExtension = ".dsse.json";

    private static readonly Regex ReceiptFileName = new(@"^[a-f0-9]{64}\.json$", RegexOptions.CultureInvariant);
    private static readonly Regex HexPrefix = new(@"^[a-f0-9]{4,64}$", RegexOptions.CultureInvariant);

    private readonly IReceiptStoreBackend _backend;
    private readonly ReceiptStoreOptions _options;
    private readonly IClock _clock;
    private bool _synchronized;

    /// <summary>A store in a plain directory (created on first save).</summary>
    public ReceiptStore(string directory, ReceiptStoreOptions? options = null)
        : this(new DirectoryStoreBackend(directory), options)
    {
    }

    private protected ReceiptStore(IReceiptStoreBackend backend, ReceiptStoreOptions? options)
    {
        _backend = backend;
        _options = options ?? new ReceiptStoreOptions();
        _clock = _options.Clock ?? SystemClock.Instance;
    }

    public string Directory => _backend.Directory;
    public string LedgerPath => Path.Combine(Directory, LedgerFileName);
    public string ReceiptPath(string digest) => Path.Combine(Directory, ReceiptDigest.Hex(digest) + ReceiptExtension);
    public string SignaturePath(string digest) => Path.Combine(Directory, ReceiptDigest.Hex(digest) + SignatureExtension);

    /// <summary>
    /// Stores a receipt and records it in the ledger. Saving the same receipt again returns the existing
    /// record without a new ledger line; a different file under the same name is a conflict. In a shared
    /// store (a git remote, a blob container) the save starts from the shared chain head and counts only
    /// once it landed there: when a concurrent writer lands first, the ledger line is chained again on top
    /// of theirs and the save retried (at most <see cref="ReceiptStoreOptions.MaxSaveAttempts"/> times).
    /// </summary>
    public ReceiptSaveResult Save(RollbackReceipt receipt)
    {
        ArgumentNullException.ThrowIfNull(receipt);
        var node = ReceiptJson.ToJsonObject(receipt);
        ReceiptSchema.Validate(node);
        var digest = ReceiptDigest.Of(node);

        _backend.Prepare();
        using var storeLock = StoreLock.Acquire(_backend.LockFilePath, _options.LockTimeout, _backend.Description);
        for (var attempt = 1; ; attempt++)
        {
            if (_backend.IsShared) _backend.Refresh(forSave: true);
            _backend.EnsureReadyForWrite();
            try
            {
                var result = SaveOnce(receipt, digest);
                _synchronized = true;
                return result;
            }
            catch (ReceiptStoreRaceLost lost)
            {
                if (attempt >= _options.MaxSaveAttempts)
                    throw new KfmException("ReceiptStoreContended", KfmErrorKind.ResourceBusy,
                        $"The receipt is NOT stored: another writer landed first in {_backend.Description} on each of {attempt} attempts (last: {lost.Message}). " +
                        "Rerun Save-KfmRollbackReceipt; it chains the receipt on top of what the others stored.", _backend.Description, lost);
                Thread.Sleep(RetryDelay(attempt));
            }
        }
    }

    /// <summary>Exponential backoff with jitter, so writers that collided do not collide again in step.</summary>
    private static TimeSpan RetryDelay(int attempt)
    {
        var ceiling = Math.Min(2000, 50 << Math.Min(attempt, 10));
        return TimeSpan.FromMilliseconds(ceiling / 2 + Random.Shared.Next(ceiling / 2 + 1));
    }

    private ReceiptSaveResult SaveOnce(RollbackReceipt receipt, string digest)
    {
        var entries = IntactEntries(File.Exists(LedgerPath) ? File.ReadAllBytes(LedgerPath) : Array.Empty<byte>());
        // What an interrupted save on this machine never landed goes first, each on its own ledger line.
        foreach (var pending in _backend.Pending())
        {
            if (pending.Digest == digest || entries.Any(e => e.ReceiptDigest == pending.Digest)) continue;
            entries.Add(Write(pending.Receipt, pending.Digest, pending.Signature, entries, recorded: null).Entry);
        }

        var path = ReceiptPath(digest);
        var sigPath = SignaturePath(digest);
        var recorded = entries.FirstOrDefault(e => e.ReceiptDigest == digest);
        var fileExists = File.Exists(path);
        if (fileExists) EnsureFileHolds(path, digest);
        if (fileExists && recorded is not null)
        {
            // Recorded here but never pushed (the remote had no receipts yet when a save died): it lands now.
            var landedBefore = _backend.IsPublished(path);
            _backend.Publish();
            return new ReceiptSaveResult(digest, path, LedgerPath, recorded.Seq, entries[^1].EntryDigest,
                _backend.RecordedBy(path), File.Exists(sigPath) ? sigPath : null, AlreadyStored: landedBefore);
        }
        var written = Write(receipt, digest, signature: null, entries, recorded);
        _backend.Publish();
        return new ReceiptSaveResult(digest, path, LedgerPath, written.Entry.Seq, written.ChainHead, written.CommitId,
            File.Exists(sigPath) ? sigPath : null, AlreadyStored: false);
    }

    /// <summary>
    /// Writes the receipt (and its envelope) when missing, appends its ledger line unless
    /// <paramref name="recorded"/>, and has the backend persist them; on failure the files are as before.
    /// </summary>
    private (LedgerEntry Entry, string ChainHead, string? CommitId) Write(RollbackReceipt receipt, string digest, byte[]? signature,
        IReadOnlyList<LedgerEntry> entries, LedgerEntry? recorded)
    {
        var path = ReceiptPath(digest);
        var sigPath = SignaturePath(digest);
        var oldLedger = File.Exists(LedgerPath) ? File.ReadAllBytes(LedgerPath) : null;
        var created = new List<string>();
        var ledgerReplaced = false;
        try
        {
            if (!File.Exists(path))
            {
                AtomicFile.WriteNew(path, ReceiptJson.ToPrettyBytes(receipt));
                created.Add(path);
            }
            var envelope = signature ?? (_options.Signer is null ? null : Encoding.UTF8.GetBytes(_options.Signer.Sign(receipt).ToJson() + "\n"));
            if (envelope is not null && !File.Exists(sigPath))
            {
                AtomicFile.WriteNew(sigPath, envelope);
                created.Add(sigPath);
            }
            // A receipt file without a ledger line is left by an interrupted save: record it now.
            var entry = recorded;
            string? line = null;
            if (entry is null)
            {
                var head = entries.Count > 0 ? entries[^1] : null;
                entry = LedgerCodec.NewEntry((head?.Seq ?? 0) + 1, digest, receipt.IncidentId, receipt.Environment,
                    ReceiptFactory.Rfc3339Utc(_clock.UtcNow), head?.EntryDigest);
                line = LedgerCodec.ToLine(entry);
                AtomicFile.Replace(LedgerPath, Append(oldLedger, line));
                ledgerReplaced = true;
            }
            var chainHead = ledgerReplaced ? entry.EntryDigest : entries[^1].EntryDigest;
            var change = new StoreChange(receipt.IncidentId, receipt.Environment, digest, entry.Seq, chainHead, _clock.UtcNow, line);
            var written = ledgerReplaced ? created.Append(LedgerPath).ToList() : created;
            return (entry, chainHead, _backend.Persist(written, change));
        }
        catch (Exception ex)
        {
            // Leave the store exactly as it was: a half-done save must not look like a recorded one.
            Undo(created, ledgerReplaced, oldLedger);
            if (ex is KfmException or ReceiptStoreRaceLost) throw;
            if (ex is IOException or UnauthorizedAccessException)
                throw NotWritable(_backend.Description, "writing the receipt failed", ex);
            throw;
        }
    }

    /// <summary>A shared store is brought up to date once per store object, before its first read.</summary>
    private void Synchronize()
    {
        if (_synchronized || !_backend.IsShared) return;
        _backend.Prepare();
        using (StoreLock.Acquire(_backend.LockFilePath, _options.LockTimeout, _backend.Description))
        {
            _backend.Refresh(forSave: false);
        }
        _synchronized = true;
    }

    /// <summary>Ledger entries in order. Throws ReceiptLedgerCorrupt if any line is unreadable.</summary>
    public IReadOnlyList<LedgerEntry> List()
    {
        Synchronize();
        EnsureExists();
        if (!File.Exists(LedgerPath)) return Array.Empty<LedgerEntry>();
        var lines = LedgerChain.Check(File.ReadAllBytes(LedgerPath), LedgerPath);
        var unreadable = lines.FirstOrDefault(l => l.Entry is null);
        if (unreadable is not null) throw LedgerCorrupt(unreadable.Problems[0]);
        return lines.Select(l => l.Entry!).ToList();
    }

    /// <summary>
    /// One receipt by full digest (<c>sha256:…</c> or bare hex) or a unique hex prefix (4+ characters).
    /// The file's content is re-hashed; an edited file is refused, never returned.
    /// </summary>
    public StoredReceipt Get(string digestOrPrefix)
    {
        var wanted = ReceiptDigest.Hex((digestOrPrefix ?? string.Empty).Trim()).ToLowerInvariant();
        if (!HexPrefix.IsMatch(wanted))
            throw new KfmException("ReceiptDigestInvalid", KfmErrorKind.InvalidArgument,
                "Give a receipt digest ('sha256:' + 64 hex) or at least its first 4 hex characters, as shown by Get-KfmRollbackReceipt.", digestOrPrefix);
        Synchronize();
        var matches = ReceiptFiles().Where(f => Path.GetFileName(f).StartsWith(wanted, StringComparison.Ordinal)).ToList();
        if (matches.Count == 0)
            throw new KfmException("ReceiptNotFound", KfmErrorKind.ObjectNotFound,
                $"No receipt whose digest starts with {wanted} is stored in {_backend.Description}. List the store to see what it holds.", digestOrPrefix);
        if (matches.Count > 1)
            throw new KfmException("ReceiptDigestAmbiguous", KfmErrorKind.Ambiguous,
                $"{matches.Count} receipts start with {wanted}; give more characters of the digest.", digestOrPrefix);

        var path = matches[0];
        var digest = ReceiptDigest.Prefix + Path.GetFileNameWithoutExtension(path);
        var node = ReadReceiptNode(path, out _);
        if (node is null || ReceiptDigest.Of(node) != digest)
            throw new KfmException("ReceiptDigestMismatch", KfmErrorKind.SecurityError,
                $"The receipt file {path} no longer hashes to its name: it was modified after it was stored. Run Test-KfmRollbackReceipt and restore it from a trusted copy.", path);
        var receipt = ReceiptJson.FromJsonNode(node);
        var entry = File.Exists(LedgerPath)
            ? LedgerChain.Check(File.ReadAllBytes(LedgerPath), LedgerPath).Select(l => l.Entry).FirstOrDefault(e => e?.ReceiptDigest == digest)
            : null;
        var sigPath = SignaturePath(digest);
        return new StoredReceipt(digest, path, receipt, entry, File.Exists(sigPath) ? sigPath : null);
    }

    /// <summary>
    /// Re-derives everything: each receipt file's digest, each ledger entry digest and prev link, and
    /// (when given) that <paramref name="anchor"/> - a chain head recorded earlier somewhere the writer
    /// cannot edit - is still in the chain, which is the only way to notice a cut-off tail. With
    /// <paramref name="publicKeyPem"/> every receipt must carry a valid DSSE signature by that key.
    /// Problems are listed in ledger order; the first one is where the damage starts.
    /// </summary>
    public ReceiptStoreReport Verify(string? anchor = null, string? publicKeyPem = null)
    {
        Synchronize();
        EnsureExists();
        var anchorDigest = anchor is null ? null : NormalizeAnchor(anchor);
        using var key = publicKeyPem is null ? null : DsseSigner.LoadP256(publicKeyPem, "DssePublicKeyInvalid", "public key");

        var problems = new List<ReceiptStoreProblem>();
        var ledger = File.Exists(LedgerPath) ? File.ReadAllBytes(LedgerPath) : Array.Empty<byte>();
        var lines = LedgerChain.Check(ledger, LedgerPath);
        var recordedDigests = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            problems.AddRange(line.Problems);
            if (line.Entry is null) continue;
            recordedDigests.Add(line.Entry.ReceiptDigest);
            problems.AddRange(CheckReceipt(line.Entry, key));
        }
        foreach (var file in ReceiptFiles())
        {
            var digest = ReceiptDigest.Prefix + Path.GetFileNameWithoutExtension(file);
            if (!recordedDigests.Contains(digest))
                problems.Add(new(ReceiptProblemKind.ReceiptUnrecorded, null, file,
                    "no ledger line records this receipt: it was added by hand, or a save was interrupted (save the receipt again to record it)."));
        }
        var entries = lines.Where(l => l.Entry is not null).Select(l => l.Entry!).ToList();
        var chainHead = entries.Count > 0 ? entries[^1].EntryDigest : null;
        if (anchorDigest is not null && entries.All(e => e.EntryDigest != anchorDigest))
        {
            problems.Add(new(ReceiptProblemKind.AnchorNotFound, null, LedgerPath,
                $"the anchor {anchorDigest} is not in the chain ({entries.Count} entries, head {chainHead ?? "none"}): " +
                "entries were cut from the end of the ledger, or it was rewritten. Restore ledger.ndjson from a trusted copy."));
        }
        problems.AddRange(_backend.ExtraProblems());
        return new ReceiptStoreReport(problems.Count == 0, lines.Count, chainHead, problems);
    }

    /// <summary>A mistyped store path must not read as "empty and therefore valid".</summary>
    private void EnsureExists()
    {
        if (System.IO.Directory.Exists(Directory)) return;
        throw new KfmException("ReceiptStoreNotFound", KfmErrorKind.ObjectNotFound,
            $"There is no receipt store at {_backend.Description}. Check the path (receipts are saved where Save-KfmRollbackReceipt was pointed).", Directory);
    }

    private IEnumerable<ReceiptStoreProblem> CheckReceipt(LedgerEntry entry, System.Security.Cryptography.ECDsa? key)
    {
        var path = ReceiptPath(entry.ReceiptDigest);
        if (!File.Exists(path))
        {
            yield return new(ReceiptProblemKind.ReceiptMissing, entry.Seq, path,
                $"ledger seq {entry.Seq} records receipt {entry.ReceiptDigest} but its file is gone. Restore it from a trusted copy.");
            yield break;
        }
        var node = ReadReceiptNode(path, out var unreadable);
        if (node is null || ReceiptDigest.Of(node) != entry.ReceiptDigest)
        {
            yield return new(ReceiptProblemKind.ReceiptDigestMismatch, entry.Seq, path,
                $"receipt file for ledger seq {entry.Seq} {(unreadable ?? "no longer hashes to its recorded digest")}: it was modified after it was stored.");
            yield break;
        }
        var schemaProblems = ReceiptSchema.Check(node);
        if (schemaProblems.Count > 0)
            yield return new(ReceiptProblemKind.ReceiptSchemaInvalid, entry.Seq, path, $"receipt violates the schema: {string.Join("; ", schemaProblems)}.");
        if ((node["incident_id"] as JsonValue)?.ToString() != entry.IncidentId || (node["environment"] as JsonValue)?.ToString() != entry.Environment)
            yield return new(ReceiptProblemKind.LedgerEntryMismatch, entry.Seq, path,
                $"ledger seq {entry.Seq} names a different incident or environment than the receipt it points to.");
        if (key is not null)
        {
            var sigPath = SignaturePath(entry.ReceiptDigest);
            if (!File.Exists(sigPath))
            {
                yield return new(ReceiptProblemKind.SignatureMissing, entry.Seq, sigPath, $"receipt for ledger seq {entry.Seq} has no DSSE envelope.");
                yield break;
            }
            DsseVerification check;
            try
            {
                check = DsseSigner.Verify(DsseEnvelope.Parse(File.ReadAllText(sigPath)), key, entry.ReceiptDigest);
            }
            catch (KfmException ex)
            {
                check = new DsseVerification(false, ex.Message);
            }
            if (!check.IsValid)
                yield return new(ReceiptProblemKind.SignatureInvalid, entry.Seq, sigPath, $"signature for ledger seq {entry.Seq}: {check.Detail}");
        }
    }

    /// <summary>Parsed ledger when every line is intact; appending to a damaged chain would hide the damage.</summary>
    private static List<LedgerEntry> IntactEntries(byte[] ledger)
    {
        var lines = LedgerChain.Check(ledger, LedgerFileName);
        var first = lines.SelectMany(l => l.Problems).FirstOrDefault();
        if (first is not null) throw LedgerCorrupt(first);
        return lines.Select(l => l.Entry!).ToList();
    }

    private static KfmException LedgerCorrupt(ReceiptStoreProblem problem) =>
        new("ReceiptLedgerCorrupt", KfmErrorKind.InvalidData,
            $"The receipt ledger fails verification ({problem.Kind} at seq {problem.Sequence}: {problem.Detail}) " +
            "Nothing was written. Run Test-KfmRollbackReceipt, restore ledger.ndjson from a trusted copy, then retry.", problem.Path);

    private void EnsureFileHolds(string path, string digest)
    {
        var node = ReadReceiptNode(path, out _);
        if (node is not null && ReceiptDigest.Of(node) == digest) return;
        throw new KfmException("ReceiptFileConflict", KfmErrorKind.ResourceExists,
            $"{path} already exists with different content than the receipt it is named after; it was modified after it was stored. " +
            "Nothing was written. Run Test-KfmRollbackReceipt and restore the file from a trusted copy before saving again.", path);
    }

    /// <summary>True when <paramref name="content"/> is a receipt whose canonical form hashes to <paramref name="digest"/>.</summary>
    internal static bool Holds(byte[] content, string digest)
    {
        try
        {
            return ReceiptDigest.Of(JsonNode.Parse(content)) == digest;
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or KfmException)
        {
            return false;
        }
    }

    private static JsonNode? ReadReceiptNode(string path, out string? unreadable)
    {
        unreadable = null;
        try
        {
            return JsonNode.Parse(File.ReadAllBytes(path));
        }
        catch (System.Text.Json.JsonException)
        {
            unreadable = "is not valid JSON";
            return null;
        }
        catch (KfmException)
        {
            unreadable = "cannot be canonicalized";
            return null;
        }
    }

    private IEnumerable<string> ReceiptFiles() =>
        System.IO.Directory.Exists(Directory)
            ? System.IO.Directory.EnumerateFiles(Directory, "*" + ReceiptExtension).Where(f => ReceiptFileName.IsMatch(Path.GetFileName(f))).Order(StringComparer.Ordinal)
            : Enumerable.Empty<string>();

    private static byte[] Append(byte[]? ledger, string line)
    {
        var existing = ledger ?? Array.Empty<byte>();
        var separator = existing.Length > 0 && existing[^1] != (byte)'\n' ? "\n" : string.Empty;
        return existing.Concat(Encoding.UTF8.GetBytes(separator + line + "\n")).ToArray();
    }

    private void Undo(IEnumerable<string> created, bool ledgerReplaced, byte[]? oldLedger)
    {
        foreach (var file in created)
        {
            try { File.Delete(file); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        if (!ledgerReplaced) return;
        try
        {
            if (oldLedger is null) File.Delete(LedgerPath);
            else AtomicFile.Replace(LedgerPath, oldLedger);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static string NormalizeAnchor(string anchor)
    {
        var a = anchor.Trim().ToLowerInvariant();
        if (!a.StartsWith(ReceiptDigest.Prefix, StringComparison.Ordinal)) a = ReceiptDigest.Prefix + a;
        if (!ReceiptDigest.IsDigest(a))
            throw new KfmException("ReceiptAnchorInvalid", KfmErrorKind.InvalidArgument,
                "The anchor must be a ledger chain head ('sha256:' + 64 hex), as returned by Save-KfmRollbackReceipt (ChainHead) and noted in the incident ticket.", "anchor");
        return a;
    }

    internal static KfmException NotWritable(string store, string why, Exception inner) =>
        new("ReceiptStoreNotWritable", KfmErrorKind.WriteError,
            $"The receipt store ({store}) is not writable: {why}. Nothing was written. Point the store at a directory " +
            "you can write to (its parent must be a directory) and retry.", store, inner);
}
