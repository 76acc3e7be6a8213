
namespace KfmRollback.Engine.Receipts;

/// <summary>
/// What the caller (the cmdlet layer) knows about a rollback. Every property is optional here;
/// <see cref="ReceiptFactory.Create"/> decides what is required, normalises and refuses.
/// </summary>
public sealed class ReceiptInput
{
    public string? IncidentId { get; set; }
    public string? RequestedBy { get; set; }
    public string? ApprovedBy { get; set; }
    public DateTimeOffset? StartedAt { get; set; }
    /// <summary>Defaults to the clock's now.</summary>
    public DateTimeOffset? CompletedAt { get; set; }
    public string? Environment { get; set; }
    public string? Reason { get; set; }
    /// <summary>Image digest (<c>sha256:…</c>, or <c>image@sha256:…</c>) or full git commit id.</summary>
    public string? CurrentRef { get; set; }
    public string? RollbackTargetRef { get; set; }
    /// <summary>Any of api, config, policy, in any order or case; duplicates are collapsed.</summary>
    public IEnumerable<string>? ChangedSurfaces { get; set; }
    /// <summary>"pass" or "fail" (any case), or true/false via <see cref="ReceiptInputExtensions"/>.</summary>
    public string? Health { get; set; }
    public string? PolicyInvariants { get; set; }
    public string? ContractSmoke { get; set; }
    /// <summary>Policy-safe summary; refused if it looks like it carries a credential. Defaults to "".</summary>
    public string? Notes { get; set; }
    /// <summary>"gitops" or "cluster"; optional.</summary>
    public string? RevisionMethod { get; set; }
    public string? RevisionFrom { get; set; }
    public string? RevisionTo { get; set; }
    /// <summary>The decision tree's comparisons, for kfm_integrity.decision.</summary>
    public IReadOnlyList<PlanEvidence>? Evidence { get; set; }
    /// <summary>True when the environment's cluster is reached without TLS verification (kfm_integrity.insecure_tls).</summary>
    public bool InsecureTls { get; set; }
    /// <summary>Digests (<c>sha256:…</c>) of the incident's evidence bundles, recorded as kfm_integrity subjects.</summary>
    public IReadOnlyList<string>? EvidenceDigests { get; set; }
    /// <summary>Preflight checks the operator forced (RollbackResult.ForcedChecks), for kfm_integrity.forced_checks.</summary>
    public IReadOnlyList<ForcedCheck>? ForcedChecks { get; set; }
    /// <summary>The rollback run's phases and time to safe from the incident journal, for kfm_integrity.phases.</summary>
    public Incidents.RunPhaseTimes? Phases { get; set; }
    /// <summary>The baseline checklist A compared with (kfm_integrity.baseline): from, to, why.</summary>
    public (DateTimeOffset From, DateTimeOffset To, string Reason)? Baseline { get; set; }
}

public static class ReceiptInputExtensions
{
    /// <summary>Maps a boolean check result onto the runbook's "pass"/"fail" vocabulary.</summary>
    public static string ToOutcome(this bool passed) => passed ? ReceiptVerification.Pass : ReceiptVerification.Fail;
}
