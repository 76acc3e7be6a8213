using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Receipts;

namespace KfmRollback.Cmdlets.Receipts;

/// <summary>
/// Base for the receipt-store cmdlets: the store is -Store (a directory, or with -Git a git work
/// tree, pushed to its origin when it has one), else the environment's <c>receipts</c> configuration
/// (a directory, a git repository and its remote, or a blob container).
/// </summary>
public abstract class ReceiptStoreCmdlet : KfmConfiguredCmdlet
{
    [Parameter]
    [Alias("StorePath")]
    public string? Store { get; set; }

    [Parameter]
    public SwitchParameter Git { get; set; }

    [Parameter]
    public string? Branch { get; set; }

    protected ReceiptStoreLocation ResolveStoreLocation()
    {
        if (!string.IsNullOrWhiteSpace(Store))
        {
            EnvironmentConfig? configured = TryEnvironment();
            return new ReceiptStoreLocation
            {
                Path = GetUnresolvedProviderPathFromPSPath(Store),
                IsGit = Git.IsPresent,
                Branch = Branch,
                // Signing follows the configuration even for an explicit store, so a signed
                // environment never writes unsigned receipts by accident.
                SigningKeyFile = configured?.Receipts?.SigningKeyFile,
                PublicKeyFile = configured?.Receipts?.PublicKeyFile,
            };
        }
        ReceiptsConfig receipts = ResolveEnvironment(required: true)?.Receipts
            ?? throw new KfmException("ReceiptStoreNotConfigured", KfmErrorKind.InvalidArgument,
                "No receipt store: pass -Store <directory>, or set receipts (or defaults.receipt_store) in the configuration.");
        return ReceiptStoreLocation.FromConfig(receipts);
    }

    private EnvironmentConfig? TryEnvironment()
    {
        try { return ResolveEnvironment(required: false); }
        catch (KfmException) { return null; }
    }
}
