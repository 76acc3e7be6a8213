using System.Security.Cryptography;
using KfmRollback.Engine.Adapters.Registry;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Rollback.Preflight;

/// <summary>
/// The preflight check "target-verify" (issue 19 item 3): before rolling back to a build, that the
/// build is one the release pipeline signed (a keyed cosign signature on the target digest, read from
/// the environment's registry) and that it is not revoked (verify.denylist / denylist_file). Rolling
/// back is the classic downgrade: an old, validly signed release with a known hole is replayed, so a
/// revoked digest is refused even when its signature verifies. A target that fails is refused before
/// any change, each cause with its own error id; with -Force -ForceReason the check is Forced instead,
/// which the timeline and the receipt (kfm_integrity.forced_checks) record. Configuration faults (an
/// unreadable key or denylist) are never forced: they are fixed in the configuration.
/// </summary>
public sealed class TargetVerification(Func<RegistryConfig, IRegistryClient> registries)
{
    public const string CheckName = "target-verify";

    public async Task<PreflightCheck> CheckAsync(RollbackRequest request, MechanismPlan plan, CancellationToken cancellationToken)
    {
        EnvironmentConfig environment = request.Environment;
        VerifyConfig? verify = environment.Verify;
        string? digest = ImageRefs.IsDigest(plan.TargetRef) ? plan.TargetRef : null;
        PreflightCheck Result(string target, PreflightVerdict verdict, string saw) =>
            new() { Environment = environment.Name, Check = CheckName, Target = target, Verdict = verdict, Saw = saw };
        if (verify is null)
        {
            return Result(digest is null ? "target" : ImageRefs.Short(digest), PreflightVerdict.Skipped, $"no verify section is configured for {environment.Name}, so the target's signature and revocation are not checked");
        }
        if (digest is null)
        {
            return Result("target", PreflightVerdict.Skipped, "the plan targets no image digest (a configuration or policy change only)");
        }
        RegistryConfig? registry = environment.Registry;
        string? repository = registry?.RepositoryOf(plan.TargetImage);
        string target = registry is null ? digest : $"{registry.Url.Authority}/{repository ?? "?"}@{digest}";
        PreflightCheck Refused(string id, KfmErrorKind kind, string saw, string advice, bool forceable = true) =>
            Result(target, PreflightVerdict.Failed, saw).Refuse(id, kind, advice, request, forceable);
        string forceAdvice = "If this build must run anyway, pass -Force -ForceReason '<why>' (recorded on the timeline and the receipt), or: " + PreflightErrorIds.WaysOut;

        HashSet<string> revoked;
        try
        {
            revoked = Denylist(verify);
        }
        catch (KfmException ex)
        {
            return Refused(ex.ErrorId, ex.Kind, ex.Message.TrimEnd('.'), "Fix verify.denylist_file, then plan again.", forceable: false);
        }
        if (revoked.Contains(digest))
        {
            return Refused(TargetVerificationErrorIds.Revoked, KfmErrorKind.SecurityError,
                $"{ImageRefs.Short(digest)} is on the environment's denylist of revoked builds (verify.denylist{(verify.DenylistFile is null ? "" : " / denylist_file")})",
                "A revoked build is never a safe target, signed or not: choose another target. " + forceAdvice);
        }
        if (!verify.ChecksSignatures)
        {
            return Result(target, PreflightVerdict.Passed, "not on the denylist (no public_key_file: signatures are not checked)");
        }
        if (registry is null || repository is null)
        {
            return Refused(TargetVerificationErrorIds.Unavailable, KfmErrorKind.Ambiguous, "the plan does not say which repository holds the target, so its signature cannot be read",
                "Set registry.repository for this environment, then plan again.", forceable: false);
        }
        ECDsa key;
        try
        {
            key = CosignSignatures.LoadPublicKey(verify.PublicKeyFile!);
        }
        catch (KfmException ex)
        {
            return Refused(ex.ErrorId, ex.Kind, ex.Message.TrimEnd('.'), "Fix verify.public_key_file, then plan again.", forceable: false);
        }
        CosignCheck check;
        using (key)
        {
            try
            {
                check = await new CosignSignatures(registries(registry)).VerifyAsync(repository, digest, key, cancellationToken).ConfigureAwait(false);
            }
            catch (KfmException ex)
            {
                return Refused(TargetVerificationErrorIds.Unavailable, ex.Kind, $"the target's signature could not be read: {ex.Message.TrimEnd('.')}",
                    "Whether the target is signed is unconfirmed. Fix the registry access (registry.url, registry.username, token_env/token_file) and plan again. " + forceAdvice);
            }
        }
        return check.Verdict switch
        {
            CosignVerdict.Verified => Result(target, PreflightVerdict.Passed, check.Saw + (revoked.Count > 0 ? "; not on the denylist" : "")),
            CosignVerdict.Unsigned => Refused(TargetVerificationErrorIds.Unsigned, KfmErrorKind.SecurityError, check.Saw + ": the target is not signed",
                "Only builds the release pipeline signed are rolled back to: sign it (cosign sign --key) if it is one, or choose another target. " + forceAdvice),
            CosignVerdict.SignatureInvalid => Refused(TargetVerificationErrorIds.SignatureInvalid, KfmErrorKind.SecurityError, check.Saw,
                "Check that verify.public_key_file is the release pipeline's key; otherwise treat the registry as tampered with. " + forceAdvice),
            CosignVerdict.PayloadTampered => Refused(TargetVerificationErrorIds.PayloadTampered, KfmErrorKind.SecurityError, check.Saw,
                "Treat the registry as tampered with and escalate to security. " + forceAdvice),
            _ => Refused(TargetVerificationErrorIds.OtherDigest, KfmErrorKind.SecurityError, check.Saw,
                "Treat the registry as tampered with and escalate to security. " + forceAdvice),
        };
    }

