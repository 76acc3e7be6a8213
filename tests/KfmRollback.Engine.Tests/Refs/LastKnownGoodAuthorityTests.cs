using System.Text.Json.Nodes;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Incidents;
using KfmRollback.Engine.Receipts;
using KfmRollback.Engine.Refs;
using KfmRollback.Engine.Tests.Configuration;
using KfmRollback.Engine.Tests.Receipts;

namespace KfmRollback.Engine.Tests.Refs;

/// <summary>
/// The one last-known-good rule (EnvironmentTrust) and the authority that feeds it: the journal's
/// quarantine and rollback targets, and receipts only from a store that verifies, in ledger order.
/// </summary>
public sealed class LastKnownGoodAuthorityTests : IDisposable
{
    private const string A = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    private const string B = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    private const string C = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
    private const string D = "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";

    private readonly TempDir _dir = new();
    private readonly EnvironmentConfig _prod = ConfigTestSupport.Load(ConfigTestSupport.Minimal).GetEnvironment("prod");

    private static RefCandidate[] History(params string[] newestFirst) =>
        newestFirst.Select((d, i) => new RefCandidate(d, 10 - i, $"revision {10 - i}")).ToArray();

    private static QuarantineEntry Q(string digest, string? movedTo = null) =>
        new() { Digest = digest, Source = QuarantineSources.Journal, IncidentId = "INC-1", MovedTo = movedTo };

    [Fact]
    public void Quarantined_digests_are_skipped_and_named_in_the_reason()
    {
        var trust = new EnvironmentTrust("prod", new[] { Q(B) }, Array.Empty<EstablishedTarget>());
        LastKnownGoodChoice choice = trust.Choose(C, History(B, A), LastKnownGoodSources.PreviousRevision);
        Assert.Equal(A, choice.Digest);
        Assert.Equal(9, choice.Revision);
        Assert.Contains("skipped quarantined sha256:bbbbbbbbbbbb (quarantined by INC-1", choice.Why);
    }

    [Fact]
    public void The_current_build_is_the_last_known_good_when_a_recorded_rollback_put_it_there()
    {
        // After INC-1 rolled B back to A, kubectl's "previous" is B; a new incident must not go there, nor further back.
        var trust = new EnvironmentTrust("prod", new[] { Q(B, A) }, new[] { new EstablishedTarget(A, LastKnownGoodSources.RollbackTarget, "INC-1", null) });
        LastKnownGoodChoice choice = trust.Choose(A, History(B, D), LastKnownGoodSources.PreviousRevision);
        Assert.True(choice.IsCurrent);
        Assert.Equal(A, choice.Digest);
        Assert.Equal(LastKnownGoodSources.RollbackTarget, choice.Source);
        Assert.Contains("INC-1's rollback", choice.Why);
    }

    [Fact]
    public void A_configuration_only_deploy_after_a_rollback_still_plans_against_the_revision_before_it()
    {
        var trust = new EnvironmentTrust("prod", new[] { Q(B, A) }, new[] { new EstablishedTarget(A, LastKnownGoodSources.RollbackTarget, "INC-1", null) });
        LastKnownGoodChoice whole = trust.Choose(A, History(A, B, D), LastKnownGoodSources.PreviousRevision, sameDigest: true);
        Assert.False(whole.IsCurrent);
        Assert.Equal(10, whole.Revision);
        // Image refs skip same-digest revisions: the current build is still the last-known-good image.
        Assert.True(trust.Choose(A, History(A, B, D), LastKnownGoodSources.PreviousRevision).IsCurrent);
    }

    [Fact]
    public void Evidence_a_source_reads_itself_quarantines_and_establishes_for_an_empty_journal()
    {
        EnvironmentTrust fresh = EnvironmentTrust.Empty("prod").With(new[] { new QuarantineEntry { Digest = B, MovedTo = A, Source = QuarantineSources.DeploymentAnnotation, IncidentId = "INC-1" } });
        Assert.True(fresh.Choose(A, History(B, D), LastKnownGoodSources.PreviousRevision).IsCurrent);
        Assert.Equal(QuarantineSources.DeploymentAnnotation, fresh.QuarantineOf(B)!.Source);
    }

