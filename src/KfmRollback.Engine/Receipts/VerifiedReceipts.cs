using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Receipts;

/// <summary>
/// Receipts an environment's last-known-good may rest on: only from a store whose whole chain
/// verifies (every file re-hashed, every ledger link, no receipt outside the ledger) and, when the
/// store is signed (receipts.public_key_file), whose every signature verifies; in ledger order,
/// oldest first. A store that does not verify contributes nothing, and <see cref="Why"/> says so.
/// </summary>
public sealed record VerifiedReceiptSet(IReadOnlyList<RollbackReceipt> Receipts, string? Why)
{
    public static VerifiedReceiptSet None { get; } = new(Array.Empty<RollbackReceipt>(), null);

    /// <summary>A receipt whose three verdicts passed: its target was verified good.</summary>
    public static bool Passed(RollbackReceipt receipt) =>
        receipt.Verification.Health == ReceiptVerification.Pass
        && receipt.Verification.PolicyInvariants == ReceiptVerification.Pass
        && receipt.Verification.ContractSmoke == ReceiptVerification.Pass;

    /// <summary>The environment's configured store, verified; <see cref="None"/> when none is configured or nothing was stored yet.</summary>
    public static VerifiedReceiptSet Load(EnvironmentConfig environment)
    {
        if (environment.Receipts is null)
        {
            return None;
        }
        ReceiptStore? store;
        string? publicKey;
        try
        {
            store = ReceiptStoreLocation.OpenExisting(environment.Receipts);
            publicKey = store is null ? null : ReceiptStoreLocation.FromConfig(environment.Receipts).ReadPublicKey(null);
        }
        catch (KfmException ex)
        {
            return new VerifiedReceiptSet(Array.Empty<RollbackReceipt>(), $"the receipt store of {environment.Name} could not be opened ({ex.ErrorId}); its receipts were not used");
        }
        return store is null ? None : Load(store, environment.Name, publicKey);
    }

    public static VerifiedReceiptSet Load(ReceiptStore store, string environment, string? publicKeyPem)
    {
        ReceiptStoreReport report;
        try
        {
            report = store.Verify(anchor: null, publicKeyPem: publicKeyPem);
        }
        catch (KfmException ex)
        {
            return new VerifiedReceiptSet(Array.Empty<RollbackReceipt>(), $"the receipt store {store.Directory} could not be verified ({ex.ErrorId}); its receipts were not used");
        }
        if (!report.IsValid)
        {
            ReceiptStoreProblem first = report.Problems[0];
            return new VerifiedReceiptSet(Array.Empty<RollbackReceipt>(),
                $"the receipt store {store.Directory} does not verify ({first.Kind}{(first.Sequence is null ? "" : $" at seq {first.Sequence}")}: {first.Detail}), so none of its receipts counts for the last-known-good. Run Test-KfmRollbackReceipt");
        }
        var receipts = store.List()
            .Where(e => string.Equals(e.Environment, environment, StringComparison.Ordinal))
            .Select(e => store.Get(e.ReceiptDigest).Receipt)
            .ToList();
        return new VerifiedReceiptSet(receipts, null);
    }
}
