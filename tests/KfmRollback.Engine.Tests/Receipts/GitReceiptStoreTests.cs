using KfmRollback.Engine.Core;
using KfmRollback.Engine.Receipts;
using LibGit2Sharp;
using Xunit;

namespace KfmRollback.Engine.Tests.Receipts;

public class GitReceiptStoreTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly FixedClock _clock = new(Samples.Now.AddMinutes(1));

    public void Dispose() => _dir.Dispose();

    private static void CommitFile(Repository repo, string relative, string content, string message)
    {
        var full = Path.Combine(repo.Info.WorkingDirectory, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content);
        Commands.Stage(repo, relative);
        var who = new Signature("Test", "test@localhost", Samples.Now);
        repo.Commit(message, who, who);
    }

    [Fact]
    public void EmptyDirectory_IsInitialised_AndEachSaveIsOneCommitOnTheBranch()
    {
        var workTree = _dir.Sub("receipts-repo");
        var store = new GitReceiptStore(workTree,
            new GitReceiptStoreOptions { Branch = "receipts", AuthorName = "Ops Bot", AuthorEmail = "ops@localhost" },
            new ReceiptStoreOptions { Clock = _clock });

        var first = store.Save(Samples.Receipt("INC-1"));
        var second = store.Save(Samples.Receipt("INC-2"));

        using var repo = new Repository(workTree);
        Assert.Equal("receipts", repo.Head.FriendlyName);
        Assert.Equal(2, repo.Commits.Count());
        var head = repo.Head.Tip;
        Assert.Equal(second.CommitId, head.Sha);
        Assert.Equal(first.CommitId, head.Parents.Single().Sha);
        Assert.StartsWith($"receipt: INC-2 {second.Digest}\n", head.Message);
        Assert.Contains($"Kfm-Receipt-Digest: {second.Digest}", head.Message);
        Assert.Contains($"Kfm-Chain-Head: {second.ChainHead}", head.Message);
        Assert.Contains("Kfm-Ledger-Seq: 2", head.Message);
        Assert.Equal("Ops Bot", head.Author.Name);
        Assert.Equal(_clock.UtcNow, head.Author.When);
        // One commit carries both the receipt and the ledger line.
        var changed = repo.Diff.Compare<TreeChanges>(head.Parents.Single().Tree, head.Tree).Select(c => c.Path).Order().ToArray();
        Assert.Equal(new[] { Path.GetFileName(second.Path), "ledger.ndjson" }.Order().ToArray(), changed);
        Assert.False(repo.RetrieveStatus().IsDirty);

        var report = store.Verify(second.ChainHead);
        Assert.True(report.IsValid, string.Join("\n", report.Problems));
        Assert.Equal(2, report.Entries);
    }

    [Fact]
    public void ExistingRepository_WithASubdirectory_CommitsThere_AndResaveIsIdempotent()
    {
        var workTree = _dir.Sub("gitops");
        Repository.Init(workTree);
        using (var repo = new Repository(workTree))
        {
            CommitFile(repo, "README.md", "gitops repo\n", "init");
            repo.Config.Set("user.name", "Config Person", ConfigurationLevel.Local);
            repo.Config.Set("user.email", "config@localhost", ConfigurationLevel.Local);
        }
        var store = new GitReceiptStore(workTree, new GitReceiptStoreOptions { Subdirectory = "ops/receipts" }, new ReceiptStoreOptions { Clock = _clock });

        var saved = store.Save(Samples.Receipt());
        var again = store.Save(Samples.Receipt());

        Assert.Equal(Path.Combine(workTree, "ops", "receipts", "ledger.ndjson"), saved.LedgerPath);
        Assert.True(again.AlreadyStored);
        Assert.Equal(saved.CommitId, again.CommitId);
        using var check = new Repository(workTree);
        Assert.Equal(2, check.Commits.Count());
        Assert.Equal("Config Person", check.Head.Tip.Author.Name);
        Assert.NotNull(check.Head.Tip[$"ops/receipts/{Path.GetFileName(saved.Path)}"]);
        Assert.True(store.Verify().IsValid);
    }

    [Fact]
    public void DirtyStorePaths_AreRefused_AndVerifyReportsTheUncommittedEdit()
    {
        var workTree = _dir.Sub("repo");
        var store = new GitReceiptStore(workTree, null, new ReceiptStoreOptions { Clock = _clock });
        var saved = store.Save(Samples.Receipt("INC-1"));
        File.WriteAllText(saved.LedgerPath, File.ReadAllText(saved.LedgerPath).Replace("INC-1", "INC-7"));

        var ex = Assert.Throws<KfmException>(() => store.Save(Samples.Receipt("INC-2")));
        Assert.Equal("ReceiptStoreDirty", ex.ErrorId);

        var report = store.Verify();
        Assert.Equal(ReceiptProblemKind.LedgerEntryAltered, report.FirstProblem!.Kind);
        Assert.Contains(report.Problems, p => p.Kind == ReceiptProblemKind.UncommittedChange && p.Path == saved.LedgerPath);
        using var repo = new Repository(workTree);
        Assert.Single(repo.Commits);
    }

    [Fact]
    public void TamperingCommittedByHand_IsStillCaughtByVerify()
    {
        var workTree = _dir.Sub("repo");
        var store = new GitReceiptStore(workTree, null, new ReceiptStoreOptions { Clock = _clock });
        store.Save(Samples.Receipt("INC-1"));
        var victim = store.Save(Samples.Receipt("INC-2"));
        using (var repo = new Repository(workTree))
        {
            File.WriteAllText(victim.Path, File.ReadAllText(victim.Path).Replace("5xx spike", "planned"));
            Commands.Stage(repo, Path.GetFileName(victim.Path));
            var who = new Signature("Mallory", "m@localhost", Samples.Now);
            repo.Commit("tidy", who, who);
        }
        var problem = Assert.Single(store.Verify().Problems);
        Assert.Equal(ReceiptProblemKind.ReceiptDigestMismatch, problem.Kind);
        Assert.Equal(2, problem.Sequence);
    }

    [Fact]
    public void OtherBranchCheckedOut_IsRefusedRatherThanSwitched()
    {
        var workTree = _dir.Sub("repo");
        Repository.Init(workTree);
        using (var repo = new Repository(workTree)) CommitFile(repo, "a.txt", "a", "init");
        var store = new GitReceiptStore(workTree, new GitReceiptStoreOptions { Branch = "receipts-not-here" });
        Assert.Equal("ReceiptStoreWrongBranch", Assert.Throws<KfmException>(() => store.Save(Samples.Receipt())).ErrorId);
    }

    [Fact]
    public void NonEmptyDirectoryThatIsNotARepository_IsRefused()
    {
        var workTree = _dir.Sub("plain");
        Directory.CreateDirectory(workTree);
        File.WriteAllText(Path.Combine(workTree, "x.txt"), "x");
        var store = new GitReceiptStore(workTree);
        Assert.Equal("ReceiptStoreNotARepository", Assert.Throws<KfmException>(() => store.Save(Samples.Receipt())).ErrorId);
        Assert.False(Directory.Exists(Path.Combine(workTree, ".git")));
    }

    [Fact]
    public void UnwritableLocation_IsNotWritable()
    {
        var blocker = _dir.Sub("file");
        File.WriteAllText(blocker, "x");
        var store = new GitReceiptStore(Path.Combine(blocker, "repo"));
        Assert.Equal("ReceiptStoreNotWritable", Assert.Throws<KfmException>(() => store.Save(Samples.Receipt())).ErrorId);
    }

    [Fact]
    public void SignedSaves_CommitTheEnvelopeToo()
    {
        var (priv, pub) = Samples.NewP256Key();
        using var signer = DsseSigner.FromPem(priv);
        var workTree = _dir.Sub("repo");
        var store = new GitReceiptStore(workTree, null, new ReceiptStoreOptions { Signer = signer, Clock = _clock });
        var saved = store.Save(Samples.Receipt());
        using var repo = new Repository(workTree);
        Assert.NotNull(repo.Head.Tip[Path.GetFileName(saved.SignaturePath!)]);
        Assert.True(store.Verify(saved.ChainHead, pub).IsValid);
    }

    [Fact]
    public void ACommittedRewriteOfTheLedger_IsCaughtFromGitHistoryWithoutAnAnchor()
    {
        var workTree = _dir.Sub("repo");
        var store = new GitReceiptStore(workTree, null, new ReceiptStoreOptions { Clock = _clock });
        store.Save(Samples.Receipt("INC-1"));
        var dropped = store.Save(Samples.Receipt("INC-2"));
        store.Save(Samples.Receipt("INC-3"));
        // Drop seq 2 and its receipt, re-chain the rest, and commit it all: the work tree alone looks perfect.
        LedgerForger.Rewrite(store.LedgerPath, (i, _) => i != 1);
        File.Delete(dropped.Path);
        string forgery;
        using (var repo = new Repository(workTree))
        {
            Commands.Stage(repo, new[] { "ledger.ndjson", Path.GetFileName(dropped.Path) });
            var who = new Signature("Mallory", "m@localhost", Samples.Now);
            forgery = repo.Commit("cleanup", who, who).Sha;
        }

        var report = store.Verify();
        var problem = Assert.Single(report.Problems);
        Assert.Equal(ReceiptProblemKind.LedgerHistoryRewritten, problem.Kind);
        Assert.Contains(forgery, problem.Detail);
        Assert.Equal(2, report.Entries);
    }
}
