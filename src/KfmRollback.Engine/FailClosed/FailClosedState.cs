using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.FailClosed;

/// <summary>
/// Whether the API is failed closed, read from the live object (not from what the module remembers),
/// how, and what a recovery restores.
/// </summary>
public sealed record FailClosedState
{
    public required string Environment { get; init; }
    public required FailClosedMode Mode { get; init; }
    /// <summary>What was changed, e.g. <c>deployment kfm/kfm-api</c> or <c>configmap kfm/kfm-api-config#maintenance</c>.</summary>
    public required string Target { get; init; }
    /// <summary>True when the live state is the mode's target (spec.replicas 0, or the flag at its value), as read back.</summary>
    public required bool Active { get; init; }
    /// <summary>The live state as read: "replicas 0 (0 ready)", "maintenance=true".</summary>
    public string? Live { get; init; }
    /// <summary>True when the module's fail-closed record (annotation kfm.dev/fail-closed) is on the object.</summary>
    public bool Recorded { get; init; }
    /// <summary>Recorded as failed closed, but the live state is no longer the mode's target (a sync, a person, a script put it back).</summary>
    public bool Drifted => Recorded && !Active;
    public string? IncidentId { get; init; }
    public string? By { get; init; }
    public DateTimeOffset? At { get; init; }
    public string? Reason { get; init; }
    /// <summary>The value restored on recovery (replica count, or the flag's prior value).</summary>
    public string? PriorValue { get; init; }
    public bool Changed { get; init; }
    /// <summary>Enable found the fail-closed state drifted and applied it again.</summary>
    public bool Reapplied { get; init; }
    public string? Detail { get; init; }
}
