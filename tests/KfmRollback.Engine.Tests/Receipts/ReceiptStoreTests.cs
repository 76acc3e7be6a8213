using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Receipts;
using Xunit;

namespace KfmRollback.Engine.Tests.Receipts;

public class ReceiptStoreTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly FixedClock _clock = new(Samples.Now.AddMinutes(1));

    public void Dispose() => _dir.Dispose();

    private ReceiptStore Store(DsseSigner? signer = null) =>
        new(_dir.Sub("store"), new ReceiptStoreOptions { Clock = _clock, Signer = signer });

    private static string[] Lines(string path) => File.ReadAllLines(path).Where(l => l.Length > 0).ToArray();

    [Fact]
    public void Save_WritesContentAddressedFileAndChainedLedger()
    {
        var store = Store();
        var first = store.Save(Samples.Receipt("INC-1"));
        var second = store.Save(Samples.Receipt("INC-2"));

        Assert.Equal(ReceiptDigest.Of(Samples.Receipt("INC-1")), first.Digest);
        Assert.Equal(Path.Combine(store.Directory, ReceiptDigest.Hex(first.Digest) + ".json"), first.Path);
        Assert.Equal(ReceiptDigest.Of(JsonNode.Parse(File.ReadAllBytes(first.Path))), first.Digest);
        Assert.Null(first.CommitId);
        Assert.Null(first.SignaturePath);
        Assert.False(first.AlreadyStored);
        Assert.Equal(1, first.Sequence);
        Assert.Equal(2, second.Sequence);

        var lines = Lines(store.LedgerPath).Select(l => JsonNode.Parse(l)!.AsObject()).ToArray();
        Assert.Equal(2, lines.Length);
        Assert.Equal("rollback", (string?)lines[0]["event_type"]);
        Assert.Equal("INC-1", (string?)lines[0]["incident_id"]);
        Assert.Equal("prod", (string?)lines[0]["environment"]);
        Assert.Equal("2026-03-02T12:31:00Z", (string?)lines[0]["recorded_at"]);
        Assert.Null(lines[0]["prev"]);
        Assert.True(lines[0].ContainsKey("prev"));
        Assert.Equal((string?)lines[0]["entry_digest"], (string?)lines[1]["prev"]);
        Assert.Equal(second.ChainHead, (string?)lines[1]["entry_digest"]);

        // entry_digest is sha256 over the line's JCS without entry_digest.
        var unsigned = lines[1].DeepClone().AsObject();
        unsigned.Remove("entry_digest");
        Assert.Equal(second.ChainHead, ReceiptDigest.Of(unsigned));

        var report = store.Verify();
        Assert.True(report.IsValid, string.Join("\n", report.Problems));
        Assert.Equal(2, report.Entries);
        Assert.Equal(second.ChainHead, report.ChainHead);
        Assert.Empty(Directory.EnumerateFiles(store.Directory, "*.tmp-*"));
    }

    [Fact]
    public void SavingTheSameReceiptAgain_ReturnsTheExistingRecordWithoutANewLedgerLine()
    {
        var store = Store();
        var first = store.Save(Samples.Receipt());
        var ledgerBefore = File.ReadAllBytes(store.LedgerPath);
        _clock.UtcNow = _clock.UtcNow.AddHours(1);

        var again = store.Save(Samples.Receipt());

        Assert.True(again.AlreadyStored);
        Assert.Equal(first.Digest, again.Digest);
        Assert.Equal(first.Sequence, again.Sequence);
        Assert.Equal(first.ChainHead, again.ChainHead);
        Assert.Equal(ledgerBefore, File.ReadAllBytes(store.LedgerPath));
    }

    [Fact]
    public void DifferentContentUnderTheSameName_IsAConflict_AndNothingIsWritten()
    {
        var store = Store();
        var receipt = Samples.Receipt();
        var path = store.ReceiptPath(ReceiptDigest.Of(receipt));
        Directory.CreateDirectory(store.Directory);
        var planted = Encoding.UTF8.GetString(ReceiptJson.ToPrettyBytes(receipt)).Replace("bob", "mallory");
        File.WriteAllText(path, planted);

        var ex = Assert.Throws<KfmException>(() => store.Save(receipt));

        Assert.Equal("ReceiptFileConflict", ex.ErrorId);
        Assert.Equal(KfmErrorKind.ResourceExists, ex.Kind);
        Assert.Equal(planted, File.ReadAllText(path));
        Assert.False(File.Exists(store.LedgerPath));
        Assert.Single(Directory.EnumerateFiles(store.Directory, "*.json"));
    }

    [Fact]
    public void StoreUnderARegularFile_IsNotWritable_AndNothingIsWritten()
    {
        // chmod is no obstacle to root, a file in the parent path is.
        var blocker = _dir.Sub("not-a-dir");
        File.WriteAllText(blocker, "x");
        var store = new ReceiptStore(Path.Combine(blocker, "receipts"), new ReceiptStoreOptions { Clock = _clock });

        var ex = Assert.Throws<KfmException>(() => store.Save(Samples.Receipt()));

        Assert.Equal("ReceiptStoreNotWritable", ex.ErrorId);
        Assert.Equal(KfmErrorKind.WriteError, ex.Kind);
        Assert.Equal("x", File.ReadAllText(blocker));
        Assert.Equal(new[] { blocker }, Directory.EnumerateFileSystemEntries(_dir.Path));
    }

    [Fact]
    public void OneChangedByteInAReceipt_IsDetectedAndNamed()
    {
        var store = Store();
        store.Save(Samples.Receipt("INC-1"));
        var victim = store.Save(Samples.Receipt("INC-2"));
        store.Save(Samples.Receipt("INC-3"));
        var bytes = File.ReadAllBytes(victim.Path);
        var at = Encoding.UTF8.GetString(bytes).IndexOf("alice", StringComparison.Ordinal);
        bytes[at] = (byte)'A';
        File.WriteAllBytes(victim.Path, bytes);

        var report = store.Verify();

        Assert.False(report.IsValid);
        var problem = Assert.Single(report.Problems);
        Assert.Equal(ReceiptProblemKind.ReceiptDigestMismatch, problem.Kind);
        Assert.Equal(2, problem.Sequence);
        Assert.Equal(victim.Path, problem.Path);
        Assert.Same(problem, report.FirstProblem);
        Assert.Equal("ReceiptDigestMismatch", Assert.Throws<KfmException>(() => store.Get(victim.Digest)).ErrorId);
    }

    [Fact]
    public void ReformattingAReceiptFile_IsNotTampering()
    {
        var store = Store();
        var saved = store.Save(Samples.Receipt());
        File.WriteAllText(saved.Path, JsonNode.Parse(File.ReadAllText(saved.Path))!.ToJsonString());
        Assert.True(store.Verify().IsValid);
    }

    [Fact]
    public void ARemovedLedgerLine_IsDetectedAtTheFirstBrokenLink()
    {
        var store = Store();
        for (var i = 1; i <= 4; i++) store.Save(Samples.Receipt($"INC-{i}"));
        var lines = Lines(store.LedgerPath).ToList();
        lines.RemoveAt(1); // seq 2
        File.WriteAllLines(store.LedgerPath, lines);

        var report = store.Verify();

        Assert.False(report.IsValid);
        var first = report.FirstProblem!;
        Assert.Equal(ReceiptProblemKind.ChainBroken, first.Kind);
        Assert.Equal(3, first.Sequence);
        Assert.Equal(store.LedgerPath, first.Path);
        Assert.Contains("seq 1", first.Detail);
        // The orphaned receipt of seq 2 is reported too, after the broken link.
        Assert.Contains(report.Problems, p => p.Kind == ReceiptProblemKind.ReceiptUnrecorded);
        Assert.Equal(3, report.Entries);
    }

    [Fact]
    public void AnEditedLedgerLine_IsDetected()
    {
        var store = Store();
        store.Save(Samples.Receipt("INC-1"));
        store.Save(Samples.Receipt("INC-2"));
        var text = File.ReadAllText(store.LedgerPath).Replace("2026-03-02T12:31:00Z", "2026-03-01T12:31:00Z");
        File.WriteAllText(store.LedgerPath, text);

        var report = store.Verify();
        Assert.Equal(ReceiptProblemKind.LedgerEntryAltered, report.FirstProblem!.Kind);
        Assert.Equal(1, report.FirstProblem.Sequence);
    }

    [Fact]
    public void AGarbledLedgerLine_IsUnparsable_AndSaveRefusesToExtendIt()
    {
        var store = Store();
        store.Save(Samples.Receipt("INC-1"));
        File.AppendAllText(store.LedgerPath, "{\"seq\": 2, \"event_type\"\n");

        var report = store.Verify();
        Assert.Equal(ReceiptProblemKind.LedgerLineUnparsable, report.FirstProblem!.Kind);
        Assert.Equal(2, report.FirstProblem.Sequence);

        var before = File.ReadAllBytes(store.LedgerPath);
        Assert.Equal("ReceiptLedgerCorrupt", Assert.Throws<KfmException>(() => store.Save(Samples.Receipt("INC-2"))).ErrorId);
        Assert.Equal(before, File.ReadAllBytes(store.LedgerPath));
        Assert.Equal("ReceiptLedgerCorrupt", Assert.Throws<KfmException>(() => store.List()).ErrorId);
    }

    [Fact]
    public void AMissingReceiptFile_IsDetected()
    {
        var store = Store();
        var saved = store.Save(Samples.Receipt());
        File.Delete(saved.Path);
        var problem = Assert.Single(store.Verify().Problems);
        Assert.Equal(ReceiptProblemKind.ReceiptMissing, problem.Kind);
        Assert.Equal(saved.Path, problem.Path);
    }

    [Fact]
    public void ACutOffTail_IsOnlyVisibleWithAnAnchor()
    {
        var store = Store();
        store.Save(Samples.Receipt("INC-1"));
        store.Save(Samples.Receipt("INC-2"));
        var anchor = store.Save(Samples.Receipt("INC-3")).ChainHead;
        var midAnchor = Lines(store.LedgerPath)[1];
        var lines = Lines(store.LedgerPath);
        File.WriteAllLines(store.LedgerPath, lines.Take(2));
        File.Delete(store.ReceiptPath(ReceiptDigest.Of(Samples.Receipt("INC-3"))));

        Assert.True(store.Verify().IsValid);
        var report = store.Verify(anchor);
        Assert.False(report.IsValid);
        Assert.Equal(ReceiptProblemKind.AnchorNotFound, Assert.Single(report.Problems).Kind);
        // An older anchor that is still in the chain is fine: appending after an anchor is legitimate.
        Assert.True(store.Verify((string?)JsonNode.Parse(midAnchor)!["entry_digest"]).IsValid);
    }

    [Fact]
    public void ACutAndReappendedTail_IsCaughtByTheAnchor()
    {
        var store = Store();
        store.Save(Samples.Receipt("INC-1"));
        var anchor = store.Save(Samples.Receipt("INC-2")).ChainHead;
        File.WriteAllLines(store.LedgerPath, Lines(store.LedgerPath).Take(1));
        File.Delete(store.ReceiptPath(ReceiptDigest.Of(Samples.Receipt("INC-2"))));
        _clock.UtcNow = _clock.UtcNow.AddMinutes(5);
        store.Save(Samples.Receipt("INC-2-rewritten"));

        Assert.True(store.Verify().IsValid);
        Assert.Equal(ReceiptProblemKind.AnchorNotFound, Assert.Single(store.Verify(anchor).Problems).Kind);
    }

    [Fact]
    public void InterruptedSave_IsReportedAndHealedByRetrying()
    {
        var store = Store();
        store.Save(Samples.Receipt("INC-1"));
        var receipt = Samples.Receipt("INC-2");
        File.WriteAllBytes(store.ReceiptPath(ReceiptDigest.Of(receipt)), ReceiptJson.ToPrettyBytes(receipt));
        Assert.Equal(ReceiptProblemKind.ReceiptUnrecorded, Assert.Single(store.Verify().Problems).Kind);

        var result = store.Save(receipt);
        Assert.False(result.AlreadyStored);
        Assert.Equal(2, result.Sequence);
        Assert.True(store.Verify().IsValid);
    }

    [Fact]
    public void ListAndGet_ByDigestOrPrefix()
    {
        var store = Store();
        var a = store.Save(Samples.Receipt("INC-1"));
        var b = store.Save(Samples.Receipt("INC-2"));

        Assert.Equal(new[] { a.Digest, b.Digest }, store.List().Select(e => e.ReceiptDigest));
        var got = store.Get(b.Digest);
        Assert.Equal("INC-2", got.Receipt.IncidentId);
        Assert.Equal(2, got.LedgerEntry!.Seq);
        Assert.Equal(b.Digest, store.Get(ReceiptDigest.Hex(b.Digest)[..10].ToUpperInvariant()).Digest);
        Assert.Equal("ReceiptNotFound", Assert.Throws<KfmException>(() => store.Get("ffffffffff")).ErrorId);
        Assert.Equal("ReceiptDigestInvalid", Assert.Throws<KfmException>(() => store.Get("v1.2")).ErrorId);
    }

    [Fact]
    public void GetWithAnAmbiguousOrTooShortPrefix_IsRefused()
    {
        var store = Store();
        store.Save(Samples.Receipt());
        // Two names sharing a prefix; ambiguity is decided on names, before any content is read.
        File.WriteAllText(Path.Combine(store.Directory, "abcd" + new string('1', 60) + ".json"), "{}");
        File.WriteAllText(Path.Combine(store.Directory, "abcd" + new string('2', 60) + ".json"), "{}");
        Assert.Equal("ReceiptDigestAmbiguous", Assert.Throws<KfmException>(() => store.Get("sha256:abcd")).ErrorId);
        Assert.Equal("ReceiptDigestInvalid", Assert.Throws<KfmException>(() => store.Get("abc")).ErrorId);
    }

    [Fact]
    public void ConcurrentWriters_NeverInterleave()
    {
        var store = Store();
        Parallel.For(1, 13, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => Store().Save(Samples.Receipt($"INC-{i}")));
        var report = store.Verify();
        Assert.True(report.IsValid, string.Join("\n", report.Problems));
        Assert.Equal(12, report.Entries);
        Assert.Equal(Enumerable.Range(1, 12).Select(i => (long)i), store.List().Select(e => e.Seq));
    }

    [Fact]
    public void HeldLock_MakesTheSecondWriterWaitThenFailBusy()
    {
        var store = new ReceiptStore(_dir.Sub("store"), new ReceiptStoreOptions { Clock = _clock, LockTimeout = TimeSpan.FromMilliseconds(300) });
        store.Save(Samples.Receipt("INC-1"));
        using (new FileStream(Path.Combine(store.Directory, ".kfm-receipts.lock"), FileMode.Open, FileAccess.ReadWrite, FileShare.None))
        {
            var ex = Assert.Throws<KfmException>(() => store.Save(Samples.Receipt("INC-2")));
            Assert.Equal("ReceiptStoreBusy", ex.ErrorId);
        }
        Assert.Equal(2, store.Save(Samples.Receipt("INC-2")).Sequence);
    }

    [Fact]
    public void InvalidReceipt_IsNotStored()
    {
        var store = Store();
        var good = Samples.Receipt();
        var bad = new RollbackReceipt
        {
            IncidentId = good.IncidentId, RequestedBy = good.RequestedBy, ApprovedBy = good.ApprovedBy, StartedAt = good.StartedAt,
            CompletedAt = good.CompletedAt, Environment = good.Environment, Reason = good.Reason, CurrentRef = "kfm-api:latest",
            RollbackTargetRef = good.RollbackTargetRef, ChangedSurfaces = good.ChangedSurfaces, Verification = good.Verification,
            Notes = good.Notes, KfmIntegrity = good.KfmIntegrity,
        };
        Assert.Equal("ReceiptSchemaInvalid", Assert.Throws<KfmException>(() => store.Save(bad)).ErrorId);
        Assert.False(Directory.Exists(store.Directory));
    }

    [Fact]
    public void AForgerWhoRecomputesTheChain_IsCaughtByTheReceiptCrossCheckAndTheAnchor()
    {
        var store = Store();
        store.Save(Samples.Receipt("INC-1"));
        var anchor = store.Save(Samples.Receipt("INC-2")).ChainHead;
        LedgerForger.Rewrite(store.LedgerPath, (i, line) =>
        {
            if (i == 0) line["incident_id"] = "INC-999";
            return true;
        });

        var report = store.Verify();
        var problem = Assert.Single(report.Problems);
        Assert.Equal(ReceiptProblemKind.LedgerEntryMismatch, problem.Kind);
        Assert.Equal(1, problem.Sequence);
        Assert.Contains(store.Verify(anchor).Problems, p => p.Kind == ReceiptProblemKind.AnchorNotFound);
    }

    [Fact]
    public void AMistypedStorePath_IsNotFound_RatherThanEmptyAndValid()
    {
        var store = new ReceiptStore(_dir.Sub("no-such-store"));
        Assert.Equal("ReceiptStoreNotFound", Assert.Throws<KfmException>(() => store.Verify()).ErrorId);
        Assert.Equal("ReceiptStoreNotFound", Assert.Throws<KfmException>(() => store.List()).ErrorId);
        Assert.False(Directory.Exists(store.Directory));
    }
}
