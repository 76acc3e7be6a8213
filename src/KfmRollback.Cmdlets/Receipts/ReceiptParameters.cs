using System.Management.Automation;
using KfmRollback.Cmdlets.Common;

namespace KfmRollback.Cmdlets.Receipts;

/// <summary>
/// New-KfmRollbackReceipt's parameters: the runbook's receipt fields, each bound by property name
/// from what the pipeline carries (incident, rollback result, verification summary).
/// </summary>
public abstract class ReceiptParameters : KfmConfiguredCmdlet
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

    /// <summary>The baseline checklist A compared with (Test-KfmRollback's Baseline), for kfm_integrity.baseline.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public object? Baseline { get; set; }

    /// <summary>The decision tree's comparisons (from Get-KfmRollbackPlan through Invoke-KfmRollback), for kfm_integrity.decision.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true, DontShow = true)]
    public object[]? Evidence { get; set; }

    /// <summary>Preflight checks forced with -Force -ForceReason (Invoke-KfmRollback's ForcedChecks), for kfm_integrity.forced_checks.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true, DontShow = true)]
    public object[]? ForcedChecks { get; set; }
}
