using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Refs;

namespace KfmRollback.Engine.Freeze;

/// <summary>What a thaw lets the GitOps controller deploy: Git's pin, where it is set, and its quarantine if any.</summary>
public sealed record ThawDesiredState(string Environment, string Digest, string Commit, string Branch, string File, QuarantineEntry? Quarantine)
{
    /// <summary>Why Git's pin could not be read (the thaw went ahead, warned and recorded); null when it was checked.</summary>
    public string? NotChecked { get; init; }
}

/// <summary>
/// Runbook "post-rollback actions": thaw only once desired state is re-aligned. After an emergency
/// cluster rollback Git still pins the bad build; thawing then lets the controller sync it straight
/// back (argoproj/argo-cd#9570, fluxcd/flux2#4676). A thaw whose Git pin is a quarantined digest is
/// refused, naming the digest and the commit, unless the operator overrides it with a reason.
/// </summary>
public static class ThawGuard
{
    public const string RefusedErrorId = "ThawPinsQuarantinedDigest";

    /// <summary>
    /// Reads what Git pins (<paramref name="readDesired"/>: the GitOps ref with the one authority's
    /// quarantine) when the environment has a GitOps repository, and refuses a quarantined pin unless
    /// <paramref name="overrideReason"/> is given, in which case the override goes on the timeline.
    /// Null when the environment has no GitOps repository (nothing in Git can redeploy a build); a state
    /// with <see cref="ThawDesiredState.NotChecked"/> when Git could not be read (recorded on the timeline).
    /// </summary>
    public static ThawDesiredState? Check(EnvironmentConfig environment, Func<ApiRef> readDesired, string? overrideReason, Action<string, string> timeline)
    {
        GitOpsConfig? gitops = environment.GitopsSection;
        if (gitops is null || (gitops.Url is null && gitops.Path is null))
        {
            return null;
        }
        ApiRef desired;
        try
        {
            desired = readDesired();
        }
        catch (KfmException e) when (e is not ConfigSectionMissingException)
        {
            // Not knowing is not a refusal here: a thaw restores the controllers' own state, and Git
            // unreadable now is also unreadable to them. Said loudly and put on the record instead.
            string why = $"Git's pin was not checked before the thaw of {environment.Name} ({e.ErrorId}: {e.Message}); check that Git does not pin a quarantined build (Get-KfmApiRef -Source GitOps)";
            timeline("OPS", why);
            return new ThawDesiredState(environment.Name, string.Empty, string.Empty, gitops.Branch, gitops.File, null) { NotChecked = why };
        }
        string digest = desired.CurrentRef ?? string.Empty;
        QuarantineEntry? quarantine = desired.Quarantined.FirstOrDefault(q => q.Digest == digest);
        var state = new ThawDesiredState(environment.Name, digest, desired.Commit ?? string.Empty, gitops.Branch, gitops.File, quarantine);
        if (quarantine is null)
        {
            return state;
        }
        string commit = state.Commit.Length >= 12 ? state.Commit[..12] : state.Commit;
        if (!string.IsNullOrWhiteSpace(overrideReason))
        {
            timeline("OPS", $"FORCED thaw of {environment.Name} although Git pins {digest} at {commit}, which is {quarantine}: {overrideReason}");
            return state;
        }
        throw new KfmException(RefusedErrorId, KfmErrorKind.InvalidOperation,
            $"Thawing {environment.Name} would let the GitOps controller deploy {digest} again: Git pins it in {gitops.File} on '{gitops.Branch}' at commit {commit}, " +
            $"and a rollback moved away from it: {quarantine}. Nothing was thawed. Re-align Git first (Invoke-KfmRollback -Method GitOps, or merge the rollback pull request), then thaw; " +
            "or thaw anyway with -Force -Reason '<why>' (recorded on the timeline).", digest);
    }
}
