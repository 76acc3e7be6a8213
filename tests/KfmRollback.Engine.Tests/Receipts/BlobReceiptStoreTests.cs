using System.Text;
using Azure;
using Azure.Storage.Sas;
using KfmRollback.Engine.Adapters.BlobStorage;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Receipts;
using KfmRollback.Engine.Tests.Support;

namespace KfmRollback.Engine.Tests.Receipts;

/// <summary>The blob container receipt store against Azurite; each store object has its own local copy (its own "machine").</summary>
public sealed class BlobReceiptStoreTests : IClassFixture<AzuriteServer>, IDisposable
{
    private readonly AzuriteServer _azurite;
    private readonly string _container;
    private readonly TempDir _dir = new();
    private readonly FixedClock _clock = new(Samples.Now.AddMinutes(1));

    public BlobReceiptStoreTests(AzuriteServer azurite)
    {
        _azurite = azurite;
        _container = azurite.NewContainer();
    }

    public void Dispose() => _dir.Dispose();

    private AzureBlobContainer Container() => AzureBlobContainer.FromConnectionString(_azurite.ConnectionString, _container);

    private BlobReceiptStore Store(string machine, IBlobContainer? container = null, int maxAttempts = 25) =>
        new(container ?? Container(), _dir.Sub(machine), new BlobReceiptStoreOptions { Prefix = "prod" },
            new ReceiptStoreOptions { Clock = _clock, MaxSaveAttempts = maxAttempts });

    private List<string> BlobNames() => _azurite.Admin(_container).GetBlobs().Select(b => b.Name).ToList();

    private List<string> LedgerBlobs() => BlobNames().Where(n => n.StartsWith("prod/ledger/", StringComparison.Ordinal)).ToList();

    [Fact]
    public void ASave_CreatesTheReceiptAndOneLedgerBlob_AndAFreshMachineSeesEverything()
    {
        var first = Store("machine-a").Save(Samples.Receipt("INC-1"));
        var second = Store("machine-a").Save(Samples.Receipt("INC-2"));

        Assert.Equal(new[]
        {
            "prod/ledger/000000000001.json", "prod/ledger/000000000002.json",
            $"prod/receipts/{ReceiptDigest.Hex(first.Digest)}.json", $"prod/receipts/{ReceiptDigest.Hex(second.Digest)}.json",
        }.Order(StringComparer.Ordinal), BlobNames().Order(StringComparer.Ordinal));
        Assert.Null(second.CommitId);
        var fresh = Store("machine-b");
        Assert.Equal(new[] { "INC-1", "INC-2" }, fresh.List().Select(e => e.IncidentId));
        Assert.Equal("INC-1", fresh.Get(first.Digest).Receipt.IncidentId);
        var report = fresh.Verify(second.ChainHead);
        Assert.True(report.IsValid, string.Join("\n", report.Problems));
        Assert.True(Store("machine-b").Save(Samples.Receipt("INC-1")).AlreadyStored);
        Assert.Equal(2, LedgerBlobs().Count);
    }

    [Fact]
    public void TwoWritersRacingForOneSequenceNumber_OneGetsTheConflict_AndChainsOnTheNext()
    {
        var other = Store("machine-b");
        var racing = new InterceptingContainer(Container())
        {
            BeforeLedgerCreate = n => { if (n == 1) other.Save(Samples.Receipt("INC-B")); },
        };

        var saved = Store("machine-a", racing).Save(Samples.Receipt("INC-A"));

        Assert.Equal(1, racing.Refused);
        Assert.Equal(2, saved.Sequence);
        Assert.Equal(new[] { "INC-B", "INC-A" }, Store("auditor").List().Select(e => e.IncidentId));
        Assert.True(Store("auditor").Verify(saved.ChainHead).IsValid);
        Assert.Equal(2, LedgerBlobs().Count);
    }

