using System.Globalization;

namespace KfmRollback.Engine.Incidents;

/// <summary>The phases of the way from "roll back" to "verified safe", in order (issue 21).</summary>
public static class SafetyPhases
{
    /// <summary>From the incident's start (as the commander gave it) to the module opening it.</summary>
    public const string Detect = "detect";
    /// <summary>Planning the run: from the plan's start to the plan recorded (run record <c>planned</c>).</summary>
    public const string Decide = "decide";
    /// <summary>From the freeze's request (its timeline entry) to the last freeze this incident made or joined before the change went out.</summary>
    public const string Freeze = "freeze";
    /// <summary>From the write-ahead record (<c>applying</c>) to the change sent (<c>applied</c>).</summary>
    public const string Apply = "apply";
    /// <summary>From the change sent to the rollout (or merge, reconcile and rollout) complete (<c>awaited</c>).</summary>
    public const string Converge = "converge";
    /// <summary>Checklist A+B (Test-KfmRollback): from the verification's start to its verdict (<c>verified</c>).</summary>
    public const string Verified = "verified";

    public static IReadOnlyList<string> All { get; } = new[] { Detect, Decide, Freeze, Apply, Converge, Verified };
}

/// <summary>One phase of a run, in UTC; Start or End is null when the journal does not (yet) show it.</summary>
public sealed record RunPhase(string IncidentId, string RunId, string Phase, DateTimeOffset? Start, DateTimeOffset? End, string? Note = null)
{
    public TimeSpan? Duration => Start is { } s && End is { } e && e >= s ? e - s : null;

    /// <summary>The run's time to safe, carried on each phase so a table of phases can head each run with it.</summary>
    public string? TimeToSafeText { get; init; }

    /// <summary>HH:mm:ss.fff UTC, or "-".</summary>
    public string StartUtc => RunPhaseTimes.FormatTime(Start);
    public string EndUtc => RunPhaseTimes.FormatTime(End);
    /// <summary>The duration as people read it ("4.2s", "1m 03.0s"), or "-".</summary>
    public string Took => RunPhaseTimes.FormatSpan(Duration);

    public override string ToString() => $"{Phase,-9} {StartUtc} -> {EndUtc} UTC {Took,8}{(Note is null ? "" : "  " + Note)}";
}

/// <summary>
/// A rollback run's phases and its time to safe, read from the incident's journal only: the
/// incident's start and opening, the freeze entries on its timeline, and the run's own records
/// (planned, applying, applied, awaited, verified). One reader for the drill, Get-KfmIncident
/// -Phases, the receipt's <c>kfm_integrity.phases</c> and the report's phase chart.
/// </summary>
public sealed record RunPhaseTimes
{
    public required string IncidentId { get; init; }
    public required string RunId { get; init; }
    public required string Environment { get; init; }
    public required string Method { get; init; }
    public required DateTimeOffset IncidentStart { get; init; }
    public required IReadOnlyList<RunPhase> Phases { get; init; }
    /// <summary>When checklist A+B passed for this run's change; null until it has.</summary>
    public DateTimeOffset? SafeAt { get; init; }
    /// <summary>When the change's write-ahead record was written: the start of apply.</summary>
    public DateTimeOffset? ApplyStart { get; init; }

    /// <summary>verified − incident start.</summary>
    public TimeSpan? TimeToSafe => SafeAt is { } safe ? safe - IncidentStart : null;
    /// <summary>verified − apply.</summary>
    public TimeSpan? TimeToSafeFromApply => SafeAt is { } safe && ApplyStart is { } apply ? safe - apply : null;

    public RunPhase? Phase(string name) => Phases.FirstOrDefault(p => p.Phase == name);

    /// <summary>"safe after 1m 12.4s (41.0s from apply)", or why not yet.</summary>
    public string TimeToSafeText => TimeToSafe is { } total
        ? $"safe after {FormatSpan(total)} from incident start ({FormatSpan(TimeToSafeFromApply)} from apply)"
        : Phase(SafetyPhases.Verified)?.Note ?? "not verified safe yet";

    /// <summary>The phases of every run of <paramref name="incident"/> that sent a change, oldest first.</summary>
    public static IReadOnlyList<RunPhaseTimes> Of(Incident incident) =>
        incident.Runs.Where(r => r.Applying is not null).Select(r => Of(incident, r)).ToList();

