using System.Management.Automation;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Receipts;

namespace KfmRollback.Cmdlets.Receipts;

/// <summary>Stores a receipt immutably under its digest and chains it into the store's ledger.</summary>
[Cmdlet(VerbsData.Save, "KfmRollbackReceipt", SupportsShouldProcess = true)]
[OutputType(typeof(ReceiptSaveResult))]
public sealed class SaveKfmRollbackReceiptCommand : ReceiptStoreCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    public RollbackReceipt Receipt { get; set; } = null!;

    protected override void ProcessRecordCore()
    {
        ReceiptStoreLocation location = ResolveStoreLocation();
        string digest = ReceiptDigest.Of(Receipt);
        if (!ShouldProcess(location.Description, $"Store receipt {digest} for incident {Receipt.IncidentId}"))
        {
            return;
        }

        // In a shared store (git remote, blob container) Save returns only once the receipt landed there.
        ReceiptSaveResult result = location.Open(forWriting: true, cancellation: StopToken).Save(Receipt);
        WriteVerbose(result.AlreadyStored
            ? $"Receipt {result.Digest} was already stored in {location.Description}; nothing written."
            : $"Stored receipt {result.Digest} in {location.Description}; ledger entry {result.Sequence}, chain head {result.ChainHead}.");
        RecordOnTimeline(result);
        WriteObject(result);
    }

    /// <summary>
    /// The incident's timeline names the receipt and the chain head, the anchor to keep, once: a rerun
    /// after a save that landed but died before it said so (a job killed as its push completed) says it then.
    /// </summary>
    private void RecordOnTimeline(ReceiptSaveResult result)
    {
        try
        {
            var journal = OpenJournal();
            if (journal.Get(Receipt.IncidentId).Timeline.Any(e => e.Event.Contains(result.Digest, StringComparison.Ordinal)))
            {
                return;
            }
            journal.AppendTimeline(Receipt.IncidentId, "OPS",
                $"Rollback receipt stored: {result.Digest} (chain head {result.ChainHead})", Actor.Current());
        }
        catch (KfmException ex) when (ex.ErrorId is "IncidentNotFound")
        {
            WriteVerbose($"Incident {Receipt.IncidentId} is not in the journal; the receipt is stored without a timeline entry.");
        }
    }
}
