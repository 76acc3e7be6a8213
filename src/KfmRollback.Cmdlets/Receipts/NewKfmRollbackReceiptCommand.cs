using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Incidents;
using KfmRollback.Engine.Receipts;

namespace KfmRollback.Cmdlets.Receipts;

/// <summary>Builds the runbook's rollback receipt from what the pipeline carries, validated against its schema.</summary>
[Cmdlet(VerbsCommon.New, "KfmRollbackReceipt")]
[OutputType(typeof(RollbackReceipt))]
public sealed class NewKfmRollbackReceiptCommand : KfmConfiguredCmdlet
{
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Id", "incident_id")]
    public string IncidentId { get; set; } = string.Empty;

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("Commander", "requested_by")]
    public string? RequestedBy { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("approved_by")]
    public string? ApprovedBy { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("started_at")]
    public DateTimeOffset? StartedAt { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("completed_at")]
    public DateTimeOffset? CompletedAt { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Reason { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("current_ref", "FromRef")]
    public string? CurrentRef { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("TargetRef", "rollback_target_ref", "ToRef")]
    public string? RollbackTargetRef { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("ChangedSurfaces", "changed_surfaces", "Surface")]
    [ValidateSet("api", "config", "policy", IgnoreCase = true)]
    public string[]? ChangedSurface { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateSet("pass", "fail", "inconclusive", IgnoreCase = true)]
    public string? Health { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("policy_invariants")]
    [ValidateSet("pass", "fail", "inconclusive", IgnoreCase = true)]
    public string? PolicyInvariants { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("contract_smoke")]
    [ValidateSet("pass", "fail", "inconclusive", IgnoreCase = true)]
    public string? ContractSmoke { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Notes { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Method { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? FromRevision { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? ToRevision { get; set; }

    /// <summary>Evidence bundle digests to record; default: every bundle saved for the incident.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string[]? EvidenceDigest { get; set; }

    /// <summary>The decision tree's comparisons (from Get-KfmRollbackPlan through Invoke-KfmRollback), for kfm_integrity.decision.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true, DontShow = true)]
    public object[]? Evidence { get; set; }

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
            Evidence = PipelineObjects.Unwrap<KfmRollback.Engine.Rollback.PlanEvidence>(Evidence),
            RevisionFrom = FromRevision,
            RevisionTo = ToRevision,
            EvidenceDigests = EvidenceDigest ?? SavedEvidence(),
        };
        WriteObject(new ReceiptFactory().Create(input));
    }

    /// <summary>The incident's bundles in the environment's evidence directory (none when nothing is configured).</summary>
    private IReadOnlyList<string> SavedEvidence()
    {
        var environment = ResolveEnvironment(required: false);
        return environment is null ? Array.Empty<string>()
            : KfmRollback.Engine.Evidence.EvidenceService.StoreFor(environment).ForIncident(IncidentId).Select(b => b.Digest).ToList();
    }

    private Incident? TryGetIncident()
    {
        try { return OpenJournal().Get(IncidentId); }
        catch (KfmException ex) when (ex.ErrorId is "IncidentNotFound" or "IncidentIdInvalid") { return null; }
    }

    private static string? Verdict(string? value) =>
        value is null ? null : string.Equals(value, "pass", StringComparison.OrdinalIgnoreCase) ? ReceiptVerification.Pass : ReceiptVerification.Fail;
}