    [Fact]
    public void AWriterThatKeepsLosing_StopsAtTheBound_SayingTheReceiptIsNotStored()
    {
        var other = Store("machine-b");
        var racing = new InterceptingContainer(Container()) { BeforeLedgerCreate = n => other.Save(Samples.Receipt($"INC-B{n}")) };

        var e = Assert.Throws<KfmException>(() => Store("machine-a", racing, maxAttempts: 3).Save(Samples.Receipt("INC-A")));

        Assert.Equal("ReceiptStoreContended", e.ErrorId);
        Assert.Contains("NOT stored", e.Message);
        Assert.Equal(3, racing.Refused);
        Assert.DoesNotContain(Store("auditor").List(), x => x.IncidentId == "INC-A");
    }

    [Fact]
    public void TwoMachinesSaving20ReceiptsEachAtOnce_ChainEveryReceipt_AndTheChainVerifies()
    {
        var saved = RacingMachines.Save(new[] { "a", "b" }, 20, machine => Store(machine));

        var auditor = Store("auditor");
        var entries = auditor.List();
        Assert.Equal(saved.Select(r => r.Digest).Order(), entries.Select(e => e.ReceiptDigest).Order());
        Assert.Equal(Enumerable.Range(1, 40).Select(i => $"prod/ledger/{i:D12}.json"), LedgerBlobs());
        var report = auditor.Verify(saved.MaxBy(r => r.Sequence)!.ChainHead);
        Assert.True(report.IsValid, string.Join("\n", report.Problems));
    }

    [Fact]
    public void AKillAfterTheReceiptBlob_BeforeTheLedgerBlob_IsStoredOnceByTheRerunOnANewMachine()
    {
        var receipt = Samples.Receipt("INC-1");
        var dying = new InterceptingContainer(Container()) { BeforeLedgerCreate = _ => throw new SimulatedCrash() };
        Assert.Throws<SimulatedCrash>(() => Store("machine-a", dying).Save(receipt));
        Assert.Empty(LedgerBlobs());
        // Until it is recorded, the receipt blob is reported, not trusted.
        Assert.Equal(ReceiptProblemKind.ReceiptUnrecorded, Store("auditor").Verify().FirstProblem!.Kind);

        var rerun = Store("new-sandbox").Save(receipt);

        Assert.False(rerun.AlreadyStored);
        Assert.Single(LedgerBlobs());
        Assert.True(Store("auditor-2").Verify(rerun.ChainHead).IsValid);
        Assert.True(Store("new-sandbox").Save(receipt).AlreadyStored);
        Assert.Single(LedgerBlobs());
    }

    [Fact]
    public void ABlobAlreadyUnderTheReceiptsName_IsNeverOverwritten()
    {
        var receipt = Samples.Receipt("INC-1");
        var name = $"prod/receipts/{ReceiptDigest.Hex(ReceiptDigest.Of(receipt))}.json";
        _azurite.Admin(_container).UploadBlob(name, new BinaryData("{\"forged\": true}"));

        var e = Assert.Throws<KfmException>(() => Store("machine-a").Save(receipt));

        Assert.Equal("ReceiptFileConflict", e.ErrorId);
        Assert.Equal("{\"forged\": true}", _azurite.Admin(_container).GetBlobClient(name).DownloadContent().Value.Content.ToString());
        Assert.Empty(LedgerBlobs());
    }

    [Fact]
    public void ASasWithReadCreateAndList_IsEnough_AndCannotOverwrite()
    {
        var sas = _azurite.Sas(_container, BlobContainerSasPermissions.Read | BlobContainerSasPermissions.Create | BlobContainerSasPermissions.List);
        var container = AzureBlobContainer.FromSas(_azurite.ServiceUrl, sas, _container);

        var saved = Store("machine-a", container).Save(Samples.Receipt("INC-1"));
        Assert.True(Store("machine-b", container).Verify(saved.ChainHead).IsValid);

        // What the permissions rule out: overwriting a stored receipt with the same credential.
        var client = new Azure.Storage.Blobs.BlobContainerClient(new Uri($"{_azurite.ServiceUrl}/{_container}"), new AzureSasCredential(sas));
        var refused = Assert.Throws<RequestFailedException>(() =>
            client.GetBlobClient($"prod/receipts/{ReceiptDigest.Hex(saved.Digest)}.json").Upload(new BinaryData("{}"), overwrite: true));
        Assert.Equal(403, refused.Status);
    }