    /// <summary>The revoked digests: inline entries and the file's lines (blank lines and # comments skipped).</summary>
    private static HashSet<string> Denylist(VerifyConfig verify)
    {
        var result = new HashSet<string>(verify.Denylist, StringComparer.Ordinal);
        if (verify.DenylistFile is not { } path)
        {
            return result;
        }
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new KfmException(TargetVerificationErrorIds.DenylistUnreadable, KfmErrorKind.ReadError,
                $"Cannot read the denylist {Path.GetFileName(path)} ({ex.GetType().Name}): revocations are unknown, so no target is trusted", path, ex);
        }
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Split('#', 2)[0].Trim();
            if (line.Length == 0)
            {
                continue;
            }
            if (!ImageRefs.IsDigest(line))
            {
                throw new KfmException(TargetVerificationErrorIds.DenylistUnreadable, KfmErrorKind.InvalidData,
                    $"Line {i + 1} of the denylist {Path.GetFileName(path)} is not an image digest (sha256: and 64 lowercase hex characters): revocations are unknown, so no target is trusted", path);
            }
            result.Add(line);
        }
        return result;
    }
}

/// <summary>The error ids of the target-verify check: one per cause, stable for scripts.</summary>
public static class TargetVerificationErrorIds
{
    /// <summary>The target carries no cosign signature (no <c>sha256-&lt;hex&gt;.sig</c> manifest, or no simple-signing layer).</summary>
    public const string Unsigned = "PreflightTargetUnsigned";
    /// <summary>No signature verifies with the configured key (another key, or a payload edited and re-pushed after signing).</summary>
    public const string SignatureInvalid = "PreflightTargetSignatureInvalid";
    /// <summary>A signed payload the registry served does not match the digest its signature manifest names.</summary>
    public const string PayloadTampered = "PreflightTargetPayloadTampered";
    /// <summary>A valid signature vouches for another digest than the target.</summary>
    public const string OtherDigest = "PreflightTargetSignedForOtherDigest";
    /// <summary>The target digest is on the environment's denylist.</summary>
    public const string Revoked = "PreflightTargetRevoked";
    /// <summary>The signature could not be read (registry unreachable, unauthorized, failing, or no repository known).</summary>
    public const string Unavailable = "PreflightTargetUnverifiable";
    /// <summary>verify.denylist_file cannot be read or holds a line that is not a digest.</summary>
    public const string DenylistUnreadable = "VerifyDenylistUnreadable";
}
