using System.Text.Json.Serialization;

namespace KfmRollback.Engine.Receipts;

/// <summary>
/// A preflight check that refused the target and that the operator overrode with -Force -ForceReason
/// (a target that is unsigned, badly signed or revoked): the receipt's kfm_integrity.forced_checks,
/// so whoever reads the receipt sees the rollback ran to an unverified build, who forced it and why.
/// Names, error ids and digests only.
/// </summary>
public sealed class ForcedCheck
{
    /// <summary>The check (target-verify).</summary>
    [JsonPropertyName("check")] public required string Check { get; init; }
    /// <summary>The refusal it would have been (PreflightTargetUnsigned, PreflightTargetRevoked …).</summary>
    [JsonPropertyName("error_id")] public required string ErrorId { get; init; }
    /// <summary>What was checked (registry, repository and digest).</summary>
    [JsonPropertyName("target")] public required string Target { get; init; }
    /// <summary>The operator's -ForceReason.</summary>
    [JsonPropertyName("reason")] public required string Reason { get; init; }
}
