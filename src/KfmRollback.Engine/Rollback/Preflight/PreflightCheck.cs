using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Rollback.Preflight;

public enum PreflightVerdict
{
    Passed,
    /// <summary>The rollback would fail or harm: it is refused before anything changes.</summary>
    Failed,
    /// <summary>Not checked, and why (no registry configured, nothing of that kind to check).</summary>
    Skipped,
    /// <summary>Failed, and the operator rolled back anyway (-Force -ForceReason): the timeline and the receipt record it.</summary>
    Forced,
}

/// <summary>
/// One preflight check of a planned rollback (the plan's every Kubernetes write dry-run on the server,
/// the target digest in the registry): which check, on what, what it saw, and when it failed its
/// stable error id and what to do. Names, status messages and digests only, never data.
/// </summary>
public sealed record PreflightCheck
{
    public required string Environment { get; init; }
    /// <summary>server-dry-run, registry-digest, target-verify.</summary>
    public required string Check { get; init; }
    /// <summary>What was checked: a planned write ("json-patch deployment kfm/kfm-api"), a manifest in a registry.</summary>
    public required string Target { get; init; }
    public required PreflightVerdict Verdict { get; init; }
    /// <summary>What the check saw (the apiserver's or the registry's answer).</summary>
    public required string Saw { get; init; }
    /// <summary>The check's error id when it failed (PreflightAdmissionDenied, PreflightDigestMissing …).</summary>
    public string? ErrorId { get; init; }
    /// <summary>What to do when it failed.</summary>
    public string? Advice { get; init; }
    public KfmErrorKind Kind { get; init; } = KfmErrorKind.InvalidOperation;

    public bool Failed => Verdict == PreflightVerdict.Failed;

    /// <summary>
    /// This check refusing with <paramref name="errorId"/>, or <see cref="PreflightVerdict.Forced"/> when the
    /// operator passed -Force -ForceReason and the refusal may be overridden: one rule for every check.
    /// </summary>
    public PreflightCheck Refuse(string errorId, KfmErrorKind kind, string advice, RollbackRequest request, bool forceable = true) =>
        forceable && request.Force
            ? this with { Verdict = PreflightVerdict.Forced, ErrorId = errorId, Kind = kind, Advice = $"Forced by {request.Actor}: {request.ForceReason}" }
            : this with { Verdict = PreflightVerdict.Failed, ErrorId = errorId, Kind = kind, Advice = advice };

    /// <summary>The refusal a failed check becomes: which check, what it saw, what to do.</summary>
    public KfmException ToException() => new(ErrorId ?? PreflightErrorIds.Failed, Kind,
        $"Preflight check {Check} failed for {Environment}: {Target}: {Saw}. Nothing was changed. {Advice}".TrimEnd(), Target);

    public override string ToString() => $"{Check} {Verdict}: {Target}: {Saw}";
}

/// <summary>The error ids of failed preflight checks: one per check and cause, stable for scripts.</summary>
public static class PreflightErrorIds
{
    /// <summary>A server-side dry run was refused by an admission webhook (a policy engine such as kyverno).</summary>
    public const string AdmissionDenied = "PreflightAdmissionDenied";
    /// <summary>A server-side dry run exceeded a ResourceQuota.</summary>
    public const string QuotaExceeded = "PreflightQuotaExceeded";
    /// <summary>A server-side dry run would change an immutable field.</summary>
    public const string ImmutableField = "PreflightImmutableField";
    /// <summary>A server-side dry run was refused for another reason (validation, permissions, a missing object).</summary>
    public const string DryRunRefused = "PreflightDryRunRefused";
    /// <summary>The target digest is gone from the configured registry.</summary>
    public const string DigestMissing = "PreflightDigestMissing";
    /// <summary>The configured registry could not be asked (unreachable, unauthorized, failing): existence unconfirmed.</summary>
    public const string RegistryUnavailable = "PreflightRegistryUnavailable";
    public const string Failed = "PreflightFailed";

    /// <summary>The three ways out of a refused rollback, as the runbook's decision tree has them.</summary>
    public const string WaysOut = "Fail forward (fix the cause and deploy a fixed build), fail closed (Enable-KfmFailClosed) while the API is unsafe, or choose another target (-ToRevision / -ToRef; Get-KfmRolloutHistory lists them).";
}