    [Fact]
    public void ASasThatCannotCreate_IsAccessDenied_AndNothingIsStored()
    {
        var sas = _azurite.Sas(_container, BlobContainerSasPermissions.Read | BlobContainerSasPermissions.List);
        var e = Assert.Throws<KfmException>(() => Store("machine-a", AzureBlobContainer.FromSas(_azurite.ServiceUrl, sas, _container)).Save(Samples.Receipt("INC-1")));
        Assert.Equal("ReceiptStoreAccessDenied", e.ErrorId);
        Assert.Equal(KfmErrorKind.PermissionDenied, e.Kind);
        Assert.Contains("NOT stored", e.Message);
        Assert.DoesNotContain("sig=", e.ToString());
        Assert.Empty(BlobNames());
    }

    [Fact]
    public void AMissingContainer_IsNotCreated_AndSaysSo()
    {
        var e = Assert.Throws<KfmException>(() =>
            Store("machine-a", AzureBlobContainer.FromConnectionString(_azurite.ConnectionString, "no-such-container")).Save(Samples.Receipt("INC-1")));
        Assert.Equal("ReceiptStoreNotFound", e.ErrorId);
        Assert.Contains("never creates", e.Message);
        Assert.False(_azurite.Admin("no-such-container").Exists().Value);
    }

    [Fact]
    public void VerifyJudgesTheContainer_NotTheLocalCopy()
    {
        var first = Store("machine-a").Save(Samples.Receipt("INC-1"));
        var second = Store("machine-a").Save(Samples.Receipt("INC-2"));
        // Someone with the account key replaces a stored receipt and deletes a ledger line.
        var receiptBlob = _azurite.Admin(_container).GetBlobClient($"prod/receipts/{ReceiptDigest.Hex(first.Digest)}.json");
        var edited = receiptBlob.DownloadContent().Value.Content.ToString().Replace("5xx spike", "planned");
        receiptBlob.Upload(new BinaryData(Encoding.UTF8.GetBytes(edited)), overwrite: true);

        var report = Store("machine-a").Verify(second.ChainHead);
        Assert.Equal(ReceiptProblemKind.ReceiptDigestMismatch, report.FirstProblem!.Kind);
        Assert.Equal(1, report.FirstProblem.Sequence);

        _azurite.Admin(_container).DeleteBlob("prod/ledger/000000000001.json");
        _azurite.Admin(_container).UploadBlob("prod/ledger/notes.txt", new BinaryData("hi"));
        var cut = Store("machine-a").Verify(second.ChainHead);
        Assert.Contains(cut.Problems, p => p.Kind == ReceiptProblemKind.ChainBroken);
        Assert.Contains(cut.Problems, p => p.Path == "prod/ledger/notes.txt");
        Assert.Throws<KfmException>(() => Store("machine-a").Save(Samples.Receipt("INC-3")));
    }

    private sealed class SimulatedCrash : Exception
    {
    }

    /// <summary>The real container, with a hook before each ledger blob is created (a concurrent writer, or a crash, lands exactly there).</summary>
    private sealed class InterceptingContainer(IBlobContainer inner) : IBlobContainer
    {
        private int _ledgerCreates;

        public Action<int>? BeforeLedgerCreate { get; init; }
        public int Refused { get; private set; }
        public string Description => inner.Description;

        public bool TryCreate(string name, byte[] content, CancellationToken cancellationToken)
        {
            if (name.Contains("/ledger/", StringComparison.Ordinal)) BeforeLedgerCreate?.Invoke(++_ledgerCreates);
            var created = inner.TryCreate(name, content, cancellationToken);
            if (!created && name.Contains("/ledger/", StringComparison.Ordinal)) Refused++;
            return created;
        }

        public byte[]? Read(string name, CancellationToken cancellationToken) => inner.Read(name, cancellationToken);
        public IReadOnlyList<BlobListing> List(string prefix, CancellationToken cancellationToken) => inner.List(prefix, cancellationToken);
    }
}
