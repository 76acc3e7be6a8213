namespace KfmRollback.Cmdlets.Common;

// Enums that cmdlet parameters use live here, not in the engine: a value-type field of an engine
// type would make PowerShell load the engine while it scans the cmdlets, before the module's load
// context is hooked up.

/// <summary>Where Get-KfmApiRef reads the API's ref.</summary>
public enum ApiRefSource
{
    Cluster,
    GitOps,
    Helm,
}

/// <summary>How Invoke-KfmRollback rolls back.</summary>
public enum RollbackMethodName
{
    GitOps,
    Cluster,
    Helm,
}

/// <summary>How Invoke-KfmRollback -MergeWith / Wait-KfmRollback -MergeWith merges the rollback pull request.</summary>
public enum MergeStrategyName
{
    Squash,
    Merge,
}

/// <summary>What Invoke-KfmRollback puts back.</summary>
public enum RollbackSurfaceName
{
    Image,
    Config,
    Policy,
}

/// <summary>Where the rollback stands, for New-KfmIncidentUpdate.</summary>
public enum IncidentStageName
{
    Identified,
    RollingBack,
    Verifying,
    Resolved,
    FailedClosed,
}

/// <summary>What a regression affects, for New-KfmIncidentUpdate.</summary>
public enum ImpactAreaName
{
    Availability,
    PolicyEnforcement,
    Latency,
    Correctness,
}

internal static class ParameterEnumMapping
{
    // Same names on both sides; parsing by name keeps the two lists from drifting silently.
    public static Engine.Incidents.IncidentStage ToEngine(this IncidentStageName stage) =>
        Enum.Parse<Engine.Incidents.IncidentStage>(stage.ToString());

    public static IReadOnlyCollection<Engine.Incidents.ImpactArea> ToEngine(this IEnumerable<ImpactAreaName> impact) =>
        impact.Select(area => Enum.Parse<Engine.Incidents.ImpactArea>(area.ToString())).ToList();

    public static Engine.Rollback.Surfaces.RollbackSurfaces ToEngine(this IEnumerable<RollbackSurfaceName> surfaces) =>
        surfaces.Aggregate((Engine.Rollback.Surfaces.RollbackSurfaces)0, (all, s) => all | s switch
        {
            RollbackSurfaceName.Image => Engine.Rollback.Surfaces.RollbackSurfaces.Image,
            RollbackSurfaceName.Config => Engine.Rollback.Surfaces.RollbackSurfaces.Config,
            _ => Engine.Rollback.Surfaces.RollbackSurfaces.Policy,
        });

    public static Engine.Refs.RefSource ToEngine(this ApiRefSource source) =>
        source switch
        {
            ApiRefSource.Cluster => Engine.Refs.RefSource.Cluster,
            ApiRefSource.Helm => Engine.Refs.RefSource.Helm,
            _ => Engine.Refs.RefSource.GitOps,
        };

    public static KfmRollback.Engine.Adapters.PullRequests.MergeStrategy? ToEngine(this MergeStrategyName? strategy) =>
        strategy is { } s ? Enum.Parse<KfmRollback.Engine.Adapters.PullRequests.MergeStrategy>(s.ToString()) : null;

    public static Engine.Rollback.RollbackMethod ToEngine(this RollbackMethodName method) =>
        Enum.Parse<Engine.Rollback.RollbackMethod>(method.ToString());
}
