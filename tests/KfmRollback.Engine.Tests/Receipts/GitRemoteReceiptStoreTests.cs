using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Receipts;
using KfmRollback.Engine.Tests.GitOps;
using LibGit2Sharp;

namespace KfmRollback.Engine.Tests.Receipts;

/// <summary>
/// The git receipt store with a remote, as separate machines use it: each store has its own clone, the
/// remote is a bare repository reached over file:// or smart HTTP (lighttpd + git http-backend).
/// </summary>
public sealed class GitRemoteReceiptStoreTests : IDisposable
{
    private const string Branch = "receipts";
    private readonly TempDir _dir = new();
    private readonly FixedClock _clock = new(Samples.Now.AddMinutes(1));
    private GitHttpServer? _server;

    public void Dispose()
    {
        _server?.Dispose();
        _dir.Dispose();
    }

    /// <summary>An empty bare repository: the shared store before anyone saved a receipt.</summary>
    private string NewBare(string name = "remote.git")
    {
        var bare = _dir.Sub(name);
        Directory.CreateDirectory(bare);
        Git.Run(bare, "init", "--bare", "-q", "-b", "main");
        return bare;
    }

    private static string FileUrl(string bare) => new Uri(bare).AbsoluteUri;

    /// <summary>The bare repository served over HTTP with basic auth; returns its URL.</summary>
    private (string Url, string Served) ServeOverHttp(string bare)
    {
        _server ??= new GitHttpServer();
        var name = Path.GetFileName(bare);
        return (_server.UrlOf(name).AbsoluteUri, _server.Serve(bare, name));
    }

    private static readonly GitCredential HttpCredential = new(GitHttpServer.User, GitHttpServer.Password);

    private GitReceiptStore Store(string clone, string remote, GitCredential? credential = null, Action? beforePush = null) =>
        new(_dir.Sub(clone), new GitReceiptStoreOptions
        {
            Branch = Branch, Subdirectory = "receipts", RemoteUrl = remote, Credential = credential, BeforePush = beforePush,
            AuthorName = "Ops Bot", AuthorEmail = "ops@localhost",
        }, new ReceiptStoreOptions { Clock = _clock });

    private static string RemoteHead(string bare) => Git.Run(bare, "rev-parse", "refs/heads/" + Branch);

    private static string[] RemoteLedger(string bare) =>
        Git.Run(bare, "show", $"{Branch}:receipts/ledger.ndjson").Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public void ASaveLandsOnTheRemote_AndAFreshCloneSeesEveryReceipt()
    {
        var bare = NewBare();
        var first = Store("machine-a", FileUrl(bare)).Save(Samples.Receipt("INC-1"));
        var second = Store("machine-a", FileUrl(bare)).Save(Samples.Receipt("INC-2"));

        Assert.False(second.AlreadyStored);
        Assert.Equal(second.CommitId, RemoteHead(bare));
        Assert.Equal(first.CommitId, Git.Run(bare, "rev-parse", Branch + "^"));
        Assert.Equal(2, RemoteLedger(bare).Length);

        // A new sandbox: an empty directory that only knows the URL.
        var fresh = Store("machine-b", FileUrl(bare));
        Assert.Equal(new[] { "INC-1", "INC-2" }, fresh.List().Select(e => e.IncidentId));
        Assert.Equal("INC-2", fresh.Get(second.Digest).Receipt.IncidentId);
        var report = fresh.Verify(second.ChainHead);
        Assert.True(report.IsValid, string.Join("\n", report.Problems));
    }

    [Fact]
    public void AConcurrentWriterLandingFirst_IsChainedUpon_NeverOverwritten()
    {
        var bare = NewBare();
        var url = FileUrl(bare);
        var other = Store("machine-b", url);
        var landedFirst = default(ReceiptSaveResult);
        var pushes = 0;
        // Machine B lands its receipt between A's commit and A's first push: A's push is not a fast-forward.
        var mine = Store("machine-a", url, beforePush: () =>
        {
            if (pushes++ == 0) landedFirst = other.Save(Samples.Receipt("INC-B"));
        });

        var saved = mine.Save(Samples.Receipt("INC-A"));

        Assert.Equal(2, pushes);
        Assert.Equal(2, saved.Sequence);
        Assert.Equal(saved.CommitId, RemoteHead(bare));
        Assert.Equal(landedFirst!.CommitId, Git.Run(bare, "rev-parse", Branch + "^"));
        Assert.Equal("2", Git.Run(bare, "rev-list", "--count", Branch));
        var fresh = Store("auditor", url);
        Assert.Equal(new[] { "INC-B", "INC-A" }, fresh.List().Select(e => e.IncidentId));
        Assert.True(fresh.Verify(saved.ChainHead).IsValid);
        using var repo = new Repository(_dir.Sub("machine-a"));
        Assert.Empty(repo.Refs.FromGlob(GitStoreBackend.PendingPrefix + "*"));
    }

