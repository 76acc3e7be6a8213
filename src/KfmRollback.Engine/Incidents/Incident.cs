namespace KfmRollback.Engine.Incidents;

/// <summary>Whether an impacted endpoint serves public or restricted data (the runbook asks for both).</summary>
public enum EndpointExposure
{
    Public,
    Restricted,
}

public sealed record ImpactedEndpoint(string Path, EndpointExposure Exposure)
{
    public override string ToString() => $"{Path} ({Exposure.ToString().ToLowerInvariant()})";
}

/// <summary>One line of the incident timeline, rendered the way KFM writes them: <c>HH:MM UTC  ROLE  event</c>.</summary>
public sealed record TimelineEntry(DateTimeOffset At, string Role, string Event, string Actor)
{
    public string Line => $"{At.UtcDateTime:HH:mm} UTC  {Role}  {Event}";

    public override string ToString() => Line;
}

/// <summary>
/// An incident as replayed from its journal. The journal is the truth; this object is a view of it
/// at the moment it was read.
/// </summary>
public sealed class Incident
{
    public required string IncidentId { get; init; }
    public required string Commander { get; init; }
    public required string Reason { get; init; }
    public string? Environment { get; init; }
    public required DateTimeOffset StartedAt { get; init; }
    public required string OpenedBy { get; init; }
    public required DateTimeOffset OpenedAt { get; init; }
    public IReadOnlyList<ImpactedEndpoint> ImpactedEndpoints { get; init; } = Array.Empty<ImpactedEndpoint>();
    public IReadOnlyList<TimelineEntry> Timeline { get; init; } = Array.Empty<TimelineEntry>();
    /// <summary>The incident's rollback runs (one per environment rolled back), each with every attempt's phases.</summary>
    public IReadOnlyList<IncidentRun> Runs { get; init; } = Array.Empty<IncidentRun>();
    /// <summary>Each run that sent a change, with its phases and time to safe (<see cref="RunPhaseTimes"/>).</summary>
    public IReadOnlyList<RunPhaseTimes> TimesToSafe => RunPhaseTimes.Of(this);
    public required string JournalPath { get; init; }
    /// <summary>Where this incident's own records live (one file per incident in the local journal).</summary>
    public string? RecordPath { get; init; }

    /// <summary>Start in UTC, as the runbook's "Start time of incident (UTC + America/Chicago)".</summary>
    public string StartedAtUtc => StartedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'");

    /// <summary>Start in America/Chicago with the zone's abbreviation for that instant (CST/CDT).</summary>
    public string StartedAtChicago => IncidentTime.FormatChicago(StartedAt);
}
