
namespace KfmRollback.Engine.Planning;

/// <summary>
/// Stable ErrorIds of Get-KfmRollbackPlan, one per branch of the runbook's decision tree that stops.
/// They become FullyQualifiedErrorIds, so scripts and alert rules match on them: never rename one.
/// </summary>
public static class RollbackPlanErrorIds
{
    /// <summary>Same digest, same configuration hashes, same policy bundle: the data/catalog runbooks apply.</summary>
    public const string ApiUnchanged = "RollbackPlanApiUnchanged";
    /// <summary>Something the decision needs could not be determined (default deny).</summary>
    public const string Undetermined = "RollbackPlanUndetermined";
    /// <summary>No previous revision, no verified receipt and no -ToRevision/-ToRef.</summary>
    public const string NoLastKnownGood = "RollbackPlanNoLastKnownGood";
    /// <summary>No freeze-time snapshot says what a reused ConfigMap/Secret held when the last-known-good ran.</summary>
    public const string SnapshotMissing = "RollbackPlanSnapshotMissing";
    /// <summary>The running ReplicaSet or its creation time is unknown, so the last deploy cannot be dated.</summary>
    public const string DeployTimeUnknown = "RollbackPlanDeployTimeUnknown";
    /// <summary>Neither -Since nor an incident in the journal says when the incident began.</summary>
    public const string IncidentStartUnknown = "RollbackPlanIncidentStartUnknown";
    /// <summary>The API already runs its last-known-good (a recorded rollback or a verified receipt put it there): a rollback changes nothing.</summary>
    public const string AtLastKnownGood = "RollbackPlanAtLastKnownGood";
    /// <summary>policy_surface.opa_status_url did not answer with a usable status report.</summary>
    public const string PolicyStatusUnavailable = Adapters.Opa.OpaStatus.StatusUnavailable;
}