    [Fact]
    public void WritersThatKeepLosing_GiveUpAfterTheBound_SayingTheReceiptIsNotStored()
    {
        var bare = NewBare();
        var url = FileUrl(bare);
        var other = Store("machine-b", url);
        var n = 0;
        var mine = new GitReceiptStore(_dir.Sub("machine-a"), new GitReceiptStoreOptions
        {
            Branch = Branch, Subdirectory = "receipts", RemoteUrl = url,
            BeforePush = () => other.Save(Samples.Receipt($"INC-B{n++}")),
        }, new ReceiptStoreOptions { Clock = _clock, MaxSaveAttempts = 3 });

        var e = Assert.Throws<KfmException>(() => mine.Save(Samples.Receipt("INC-A")));

        Assert.Equal("ReceiptStoreContended", e.ErrorId);
        Assert.Equal(KfmErrorKind.ResourceBusy, e.Kind);
        Assert.Contains("NOT stored", e.Message);
        Assert.Equal(3, n);
        Assert.DoesNotContain(Store("auditor", url).List(), x => x.IncidentId == "INC-A");
        // The next save (the operator's rerun) lands it on top of everything B stored.
        var rerun = Store("machine-a", url).Save(Samples.Receipt("INC-A"));
        Assert.False(rerun.AlreadyStored);
        Assert.Equal(4, rerun.Sequence);
        Assert.True(Store("auditor", url).Verify(rerun.ChainHead).IsValid);
    }

    public static TheoryData<string> Transports => new() { "file", "http" };

    [Theory]
    [MemberData(nameof(Transports))]
    public void TwoMachinesSaving20ReceiptsEachAtOnce_ChainEveryReceipt_AndTheChainVerifies(string transport)
    {
        var bare = NewBare();
        var (url, served) = transport == "http" ? ServeOverHttp(bare) : (FileUrl(bare), bare);
        var credential = transport == "http" ? HttpCredential : null;
        var saved = RacingMachines.Save(new[] { "a", "b" }, 20, machine => Store(machine, url, credential));

        Assert.Equal(40, saved.Count);
        Assert.All(saved, r => Assert.False(r.AlreadyStored));
        var auditor = Store("auditor", url, credential);
        var entries = auditor.List();
        Assert.Equal(40, entries.Count);
        Assert.Equal(saved.Select(r => r.Digest).Order(), entries.Select(e => e.ReceiptDigest).Order());
        Assert.Equal(Enumerable.Range(1, 40).Select(i => (long)i), entries.Select(e => e.Seq));
        var report = auditor.Verify(saved.MaxBy(r => r.Sequence)!.ChainHead);
        Assert.True(report.IsValid, string.Join("\n", report.Problems));
        // One commit per receipt on a straight line: nothing was forced, merged or lost.
        Assert.Equal("40", Git.Run(served, "rev-list", "--count", Branch));
        Assert.Equal("0", Git.Run(served, "rev-list", "--count", "--merges", Branch));
    }

    [Fact]
    public void AProcessKilledAfterItsCommit_BeforeThePush_IsStoredOnceByTheRerun()
    {
        var bare = NewBare();
        var url = FileUrl(bare);
        Store("machine-a", url).Save(Samples.Receipt("INC-0"));
        var receipt = Samples.Receipt("INC-1");
        Assert.Throws<SimulatedCrash>(() => Store("machine-a", url, beforePush: () => throw new SimulatedCrash()).Save(receipt));
        using (var repo = new Repository(_dir.Sub("machine-a")))
            Assert.Contains($"Kfm-Receipt-Digest: {ReceiptDigest.Of(receipt)}", repo.Head.Tip.Message);
        Assert.Single(RemoteLedger(bare));

        // Reads show the remote, not the commit that never landed.
        Assert.Equal(new[] { "INC-0" }, Store("machine-a", url).List().Select(e => e.IncidentId));
        var rerun = Store("machine-a", url).Save(receipt);

        Assert.False(rerun.AlreadyStored);
        Assert.Equal(2, RemoteLedger(bare).Length);
        Assert.Equal(rerun.CommitId, RemoteHead(bare));
        var again = Store("machine-a", url).Save(receipt);
        Assert.True(again.AlreadyStored);
        Assert.Equal(2, RemoteLedger(bare).Length);
        Assert.True(Store("auditor", url).Verify(rerun.ChainHead).IsValid);
        using var clone = new Repository(_dir.Sub("machine-a"));
        Assert.Empty(clone.Refs.FromGlob(GitStoreBackend.PendingPrefix + "*"));
    }

