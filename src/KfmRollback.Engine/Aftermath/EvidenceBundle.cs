using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Receipts;

namespace KfmRollback.Engine.Aftermath;

/// <summary>One file of a bundle as its manifest records it.</summary>
public sealed record EvidenceFile(string Path, string Sha256, long Bytes);

/// <summary>
/// A saved evidence bundle: a directory named by its digest, the sha256 of the RFC 8785 form of
/// its <c>manifest.json</c>, which lists the sha256 of every other file. Changing, adding or
/// removing any file, or the manifest, breaks the digest the receipt and timeline recorded.
/// </summary>
public sealed record EvidenceBundle
{
    public const string ManifestFileName = "manifest.json";
    public const string SchemaValue = "kfm.evidence.bundle/v1";
    /// <summary>Receipt subjects naming a bundle start with this.</summary>
    public const string SubjectPrefix = ReceiptSubject.EvidencePrefix;

    public required string Digest { get; init; }
    public required string Directory { get; init; }
    public required string IncidentId { get; init; }
    public required string Environment { get; init; }
    public required DateTimeOffset CapturedAt { get; init; }
    /// <summary>Why it was taken: <c>freeze</c> (step 0), <c>aftermath</c> (after verification) or <c>manual</c>.</summary>
    public required string Stage { get; init; }
    public required IReadOnlyList<EvidenceFile> Files { get; init; }

    public string PathOf(string relative) => System.IO.Path.Combine(Directory, relative.Replace('/', System.IO.Path.DirectorySeparatorChar));

    /// <summary>A bundle's file, parsed; null when the bundle does not have it.</summary>
    public JsonNode? ReadJson(string relative) =>
        Files.Any(f => f.Path == relative) && File.Exists(PathOf(relative)) ? JsonNode.Parse(File.ReadAllText(PathOf(relative))) : null;
}

/// <summary>What is wrong with one bundle, for Test-KfmRollbackReceipt.</summary>
public sealed record EvidenceProblem(string Digest, string? Path, string Detail);

/// <summary>The evidence directory: writes bundles once (content-addressed), lists them per incident and verifies them.</summary>
public sealed class EvidenceStore
{
    public EvidenceStore(string directory) => Root = System.IO.Path.GetFullPath(directory);

    public string Root { get; }

    /// <summary>
    /// How a file is named in what people keep (timeline, report, follow-up): relative to the store,
    /// with '/' separators, never a machine path (a drill's store is a temporary folder that is gone
    /// afterwards); a file outside the store by its file name.
    /// </summary>
    public string NameOf(string path)
    {
        string relative = System.IO.Path.GetRelativePath(Root, System.IO.Path.GetFullPath(path));
        return relative.StartsWith("..", StringComparison.Ordinal) || System.IO.Path.IsPathRooted(relative)
            ? System.IO.Path.GetFileName(path)
            : relative.Replace(System.IO.Path.DirectorySeparatorChar, '/');
    }

