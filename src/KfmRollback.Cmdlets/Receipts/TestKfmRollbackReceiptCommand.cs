using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Receipts;

namespace KfmRollback.Cmdlets.Receipts;

/// <summary>
/// Recomputes every receipt digest, every ledger link and (given keys) every signature, and names
/// the first broken link. An anchor (a chain head recorded earlier) also exposes a cut-off tail.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "KfmRollbackReceipt")]
[OutputType(typeof(ReceiptStoreReport), typeof(bool))]
public sealed class TestKfmRollbackReceiptCommand : ReceiptStoreCmdlet
{
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("ChainHead")]
    public string? Anchor { get; set; }

    [Parameter]
    [Alias("PublicKeyPath")]
    public string? PublicKey { get; set; }

    [Parameter]
    public SwitchParameter Quiet { get; set; }

    /// <summary>Where the evidence bundles the receipts name are; default: next to the store.</summary>
    [Parameter]
    public string? EvidencePath { get; set; }

    protected override void ProcessRecordCore()
    {
        ReceiptStoreLocation location = ResolveStoreLocation();
        string? publicKeyPem = location.ReadPublicKey(PublicKey is null ? null : GetUnresolvedProviderPathFromPSPath(PublicKey));
        ReceiptStore store = location.Open(forWriting: false, cancellation: StopToken);
        string evidence = EvidencePath is not null ? GetUnresolvedProviderPathFromPSPath(EvidencePath)
            : Store is null ? (ResolveEnvironment(required: false) is { } environment ? ReceiptStoreLocation.EvidenceDirectoryOf(environment) : null) ?? location.EvidenceDirectory : location.EvidenceDirectory;
        ReceiptStoreReport report = KfmRollback.Engine.Aftermath.EvidenceVerification.Check(store, store.Verify(Anchor, publicKeyPem), new KfmRollback.Engine.Aftermath.EvidenceStore(evidence));

        if (Quiet)
        {
            WriteObject(report.IsValid);
            return;
        }
        if (report.FirstProblem is { } first)
        {
            string where = first.Sequence is { } seq ? $"ledger entry {seq}" : "the store";
            string file = first.Path is null ? string.Empty : $" ({first.Path})";
            var error = new KfmException(first.Kind.ToString(), KfmErrorKind.InvalidData,
                $"Receipt store '{location.Description}' failed verification at {where}{file}: {first.Detail}" +
                (report.Problems.Count > 1 ? $" ({report.Problems.Count - 1} more problem(s) in the report)." : string.Empty),
                location.Path);
            WriteError(ErrorRecords.From(error));
        }
        WriteObject(report);
    }
}