    [Fact]
    public void AKillBeforeTheFirstPushEver_IsStoredByTheRerun_AsANewSave()
    {
        var bare = NewBare();
        var url = FileUrl(bare);
        var receipt = Samples.Receipt("INC-1");
        Assert.Throws<SimulatedCrash>(() => Store("machine-a", url, beforePush: () => throw new SimulatedCrash()).Save(receipt));
        Assert.Throws<InvalidOperationException>(() => RemoteHead(bare));

        var rerun = Store("machine-a", url).Save(receipt);

        Assert.False(rerun.AlreadyStored);
        Assert.Equal(rerun.CommitId, RemoteHead(bare));
        Assert.Single(RemoteLedger(bare));
    }

    [Fact]
    public void AKillBetweenWritingFilesAndCommitting_IsUndone_AndTheRerunStoresOnce()
    {
        var bare = NewBare();
        var url = FileUrl(bare);
        Store("machine-a", url).Save(Samples.Receipt("INC-0"));
        var receipt = Samples.Receipt("INC-1");
        var digest = ReceiptDigest.Of(receipt);
        // What a save leaves when it dies before its commit: the receipt file, a temp file, one more ledger line, some of it staged.
        var storeDir = Path.Combine(_dir.Sub("machine-a"), "receipts");
        File.WriteAllBytes(Path.Combine(storeDir, ReceiptDigest.Hex(digest) + ".json"), ReceiptJson.ToPrettyBytes(receipt));
        File.WriteAllText(Path.Combine(storeDir, $"ledger.ndjson.tmp-{Guid.NewGuid():N}"), "partial");
        File.AppendAllText(Path.Combine(storeDir, "ledger.ndjson"), "{\"seq\":2}\n");
        using (var repo = new Repository(_dir.Sub("machine-a")))
            Commands.Stage(repo, "receipts/ledger.ndjson");

        var rerun = Store("machine-a", url).Save(receipt);

        Assert.False(rerun.AlreadyStored);
        Assert.Equal(2, RemoteLedger(bare).Length);
        Assert.True(Store("auditor", url).Verify(rerun.ChainHead).IsValid);
        using var clone = new Repository(_dir.Sub("machine-a"));
        Assert.False(clone.RetrieveStatus(new StatusOptions { IncludeUntracked = true }).IsDirty);
    }

    [Fact]
    public void OtherUncommittedEdits_AreNeverDiscarded()
    {
        var bare = NewBare();
        var url = FileUrl(bare);
        var saved = Store("machine-a", url).Save(Samples.Receipt("INC-0"));
        Store("machine-b", url).Save(Samples.Receipt("INC-1"));
        File.WriteAllText(saved.Path, File.ReadAllText(saved.Path).Replace("5xx spike", "planned"));

        var e = Assert.Throws<KfmException>(() => Store("machine-a", url).Save(Samples.Receipt("INC-2")));

        Assert.Equal("ReceiptStoreDirty", e.ErrorId);
        Assert.Contains("planned", File.ReadAllText(saved.Path));
        Assert.Equal(2, RemoteLedger(bare).Length);
    }

