using System.Management.Automation;
using KfmRollback.Engine.Receipts;

namespace KfmRollback.Cmdlets.Receipts;

/// <summary>Lists or reads stored receipts, each checked against its digest as it is read.</summary>
[Cmdlet(VerbsCommon.Get, "KfmRollbackReceipt")]
[OutputType(typeof(StoredReceipt))]
public sealed class GetKfmRollbackReceiptCommand : ReceiptStoreCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("ReceiptDigest")]
    public string? Digest { get; set; }

    [Parameter]
    public string? IncidentId { get; set; }

    protected override void ProcessRecordCore()
    {
        ReceiptStore store = ResolveStoreLocation().Open(forWriting: false, cancellation: StopToken);
        if (!string.IsNullOrWhiteSpace(Digest))
        {
            WriteObject(store.Get(Digest));
            return;
        }
        foreach (LedgerEntry entry in store.List())
        {
            if (IncidentId is null || string.Equals(entry.IncidentId, IncidentId, StringComparison.OrdinalIgnoreCase))
            {
                WriteObject(store.Get(entry.ReceiptDigest));
            }
        }
    }
}
