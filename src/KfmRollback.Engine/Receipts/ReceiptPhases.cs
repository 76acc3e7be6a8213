using System.Text.Json.Serialization;
using KfmRollback.Engine.Incidents;

namespace KfmRollback.Engine.Receipts;

/// <summary>
/// Extension field <c>kfm_integrity.phases</c>: the rollback run's phases in UTC (detect, decide,
/// freeze, apply, converge, verified) and its time to safe, as the incident journal recorded them
/// (<see cref="RunPhaseTimes"/>). The runbook's fields are unchanged.
/// </summary>
public sealed class ReceiptPhases
{
    [JsonPropertyName("run")] public required string Run { get; init; }
    [JsonPropertyName("spans")] public required IReadOnlyList<ReceiptPhaseSpan> Spans { get; init; }
    /// <summary>verified − incident start, in milliseconds; absent until checklist A+B passed.</summary>
    [JsonPropertyName("time_to_safe_ms")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? TimeToSafeMs { get; init; }
    /// <summary>verified − apply, in milliseconds; absent until checklist A+B passed.</summary>
    [JsonPropertyName("time_to_safe_from_apply_ms")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? TimeToSafeFromApplyMs { get; init; }

    /// <summary>The receipt's form of a run's phases: only the phases the journal shows both ends of.</summary>
    public static ReceiptPhases From(RunPhaseTimes times) => new()
    {
        Run = times.RunId,
        Spans = times.Phases.Where(p => p.Start is not null && p.End is not null)
            .Select(p => new ReceiptPhaseSpan { Phase = p.Phase, Start = IncidentJournal.Rfc3339(p.Start!.Value), End = IncidentJournal.Rfc3339(p.End!.Value) })
            .ToList(),
        TimeToSafeMs = Ms(times.TimeToSafe),
        TimeToSafeFromApplyMs = Ms(times.TimeToSafeFromApply),
    };

    private static long? Ms(TimeSpan? span) => span is { } s ? (long)Math.Round(s.TotalMilliseconds) : null;
}

public sealed class ReceiptPhaseSpan
{
    [JsonPropertyName("phase")] public required string Phase { get; init; }
    [JsonPropertyName("start")] public required string Start { get; init; }
    [JsonPropertyName("end")] public required string End { get; init; }
}