    [Fact]
    public void AHookRejectingThePush_IsNotARace_TheReceiptIsNotStored_AndTheNextSaveLandsIt()
    {
        var (url, served) = ServeOverHttp(NewBare());
        Store("machine-a", url, HttpCredential).Save(Samples.Receipt("INC-0"));
        var before = RemoteHead(served);
        var hook = Path.Combine(served, "hooks", "pre-receive");
        File.WriteAllText(hook, "#!/bin/sh\necho 'receipts is protected: changes need a pull request' >&2\nexit 1\n");
        File.SetUnixFileMode(hook, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var refused = Samples.Receipt("INC-1");

        var e = Assert.Throws<KfmException>(() => Store("machine-a", url, HttpCredential).Save(refused));

        Assert.Equal("ReceiptStorePushRejected", e.ErrorId);
        Assert.Equal(KfmErrorKind.InvalidOperation, e.Kind);
        Assert.Contains("NOT stored", e.Message);
        Assert.Contains("'receipts'", e.Message);
        Assert.Contains("rerun Save-KfmRollbackReceipt", e.Message);
        Assert.DoesNotContain(GitHttpServer.Password, e.ToString());
        Assert.Equal(before, RemoteHead(served));
        // The clone shows the remote again; the refused commit is kept aside, not lost.
        var clone = Store("machine-a", url, HttpCredential);
        Assert.Equal(new[] { "INC-0" }, clone.List().Select(x => x.IncidentId));

        File.Delete(hook);
        var next = Store("machine-a", url, HttpCredential).Save(Samples.Receipt("INC-2"));

        Assert.Equal(new[] { "INC-0", "INC-1", "INC-2" }, Store("auditor", url, HttpCredential).List().Select(x => x.IncidentId));
        Assert.Equal(3, next.Sequence);
        Assert.True(Store("auditor", url, HttpCredential).Verify(next.ChainHead).IsValid);
    }

    [Fact]
    public void ARemoteThatRefusesPushes_IsAccessDenied_AndNothingIsStored()
    {
        var (url, served) = ServeOverHttp(NewBare());
        Store("machine-a", url, HttpCredential).Save(Samples.Receipt("INC-0"));
        Git.Run(served, "config", "http.receivepack", "false");

        var e = Assert.Throws<KfmException>(() => Store("machine-a", url, HttpCredential).Save(Samples.Receipt("INC-1")));

        Assert.Equal("ReceiptStoreAccessDenied", e.ErrorId);
        Assert.Equal(KfmErrorKind.PermissionDenied, e.Kind);
        Assert.Contains("NOT stored", e.Message);
        Assert.Contains("docs/rbac.md", e.Message);
        Assert.DoesNotContain(GitHttpServer.Password, e.ToString());
        Assert.Single(RemoteLedger(served));
    }

    [Fact]
    public void WrongCredentials_AreAccessDenied_WithoutTheSecret()
    {
        var (url, _) = ServeOverHttp(NewBare());
        var e = Assert.Throws<KfmException>(() => Store("machine-a", url, new GitCredential(GitHttpServer.User, "not-the-password-42")).Save(Samples.Receipt("INC-0")));
        Assert.Equal("ReceiptStoreAccessDenied", e.ErrorId);
        Assert.Contains("NOT stored", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("not-the-password-42", e.ToString());
    }

    [Fact]
    public void ARemoteWhoseHistoryNoLongerContainsOurs_IsRefused_NamingBothHeads()
    {
        var bare = NewBare();
        var url = FileUrl(bare);
        var first = Store("machine-a", url).Save(Samples.Receipt("INC-1"));
        var second = Store("machine-a", url).Save(Samples.Receipt("INC-2"));
        // Someone force-pushed the branch back: the second receipt is gone from the remote.
        Git.Run(bare, "update-ref", "refs/heads/" + Branch, first.CommitId!);

        var e = Assert.Throws<KfmException>(() => Store("machine-a", url).Save(Samples.Receipt("INC-3")));

        Assert.Equal("ReceiptStoreRemoteRewritten", e.ErrorId);
        Assert.Contains(first.CommitId!, e.Message);
        Assert.Contains(second.CommitId!, e.Message);
        Assert.Contains("never force-pushed", e.Message);
        Assert.Equal(first.CommitId, RemoteHead(bare));
        Assert.Throws<KfmException>(() => Store("machine-a", url).List());
    }

    [Fact]
    public void AStoreThatLivedOnThisMachineOnly_IsChainedOnTopOfTheRemote_WhenItGetsOne()
    {
        var bare = NewBare();
        var url = FileUrl(bare);
        Store("machine-a", url).Save(Samples.Receipt("INC-1"));
        new GitReceiptStore(_dir.Sub("machine-b"), new GitReceiptStoreOptions { Branch = Branch, Subdirectory = "receipts" },
            new ReceiptStoreOptions { Clock = _clock }).Save(Samples.Receipt("INC-LOCAL"));

        var saved = Store("machine-b", url).Save(Samples.Receipt("INC-2"));

        Assert.Equal(new[] { "INC-1", "INC-LOCAL", "INC-2" }, Store("auditor", url).List().Select(e => e.IncidentId));
        Assert.True(Store("auditor", url).Verify(saved.ChainHead).IsValid);
        Assert.Equal("3", Git.Run(bare, "rev-list", "--count", Branch));
    }

    [Fact]
    public void AClonePointedAtAnotherRemote_IsRefused()
    {
        var url = FileUrl(NewBare("one.git"));
        Store("machine-a", url).Save(Samples.Receipt("INC-1"));
        var e = Assert.Throws<KfmException>(() => Store("machine-a", FileUrl(NewBare("two.git"))).Save(Samples.Receipt("INC-2")));
        Assert.Equal("ReceiptStoreRemoteMismatch", e.ErrorId);
    }

    [Fact]
    public void ACloneWithAnOrigin_PushesThereWithoutAConfiguredUrl()
    {
        var bare = NewBare();
        Store("machine-a", FileUrl(bare)).Save(Samples.Receipt("INC-1"));
        var clone = _dir.Sub("operator-clone");
        Git.Run(_dir.Path, "clone", "-q", "-b", Branch, bare, clone);

        var saved = new GitReceiptStore(clone, new GitReceiptStoreOptions { Subdirectory = "receipts" }, new ReceiptStoreOptions { Clock = _clock })
            .Save(Samples.Receipt("INC-2"));

        Assert.Equal(saved.CommitId, RemoteHead(bare));
    }

    private sealed class SimulatedCrash : Exception
    {
    }
}
