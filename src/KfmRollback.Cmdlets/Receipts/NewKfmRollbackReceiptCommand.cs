using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Incidents;
using KfmRollback.Engine.Receipts;

namespace KfmRollback.Cmdlets.Receipts;

/// <summary>Builds the runbook's rollback receipt from what the pipeline carries, validated against its schema.</summary>
[Cmdlet(VerbsCommon.New, "KfmRollbackReceipt")]
[OutputType(typeof(RollbackReceipt))]
public sealed class NewKfmRollbackReceiptCommand : ReceiptParameters
{
    protected override void ProcessRecordCore()
    {
        // What the pipeline did not carry, the incident knows: its commander requested the
        // rollback, and its reason is the rollback's reason.
        Incident? incident = RequestedBy is null || Reason is null || StartedAt is null ? TryGetIncident() : null;
        var input = new ReceiptInput
        {
            IncidentId = IncidentId,
            RequestedBy = RequestedBy ?? incident?.Commander,
            ApprovedBy = ApprovedBy,
            StartedAt = StartedAt ?? incident?.StartedAt,
            CompletedAt = CompletedAt,
            Environment = ResolveEnvironmentName(required: false),
            Reason = Reason ?? incident?.Reason,
            CurrentRef = CurrentRef,
            RollbackTargetRef = RollbackTargetRef,
            ChangedSurfaces = ChangedSurface,
            // A verdict that is not a clear pass is a fail in the receipt: inconclusive never passes.
            Health = Verdict(Health),
            PolicyInvariants = Verdict(PolicyInvariants),
            ContractSmoke = Verdict(ContractSmoke),
            Notes = Notes,
            RevisionMethod = Method?.ToLowerInvariant(),
            Evidence = PipelineObjects.Unwrap<KfmRollback.Engine.Receipts.PlanEvidence>(Evidence),
            RevisionFrom = FromRevision,
            RevisionTo = ToRevision,
            EvidenceDigests = EvidenceDigest ?? SavedEvidence(),
            InsecureTls = ResolveEnvironment(required: false) is { } environment && Engine.Adapters.Kubernetes.ClusterClientFactory.SkipsTlsVerification(environment.Cluster),
            Baseline = (Baseline is PSObject wrapped ? wrapped.BaseObject : Baseline) is Engine.Verification.VerificationBaseline b ? (b.From, b.To, b.Reason) : null,
        };
        WriteObject(new ReceiptFactory().Create(input));
    }

    /// <summary>The incident's bundles in the environment's evidence directory (none when nothing is configured).</summary>
    private IReadOnlyList<string> SavedEvidence()
    {
        var environment = ResolveEnvironment(required: false);
        return environment is null ? Array.Empty<string>()
            : KfmRollback.Engine.Aftermath.EvidenceService.StoreFor(environment).ForIncident(IncidentId).Select(b => b.Digest).ToList();
    }

    private Incident? TryGetIncident()
    {
        try { return OpenJournal().Get(IncidentId); }
        catch (KfmException ex) when (ex.ErrorId is "IncidentNotFound" or "IncidentIdInvalid") { return null; }
    }

    private static string? Verdict(string? value) =>
        value is null ? null : string.Equals(value, "pass", StringComparison.OrdinalIgnoreCase) ? ReceiptVerification.Pass : ReceiptVerification.Fail;
}
