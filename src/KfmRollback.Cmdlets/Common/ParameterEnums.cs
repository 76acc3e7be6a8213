namespace KfmRollback.Cmdlets.Common;

// Enums that cmdlet parameters use live here, not in the engine: a value-type field of an engine
// type would make PowerShell load the engine while it scans the cmdlets, before the module's load
// context is hooked up.

/// <summary>Where Get-KfmApiRef reads the API's ref.</summary>
public enum ApiRefSource
{
    Cluster,
    GitOps,
}

/// <summary>How Invoke-KfmRollback rolls back.</summary>
public enum RollbackMethodName
{
    GitOps,
    Cluster,
}

internal static class ParameterEnumMapping
{
    public static Engine.Refs.RefSource ToEngine(this ApiRefSource source) =>
        source == ApiRefSource.Cluster ? Engine.Refs.RefSource.Cluster : Engine.Refs.RefSource.GitOps;

    public static Engine.Rollback.RollbackMethod ToEngine(this RollbackMethodName method) =>
        method == RollbackMethodName.Cluster ? Engine.Rollback.RollbackMethod.Cluster : Engine.Rollback.RollbackMethod.GitOps;
}
