namespace KfmRollback.Engine.Receipts;

/// <summary>What the receipt store says was last rolled back to and verified good.</summary>
public static class VerifiedTargets
{
    /// <summary>
    /// The rollback_target_ref of the newest receipt for <paramref name="environment"/> whose three
    /// verdicts all passed and whose target is an image digest; null when there is none.
    /// </summary>
    public static string? LastVerifiedDigest(ReceiptStore store, string environment)
    {
        foreach (LedgerEntry entry in store.List().Reverse())
        {
            if (!string.Equals(entry.Environment, environment, StringComparison.Ordinal))
            {
                continue;
            }
            RollbackReceipt receipt = store.Get(entry.ReceiptDigest).Receipt;
            bool verified = receipt.Verification.Health == ReceiptVerification.Pass
                && receipt.Verification.PolicyInvariants == ReceiptVerification.Pass
                && receipt.Verification.ContractSmoke == ReceiptVerification.Pass;
            if (verified && ImageRefs.IsDigest(receipt.RollbackTargetRef))
            {
                return receipt.RollbackTargetRef;
            }
        }
        return null;
    }
}
