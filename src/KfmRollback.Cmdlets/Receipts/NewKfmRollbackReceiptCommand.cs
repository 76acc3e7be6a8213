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
        string? environmentName = ResolveEnvironmentName(required: false);
        var input = new ReceiptInput
        {
            IncidentId = IncidentId,
            RequestedBy = RequestedBy ?? incident?.Commander,
            ApprovedBy = ApprovedBy,
            StartedAt = StartedAt ?? incident?.StartedAt,
            CompletedAt = CompletedAt,
            Environment = environmentName,
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
            ForcedChecks = PipelineObjects.Unwrap<ForcedCheck>(ForcedChecks),
            RevisionFrom = FromRevision,
            RevisionTo = ToRevision,
            EvidenceDigests = EvidenceDigest ?? SavedEvidence(),
            Phases = Phases(incident, environmentName),
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

    /// <summary>
    /// The run's phases and time to safe from the incident's journal (kfm_integrity.phases). A journal
    /// that cannot be read now leaves them out with a warning: the receipt's own fields do not depend on it.
    /// </summary>
    private RunPhaseTimes? Phases(Incident? incident, string? environmentName)
    {
        if (environmentName is null)
        {
            return null;
        }
        try
        {
            incident ??= TryGetIncident();
        }
        catch (KfmException ex) when (ex.Kind is KfmErrorKind.ConnectionError or KfmErrorKind.ReadError)
        {
            WriteWarning($"The receipt records no phases (kfm_integrity.phases): the incident journal could not be read ({ex.ErrorId}).");
            return null;
        }
        return incident is null ? null : RunPhaseTimes.Latest(incident, environmentName);
    }

    private Incident? TryGetIncident()
    {
        try { return OpenJournal().Get(IncidentId); }
        catch (KfmException ex) when (ex.ErrorId is "IncidentNotFound" or "IncidentIdInvalid") { return null; }
    }

    private static string? Verdict(string? value) =>
        value is null ? null : string.Equals(value, "pass", StringComparison.OrdinalIgnoreCase) ? ReceiptVerification.Pass : ReceiptVerification.Fail;
}
