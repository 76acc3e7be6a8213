using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.FailClosed;

/// <summary>Whether the API is failed closed, how, and what a recovery restores.</summary>
public sealed record FailClosedState
{
    public required string Environment { get; init; }
    public required FailClosedMode Mode { get; init; }
    /// <summary>What was changed, e.g. <c>deployment kfm/kfm-api</c> or <c>configmap kfm/kfm-api-config#maintenance</c>.</summary>
    public required string Target { get; init; }
    public required bool Active { get; init; }
    public string? IncidentId { get; init; }
    public string? By { get; init; }
    public DateTimeOffset? At { get; init; }
    public string? Reason { get; init; }
    /// <summary>The value restored on recovery (replica count, or the flag's prior value).</summary>
    public string? PriorValue { get; init; }
    public bool Changed { get; init; }
    public string? Detail { get; init; }
}