    [Fact]
    public void Without_history_the_newest_established_target_counts()
    {
        var trust = new EnvironmentTrust("prod", Array.Empty<QuarantineEntry>(),
            new[] { new EstablishedTarget(C, LastKnownGoodSources.ReceiptStore, "INC-2", null), new EstablishedTarget(A, LastKnownGoodSources.ReceiptStore, "INC-1", null) });
        LastKnownGoodChoice choice = trust.Choose(B, Array.Empty<RefCandidate>(), LastKnownGoodSources.PreviousRevision);
        Assert.Equal(C, choice.Digest);
        Assert.Equal(LastKnownGoodSources.ReceiptStore, choice.Source);
    }

    [Fact]
    public void The_journal_records_quarantine_release_and_rollback_targets_per_environment()
    {
        var journal = new IncidentJournal(_dir.Sub("journal/incidents.ndjson"), new PolicySafeText());
        JsonObject Record(string type, string key, string digest) => new() { ["type"] = type, ["environment"] = "prod", [key] = digest, ["incident_id"] = "INC-1", ["at"] = "2026-07-04T14:00:00.000Z" };
        journal.AppendEnvironment("prod", new[]
        {
            Record(LastKnownGoodAuthority.QuarantineRecord, "digest", B),
            Record(LastKnownGoodAuthority.RollbackRecord, "to", A),
            Record(LastKnownGoodAuthority.QuarantineRecord, "digest", D),
            Record(LastKnownGoodAuthority.LiftRecord, "digest", D),
        });
        var authority = new LastKnownGoodAuthority(journal, _ => VerifiedReceiptSet.None);
        Assert.Equal("INC-1", authority.Quarantined(_prod, B)!.IncidentId);
        Assert.Null(authority.Quarantined(_prod, D));
        Assert.Equal(A, Assert.Single(authority.For(_prod).Established).Digest);
        // Another environment's stream is its own.
        Assert.Null(authority.Quarantined(ConfigTestSupport.Load(ConfigTestSupport.Minimal.Replace("  prod:", "  staging:")).GetEnvironment("staging"), B));
    }

    private ReceiptStore Store(out string path)
    {
        path = _dir.Sub("receipts");
        return new ReceiptStore(path, new ReceiptStoreOptions { Clock = new FixedClock(Samples.Now) });
    }

    private static RollbackReceipt Receipt(string incident, string from, string to, DateTimeOffset completedAt, string verdict = "pass")
    {
        ReceiptInput input = Samples.Input(incident);
        input.CurrentRef = from;
        input.RollbackTargetRef = to;
        input.StartedAt = completedAt.AddMinutes(-5);
        input.CompletedAt = completedAt;
        input.ContractSmoke = verdict;
        return Samples.Factory().Create(input);
    }

    [Fact]
    public void Receipts_are_ordered_by_the_ledger_never_by_the_completed_at_they_state_about_themselves()
    {
        ReceiptStore store = Store(out _);
        // Saved first, but claims to have completed far in the future.
        store.Save(Receipt("INC-1", B, A, new DateTimeOffset(2099, 1, 1, 0, 0, 0, TimeSpan.Zero)));
        store.Save(Receipt("INC-2", D, C, Samples.Now));
        VerifiedReceiptSet set = VerifiedReceiptSet.Load(store, "prod", null);
        Assert.Null(set.Why);
        var authority = new LastKnownGoodAuthority(null, _ => set);
        Assert.Equal(new[] { C, A }, authority.For(_prod).Established.Select(e => e.Digest));
        Assert.Equal(C, authority.For(_prod).Choose(B, Array.Empty<RefCandidate>(), LastKnownGoodSources.PreviousRevision).Digest);
        Assert.NotNull(authority.Quarantined(_prod, D));
    }

