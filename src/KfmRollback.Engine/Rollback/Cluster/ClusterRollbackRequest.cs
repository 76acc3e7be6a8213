using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Freeze;

namespace KfmRollback.Engine.Rollback.Cluster;

/// <summary>Everything a cluster rollback needs, filled by the cmdlet from parameters and configuration.</summary>
public sealed record ClusterRollbackRequest
{
    public required EnvironmentConfig Environment { get; init; }
    public string? IncidentId { get; init; }
    public required string Actor { get; init; }
    public string? Reason { get; init; }
    public RollbackTarget Target { get; init; } = RollbackTarget.Previous;
    /// <summary>What to put back: the image (template), the runtime configuration, the policy bundle link.</summary>
    public Surfaces.RollbackSurfaces Surfaces { get; init; } = Rollback.Surfaces.RollbackSurfaces.Image;
    public string? Container { get; init; }
    /// <summary>Override the default-deny refusals (unfrozen GitOps controller, paused deployment).</summary>
    public bool Force { get; init; }
    /// <summary>Why -Force was needed; recorded on the timeline. Required with <see cref="Force"/>.</summary>
    public string? ForceReason { get; init; }
    public bool DryRun { get; init; }
    public bool Wait { get; init; }
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>The freeze mechanisms that could revert a cluster change (Argo CD, Flux).</summary>
    public IReadOnlyList<IFreezeMechanism> ClusterFreezes { get; init; } = Array.Empty<IFreezeMechanism>();
}
