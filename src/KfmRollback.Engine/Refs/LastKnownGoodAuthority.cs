using System.Globalization;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Incidents;
using KfmRollback.Engine.Receipts;

namespace KfmRollback.Engine.Refs;

/// <summary>
/// The one last-known-good authority (runbook step 1): gathers what the module recorded about an
/// environment's builds (the incident journal's environment stream: rollbacks made, digests
/// quarantined or released) and what a verified receipt store adds, into an
/// <see cref="EnvironmentTrust"/> whose rule every source and mechanism applies. It also answers the
/// question a freeze or a thaw asks: is this digest quarantined here, and by which incident and run.
/// </summary>
public sealed class LastKnownGoodAuthority
{
    /// <summary>Journal record types of the environment stream.</summary>
    public const string RollbackRecord = "rollback";
    public const string QuarantineRecord = "quarantine";
    public const string LiftRecord = "quarantine.lifted";

    private readonly IncidentJournal? _journal;
    private readonly Func<EnvironmentConfig, VerifiedReceiptSet> _receipts;

    /// <param name="journal">The incident journal (null: nothing recorded, as in a test without one).</param>
    /// <param name="receipts">The environment's verified receipts (default: its configured store, verified).</param>
    public LastKnownGoodAuthority(IncidentJournal? journal, Func<EnvironmentConfig, VerifiedReceiptSet>? receipts = null)
    {
        _journal = journal;
        _receipts = receipts ?? VerifiedReceiptSet.Load;
    }

    /// <summary>No journal and no receipts: history alone (minus what a source finds on its own).</summary>
    public static LastKnownGoodAuthority HistoryOnly { get; } = new(null, _ => VerifiedReceiptSet.None);

    public IncidentJournal? Journal => _journal;

    public EnvironmentTrust For(EnvironmentConfig environment)
    {
        var quarantined = new List<QuarantineEntry>();
        var lifted = new HashSet<string>(StringComparer.Ordinal);
        var established = new List<EstablishedTarget>();
        var notes = new List<string>();
        if (_journal is not null)
        {
            foreach (JsonObject record in _journal.ReadEnvironment(environment.Name))
            {
                if (S(record, "environment") is { } env && env != environment.Name)
                {
                    continue; // a stream shared by names that differ only in case on a case-insensitive disk
                }
                string? digest = S(record, "digest");
                switch (S(record, "type"))
                {
                    case QuarantineRecord when ImageRefs.IsDigest(digest):
                        lifted.Remove(digest!);
                        quarantined.RemoveAll(q => q.Digest == digest);
                        quarantined.Add(new QuarantineEntry
                        {
                            Digest = digest!,
                            Source = QuarantineSources.Journal,
                            IncidentId = S(record, "incident_id"),
                            RunId = S(record, "run"),
                            At = T(record, "at"),
                            Actor = S(record, "actor"),
                            MovedTo = S(record, "moved_to"),
                        });
                        break;
                    case LiftRecord when ImageRefs.IsDigest(digest):
                        quarantined.RemoveAll(q => q.Digest == digest);
                        lifted.Add(digest!);
                        break;
                    case RollbackRecord when ImageRefs.IsDigest(S(record, "to")):
                        established.Insert(0, new EstablishedTarget(S(record, "to")!, LastKnownGoodSources.RollbackTarget, S(record, "incident_id"), T(record, "at")));
                        break;
                }
            }
        }
        VerifiedReceiptSet receipts = _receipts(environment);
        if (receipts.Why is not null)
        {
            notes.Add(receipts.Why);
        }
        // Ledger order, newest first: never the completed_at a receipt states about itself.
        foreach (RollbackReceipt receipt in receipts.Receipts.Reverse())
        {
            if (ImageRefs.IsDigest(receipt.CurrentRef) && receipt.CurrentRef != receipt.RollbackTargetRef && !lifted.Contains(receipt.CurrentRef))
            {
                quarantined.Add(new QuarantineEntry { Digest = receipt.CurrentRef, Source = QuarantineSources.ReceiptStore, IncidentId = receipt.IncidentId, MovedTo = receipt.RollbackTargetRef });
            }
            if (ImageRefs.IsDigest(receipt.RollbackTargetRef) && VerifiedReceiptSet.Passed(receipt))
            {
                established.Add(new EstablishedTarget(receipt.RollbackTargetRef, LastKnownGoodSources.ReceiptStore, receipt.IncidentId, null));
            }
        }
        return new EnvironmentTrust(environment.Name, quarantined, established, lifted, notes);
    }

    /// <summary>
    /// Is <paramref name="digest"/> quarantined for <paramref name="environment"/>, and by which incident
    /// and run (null when it is not). For a freeze or thaw that must not deploy a build a rollback left.
    /// </summary>
    public QuarantineEntry? Quarantined(EnvironmentConfig environment, string digest) => For(environment).QuarantineOf(digest);

    private static string? S(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    private static DateTimeOffset? T(JsonObject o, string key) =>
        S(o, key) is { } s && DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t.ToUniversalTime() : null;
}