    /// <summary>
    /// Writes <paramref name="files"/> (relative path → bytes) as a bundle. The same content yields
    /// the same digest and directory, so saving twice is harmless.
    /// </summary>
    public EvidenceBundle Save(string incidentId, string environment, string stage, DateTimeOffset capturedAt, IReadOnlyDictionary<string, byte[]> files)
    {
        var entries = files.OrderBy(f => f.Key, StringComparer.Ordinal)
            .Select(f => new EvidenceFile(f.Key, Hex(f.Value), f.Value.LongLength)).ToList();
        JsonObject manifest = Manifest(incidentId, environment, stage, capturedAt, entries);
        string hex = ReceiptDigest.Hex(ReceiptDigest.Of(manifest));
        string target = System.IO.Path.Combine(Root, hex);
        if (!System.IO.Directory.Exists(target))
        {
            string staging = System.IO.Path.Combine(Root, $".{hex}.tmp-{Guid.NewGuid():N}");
            try
            {
                foreach (var (relative, bytes) in files)
                {
                    string path = System.IO.Path.Combine(staging, relative.Replace('/', System.IO.Path.DirectorySeparatorChar));
                    System.IO.Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
                    File.WriteAllBytes(path, bytes);
                }
                File.WriteAllText(System.IO.Path.Combine(staging, EvidenceBundle.ManifestFileName), manifest.ToJsonString(new() { WriteIndented = true }));
                System.IO.Directory.Move(staging, target);
            }
            catch (IOException) when (System.IO.Directory.Exists(target))
            {
                // Another writer saved the same content first: it is the same bundle.
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new KfmException("EvidenceNotWritable", KfmErrorKind.WriteError,
                    $"Cannot write the evidence bundle under '{Root}': {ex.Message} Set evidence.directory (or -Path) to a writable directory.", Root, ex);
            }
            finally
            {
                if (System.IO.Directory.Exists(staging)) System.IO.Directory.Delete(staging, recursive: true);
            }
        }
        return Open(hex) ?? throw new KfmException("EvidenceNotWritable", KfmErrorKind.WriteError,
            $"The evidence bundle {hex} was written under '{Root}' but cannot be read back. Check the directory.", Root);
    }

    /// <summary>The bundle named by <paramref name="digest"/> (sha256:… or hex), or null when absent or unreadable.</summary>
    public EvidenceBundle? Open(string digest)
    {
        string hex = ReceiptDigest.Hex(digest);
        string directory = System.IO.Path.Combine(Root, hex);
        string manifestPath = System.IO.Path.Combine(directory, EvidenceBundle.ManifestFileName);
        if (!File.Exists(manifestPath)) return null;
        try
        {
            var manifest = JsonNode.Parse(File.ReadAllText(manifestPath))!.AsObject();
            return new EvidenceBundle
            {
                Digest = ReceiptDigest.Prefix + hex,
                Directory = directory,
                IncidentId = manifest["incident_id"]!.GetValue<string>(),
                Environment = manifest["environment"]!.GetValue<string>(),
                Stage = manifest["stage"]!.GetValue<string>(),
                CapturedAt = DateTimeOffset.Parse(manifest["captured_at"]!.GetValue<string>(), CultureInfo.InvariantCulture),
                Files = manifest["files"]!.AsArray().Select(f => new EvidenceFile(f!["path"]!.GetValue<string>(), f["sha256"]!.GetValue<string>(), f["bytes"]!.GetValue<long>())).ToList(),
            };
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or NullReferenceException or InvalidOperationException or FormatException or IOException)
        {
            return null;
        }
    }

    /// <summary>The incident's bundles, oldest first (unreadable ones are skipped; Verify reports them).</summary>
    public IReadOnlyList<EvidenceBundle> ForIncident(string incidentId) =>
        !System.IO.Directory.Exists(Root) ? Array.Empty<EvidenceBundle>()
        : System.IO.Directory.EnumerateDirectories(Root)
            .Select(System.IO.Path.GetFileName)
            .Where(name => name is { Length: 64 } && name.All(Uri.IsHexDigit))
            .Select(name => Open(name!))
            .Where(b => b is not null && b.IncidentId == incidentId)
            .Select(b => b!)
            .OrderBy(b => b.CapturedAt)
            .ToList();