    [Fact]
    public void A_receipt_dropped_into_the_store_outside_the_ledger_makes_the_store_count_for_nothing()
    {
        ReceiptStore store = Store(out string path);
        store.Save(Receipt("INC-1", B, A, Samples.Now));
        // A planted receipt: a valid file under its own digest, with a far-future completed_at, but no ledger line.
        RollbackReceipt planted = Receipt("INC-X", A, C, new DateTimeOffset(2099, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var other = new ReceiptStore(_dir.Sub("elsewhere"), new ReceiptStoreOptions { Clock = new FixedClock(Samples.Now) });
        ReceiptSaveResult saved = other.Save(planted);
        File.Copy(saved.Path, Path.Combine(path, Path.GetFileName(saved.Path)));

        VerifiedReceiptSet set = VerifiedReceiptSet.Load(store, "prod", null);
        Assert.Empty(set.Receipts);
        Assert.Contains("does not verify", set.Why);
        Assert.Contains("ReceiptUnrecorded", set.Why);
        EnvironmentTrust trust = new LastKnownGoodAuthority(null, _ => set).For(_prod);
        Assert.Null(trust.Choose(B, Array.Empty<RefCandidate>(), LastKnownGoodSources.PreviousRevision).Digest);
        Assert.Contains(trust.Notes, n => n.Contains("Test-KfmRollbackReceipt", StringComparison.Ordinal));
    }

    [Fact]
    public void A_broken_chain_makes_the_store_count_for_nothing()
    {
        ReceiptStore store = Store(out string path);
        store.Save(Receipt("INC-1", B, A, Samples.Now));
        store.Save(Receipt("INC-2", D, C, Samples.Now));
        // Cut the first entry out and re-chain what is left: the prev links look intact, the anchor of seq 1 is gone.
        string ledger = Path.Combine(path, ReceiptStore.LedgerFileName);
        File.WriteAllLines(ledger, File.ReadAllLines(ledger).Skip(1));
        VerifiedReceiptSet set = VerifiedReceiptSet.Load(store, "prod", null);
        Assert.Empty(set.Receipts);
        Assert.NotNull(set.Why);
    }

    [Fact]
    public void A_signed_store_counts_only_when_every_signature_verifies()
    {
        var (privatePem, publicPem) = Samples.NewP256Key();
        string path = _dir.Sub("signed");
        using var signer = DsseSigner.FromPem(privatePem);
        var store = new ReceiptStore(path, new ReceiptStoreOptions { Clock = new FixedClock(Samples.Now), Signer = signer });
        store.Save(Receipt("INC-1", B, A, Samples.Now));
        Assert.Null(VerifiedReceiptSet.Load(store, "prod", publicPem).Why);

        // A second receipt saved without the key: chained, but unsigned.
        new ReceiptStore(path, new ReceiptStoreOptions { Clock = new FixedClock(Samples.Now) }).Save(Receipt("INC-2", D, C, Samples.Now));
        VerifiedReceiptSet set = VerifiedReceiptSet.Load(store, "prod", publicPem);
        Assert.Empty(set.Receipts);
        Assert.Contains("SignatureMissing", set.Why);
    }

    [Fact]
    public void A_failed_verification_establishes_nothing_but_its_move_still_quarantines()
    {
        ReceiptStore store = Store(out _);
        store.Save(Receipt("INC-1", B, A, Samples.Now, verdict: "fail"));
        var authority = new LastKnownGoodAuthority(null, _ => VerifiedReceiptSet.Load(store, "prod", null));
        Assert.Empty(authority.For(_prod).Established);
        Assert.NotNull(authority.Quarantined(_prod, B));
    }

    public void Dispose() => _dir.Dispose();
}
