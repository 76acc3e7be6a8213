using System.Text.Json.Serialization;

namespace KfmRollback.Engine.Receipts;

/// <summary>
/// The runbook's rollback receipt ("Rollback receipt required"), field for field, plus one extension
/// object, <c>kfm_integrity</c>. Property order here is the order on disk; digests never depend on it.
/// Build one with <see cref="ReceiptFactory"/>; it is only ever handed out after schema validation.
/// </summary>
public sealed class RollbackReceipt
{
    public const string RunTypeValue = "ops.api.rollback";

    [JsonPropertyName("run_type")] public string RunType { get; init; } = RunTypeValue;
    [JsonPropertyName("incident_id")] public required string IncidentId { get; init; }
    [JsonPropertyName("requested_by")] public required string RequestedBy { get; init; }
    [JsonPropertyName("approved_by")] public required string ApprovedBy { get; init; }
    /// <summary>RFC 3339 UTC, e.g. 2026-03-02T00:00:00Z.</summary>
    [JsonPropertyName("started_at")] public required string StartedAt { get; init; }
    [JsonPropertyName("completed_at")] public required string CompletedAt { get; init; }
    [JsonPropertyName("environment")] public required string Environment { get; init; }
    [JsonPropertyName("reason")] public required string Reason { get; init; }
    /// <summary><c>sha256:&lt;64 hex&gt;</c> or a 40-hex git commit id.</summary>
    [JsonPropertyName("current_ref")] public required string CurrentRef { get; init; }
    [JsonPropertyName("rollback_target_ref")] public required string RollbackTargetRef { get; init; }
    /// <summary>Subset of api, config, policy in that order.</summary>
    [JsonPropertyName("changed_surfaces")] public required IReadOnlyList<string> ChangedSurfaces { get; init; }
    [JsonPropertyName("verification")] public required ReceiptVerification Verification { get; init; }
    [JsonPropertyName("notes")] public string Notes { get; init; } = string.Empty;
    [JsonPropertyName("kfm_integrity")] public required KfmIntegrity KfmIntegrity { get; init; }

    /// <summary>The receipt as the runbook's JSON (indented), exactly what the store writes.</summary>
    public string ToJson() => System.Text.Encoding.UTF8.GetString(ReceiptJson.ToPrettyBytes(this));

    /// <summary>The content address: sha256 of the RFC 8785 canonical JSON.</summary>
    [JsonIgnore] public string Digest => ReceiptDigest.Of(this);
}

/// <summary>Outcome of runbook checklist sections A-C; each is "pass" or "fail".</summary>
public sealed class ReceiptVerification
{
    public const string Pass = "pass";
    public const string Fail = "fail";

    [JsonPropertyName("health")] public required string Health { get; init; }
    [JsonPropertyName("policy_invariants")] public required string PolicyInvariants { get; init; }
    [JsonPropertyName("contract_smoke")] public required string ContractSmoke { get; init; }
}

/// <summary>
/// How to check this receipt without trusting the tool that wrote it: which schema, which
/// canonicalization and hash, and which artifacts (subjects) it speaks about.
/// </summary>
public sealed class KfmIntegrity
{
    public const string SchemaId = "https://kfm.dev/schemas/ops/rollback-receipt/v1.json";
    public const string CanonicalizationValue = "RFC8785";
    public const string DigestAlgorithmValue = "sha256";

    [JsonPropertyName("schema")] public string Schema { get; init; } = SchemaId;
    [JsonPropertyName("tool")] public required ToolIdentity Tool { get; init; }
    [JsonPropertyName("canonicalization")] public string Canonicalization { get; init; } = CanonicalizationValue;
    [JsonPropertyName("digest_algorithm")] public string DigestAlgorithm { get; init; } = DigestAlgorithmValue;
    [JsonPropertyName("subjects")] public required IReadOnlyList<ReceiptSubject> Subjects { get; init; }
    [JsonPropertyName("revision")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public RevisionDetail? Revision { get; init; }
    /// <summary>
    /// Extension field: true when the environment's cluster was reached without TLS verification
    /// (cluster.allow_insecure_tls with a kubeconfig's insecure-skip-tls-verify); absent otherwise.
    /// </summary>
    [JsonPropertyName("insecure_tls")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? InsecureTls { get; init; }
    /// <summary>The decision tree's comparisons that chose this rollback (Get-KfmRollbackPlan); absent when none was made.</summary>
    [JsonPropertyName("decision")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<DecisionEvidence>? Decision { get; init; }
    /// <summary>Extension field: preflight checks the operator overrode (-Force -ForceReason), such as an unsigned or revoked target; absent when none was.</summary>
    [JsonPropertyName("forced_checks")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<ForcedCheck>? ForcedChecks { get; init; }

    /// <summary>Extension field: the run's phases and time to safe (<see cref="ReceiptPhases"/>); absent when the incident's journal has no run of this rollback.</summary>
    [JsonPropertyName("phases")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ReceiptPhases? Phases { get; init; }

    /// <summary>
    /// Extension field: the verified-good window checklist A compared the rollback with, and why that
    /// window (docs/verification.md); absent when the verification carried none.
    /// </summary>
    [JsonPropertyName("baseline")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ReceiptBaseline? Baseline { get; init; }
}

/// <summary>kfm_integrity.baseline: the window health was judged against (RFC 3339 UTC) and why it was chosen.</summary>
public sealed class ReceiptBaseline
{
    [JsonPropertyName("from")] public required string From { get; init; }
    [JsonPropertyName("to")] public required string To { get; init; }
    [JsonPropertyName("reason")] public required string Reason { get; init; }
}

/// <summary>One comparison of the decision tree, as the receipt records it: digests and hashes only.</summary>
public sealed class DecisionEvidence
{
    [JsonPropertyName("surface")] public required string Surface { get; init; }
    [JsonPropertyName("item")] public required string Item { get; init; }
    [JsonPropertyName("current")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Current { get; init; }
    [JsonPropertyName("last_known_good")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? LastKnownGood { get; init; }
    [JsonPropertyName("changed")] public required bool Changed { get; init; }
    [JsonPropertyName("source")] public required string Source { get; init; }
}

public sealed class ToolIdentity
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("version")] public required string Version { get; init; }
}

/// <summary>
/// An artifact the receipt is about, shaped like an in-toto subject so the DSSE statement can reuse it:
/// image digests as <c>{"sha256": hex}</c>, git commits as <c>{"gitCommit": sha}</c>.
/// </summary>
public sealed class ReceiptSubject
{
    /// <summary>Subjects naming an evidence bundle start with this (the receipt is the lower step: Aftermath's bundles name themselves with it).</summary>
    public const string EvidencePrefix = "evidence/";

    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("digest")] public required IReadOnlyDictionary<string, string> Digest { get; init; }
}

/// <summary>How the rollback was carried out: "gitops" (revert in Git) or "cluster" (rollout undo).</summary>
public sealed class RevisionDetail
{
    public const string GitOps = "gitops";
    public const string Cluster = "cluster";
    public const string Helm = "helm";

    [JsonPropertyName("method")] public required string Method { get; init; }
    [JsonPropertyName("from")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? From { get; init; }
    [JsonPropertyName("to")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? To { get; init; }
}