    /// <summary>
    /// Re-derives the bundle's digest from its manifest and every file's sha256 from its bytes.
    /// Every difference is a problem: a changed, removed or added file, or an edited manifest.
    /// </summary>
    public IReadOnlyList<EvidenceProblem> Verify(string digest)
    {
        string hex = ReceiptDigest.Hex(digest);
        string directory = System.IO.Path.Combine(Root, hex);
        string manifestPath = System.IO.Path.Combine(directory, EvidenceBundle.ManifestFileName);
        var problems = new List<EvidenceProblem>();
        if (!File.Exists(manifestPath))
        {
            problems.Add(new(hex, directory, $"evidence bundle {hex} is missing from {Root}. Restore it from a trusted copy."));
            return problems;
        }
        JsonNode? manifest;
        try { manifest = JsonNode.Parse(File.ReadAllText(manifestPath)); }
        catch (System.Text.Json.JsonException) { manifest = null; }
        if (manifest is null || ReceiptDigest.Hex(ReceiptDigest.Of(manifest)) != hex)
        {
            problems.Add(new(hex, manifestPath, $"the manifest of evidence bundle {hex} no longer hashes to its name: it was edited after it was saved."));
            return problems;
        }
        var listed = new HashSet<string>(StringComparer.Ordinal) { EvidenceBundle.ManifestFileName };
        foreach (JsonNode? file in manifest["files"]?.AsArray() ?? new JsonArray())
        {
            string relative = file!["path"]!.GetValue<string>();
            listed.Add(relative);
            string path = System.IO.Path.Combine(directory, relative.Replace('/', System.IO.Path.DirectorySeparatorChar));
            if (!File.Exists(path))
                problems.Add(new(hex, path, $"evidence file {relative} of bundle {hex} was removed."));
            else if (Hex(File.ReadAllBytes(path)) != file["sha256"]!.GetValue<string>())
                problems.Add(new(hex, path, $"evidence file {relative} of bundle {hex} was changed after it was saved (its sha256 differs from the manifest)."));
        }
        foreach (string path in System.IO.Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories))
        {
            string relative = System.IO.Path.GetRelativePath(directory, path).Replace(System.IO.Path.DirectorySeparatorChar, '/');
            if (!listed.Contains(relative))
                problems.Add(new(hex, path, $"evidence file {relative} was added to bundle {hex} after it was saved (the manifest does not list it)."));
        }
        return problems;
    }

    private static JsonObject Manifest(string incidentId, string environment, string stage, DateTimeOffset capturedAt, IEnumerable<EvidenceFile> files) => new()
    {
        ["schema"] = EvidenceBundle.SchemaValue,
        ["incident_id"] = incidentId,
        ["environment"] = environment,
        ["stage"] = stage,
        ["captured_at"] = ReceiptFactory.Rfc3339Utc(capturedAt),
        ["digest_algorithm"] = "sha256",
        ["canonicalization"] = "RFC8785",
        ["files"] = new JsonArray(files.Select(f => (JsonNode)new JsonObject { ["path"] = f.Path, ["sha256"] = f.Sha256, ["bytes"] = f.Bytes }).ToArray()),
    };

    internal static string Hex(byte[] bytes) => Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant();

    internal static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);
}

/// <summary>Checks the evidence bundles the stored receipts name (their <c>evidence/…</c> subjects).</summary>
public static class EvidenceVerification
{
    /// <summary>The report with a problem for every damaged or missing bundle a receipt names.</summary>
    public static ReceiptStoreReport Check(ReceiptStore receipts, ReceiptStoreReport report, EvidenceStore evidence)
    {
        var problems = new List<ReceiptStoreProblem>();
        IReadOnlyList<LedgerEntry> entries;
        try { entries = receipts.List(); }
        catch (KfmException) { return report; } // a damaged ledger is already the report's first problem
        foreach (LedgerEntry entry in entries)
        {
            StoredReceipt stored;
            try { stored = receipts.Get(entry.ReceiptDigest); }
            catch (KfmException) { continue; } // the receipt's own problem is already in the report
            foreach (ReceiptSubject subject in stored.Receipt.KfmIntegrity.Subjects.Where(s => s.Name.StartsWith(EvidenceBundle.SubjectPrefix, StringComparison.Ordinal)))
            {
                problems.AddRange(evidence.Verify(subject.Digest["sha256"])
                    .Select(p => new ReceiptStoreProblem(ReceiptProblemKind.EvidenceInvalid, entry.Seq, p.Path, $"receipt of ledger seq {entry.Seq}: {p.Detail}")));
            }
        }
        return problems.Count == 0 ? report : report with { IsValid = false, Problems = report.Problems.Concat(problems).ToList() };
    }
}
