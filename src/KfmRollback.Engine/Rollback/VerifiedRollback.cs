using KfmRollback.Engine.Adapters.Http;
using KfmRollback.Engine.Verification;

namespace KfmRollback.Engine.Rollback;

/// <summary>
/// A verification summary with the facts of the rollback it verified (Test-KfmRollback -Rollback),
/// for the receipt. Here rather than in Verification: the rollback step uses verification's checks,
/// so verification must not reach back up to the rollback.
/// </summary>
public static class VerifiedRollback
{
    /// <summary>This summary, carrying the facts of the rollback it verified.</summary>
    public static VerificationSummary For(this VerificationSummary summary, RollbackResult rollback) => summary with
    {
        IncidentId = summary.IncidentId ?? rollback.IncidentId,
        CurrentRef = rollback.CurrentRef,
        RollbackTargetRef = rollback.RollbackTargetRef,
        ChangedSurfaces = rollback.ChangedSurfaces,
        StartedAt = rollback.StartedAt,
        CompletedAt = rollback.CompletedAt,
        Method = rollback.Method.ToString().ToLowerInvariant(),
        FromRevision = rollback.FromRevision?.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ToRevision = rollback.ToRevision?.ToString(System.Globalization.CultureInfo.InvariantCulture),
        Reason = rollback.Reason,
        Evidence = rollback.Evidence,
    };
}