    /// <summary>The newest run of <paramref name="environment"/> that sent a change, or null.</summary>
    public static RunPhaseTimes? Latest(Incident incident, string environment) =>
        incident.Runs.LastOrDefault(r => r.Applying is not null && string.Equals(r.Environment, environment, StringComparison.Ordinal)) is { } run ? Of(incident, run) : null;

    public static RunPhaseTimes Of(Incident incident, IncidentRun run)
    {
        RunRecord? planned = run.Records.FirstOrDefault(r => r.Phase == RunPhases.Planned);
        RunRecord? applying = run.Records.FirstOrDefault(r => r.Phase == RunPhases.Applying);
        RunRecord? applied = run.Records.FirstOrDefault(r => r.Phase == RunPhases.Applied);
        RunRecord? awaited = run.Records.LastOrDefault(r => r.Phase == RunPhases.Awaited);
        RunRecord? verified = run.Records.LastOrDefault(r => r.Phase == RunPhases.Verified);
        bool converged = awaited?.Outcome == "Succeeded";
        bool safe = verified?.Outcome == "Passed";

        // The freezes that count are the ones in force before the change went out.
        DateTimeOffset cutoff = applying?.At ?? DateTimeOffset.MaxValue;
        IReadOnlyList<TimelineEntry> timeline = TimelineFacts.Read(incident.Timeline).Entries;
        List<TimelineEntry> freezes = timeline
            .Where(e => e.At <= cutoff && (e.Event.StartsWith(TimelineFacts.FrozePrefix, StringComparison.Ordinal) || e.Event.StartsWith(TimelineFacts.JoinedPrefix, StringComparison.Ordinal)))
            .ToList();
        // The freeze began with the request that led to its first mechanism frozen (older journals have none: the first freeze).
        DateTimeOffset? freezeStart = freezes.Count == 0 ? null
            : timeline.LastOrDefault(e => e.At <= freezes[0].At && e.Event.StartsWith(TimelineFacts.FreezeRequestedPrefix, StringComparison.Ordinal))?.At ?? freezes[0].At;

        string id = incident.IncidentId, runId = run.RunId;
        var phases = new List<RunPhase>
        {
            new(id, runId, SafetyPhases.Detect, incident.StartedAt, incident.OpenedAt),
            new(id, runId, SafetyPhases.Decide, planned?.StartedAt ?? planned?.At, planned?.At, planned is null ? "no plan recorded" : null),
            freezes.Count == 0
                ? new(id, runId, SafetyPhases.Freeze, null, null, "no freeze recorded before the change")
                : new(id, runId, SafetyPhases.Freeze, freezeStart, freezes[^1].At),
            new(id, runId, SafetyPhases.Apply, applying?.At, applied?.At, applied is null ? "the change is not recorded as sent" : null),
            new(id, runId, SafetyPhases.Converge, applied?.At, converged ? awaited!.CompletedAt ?? awaited.At : null,
                awaited is null ? "the rollout was not awaited (Wait-KfmRollback)" : converged ? null : $"the rollout ended {awaited.Outcome}"),
            new(id, runId, SafetyPhases.Verified, verified is null ? null : verified.StartedAt ?? awaited?.At ?? applied?.At, verified?.At,
                verified is null ? "not verified yet (Test-KfmRollback)" : safe ? null : "verification did not pass: not safe"),
        };
        var times = new RunPhaseTimes
        {
            IncidentId = id,
            RunId = runId,
            Environment = run.Environment,
            Method = run.Method,
            IncidentStart = incident.StartedAt,
            Phases = phases,
            SafeAt = safe ? verified!.At : null,
            ApplyStart = applying?.At,
        };
        return times with { Phases = phases.Select(p => p with { TimeToSafeText = $"{runId}: {times.TimeToSafeText}" }).ToList() };
    }

    public static string FormatTime(DateTimeOffset? at) => at is { } t ? t.UtcDateTime.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture) : "-";

    /// <summary>"37 ms", "4.2s", "3m 07.5s", "1h 02m 03s"; "-" for none.</summary>
    public static string FormatSpan(TimeSpan? span)
    {
        if (span is not { } s) return "-";
        if (s < TimeSpan.Zero) return "-" + FormatSpan(-s);
        if (s.TotalSeconds < 1) return s.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture) + " ms";
        if (s.TotalMinutes < 1) return s.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + "s";
        if (s.TotalHours < 1) return $"{(int)s.TotalMinutes}m {(s.TotalSeconds % 60).ToString("00.0", CultureInfo.InvariantCulture)}s";
        return $"{(int)s.TotalHours}h {s.Minutes:00}m {s.Seconds:00}s";
    }
}
