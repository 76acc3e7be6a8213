using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace KfmRollback.Engine.Incidents;

/// <summary>The phases a rollback run records in its incident's journal, before and after each step.</summary>
public static class RunPhases
{
    /// <summary>The plan was approved; nothing is changed yet.</summary>
    public const string Planned = "planned";
    /// <summary>The rollback lock is held (or was taken over from this run's earlier attempt).</summary>
    public const string Locked = "locked";
    /// <summary>Written before the first change is sent, with every change: a crash after it never loses what went out.</summary>
    public const string Applying = "applying";
    /// <summary>The changes went out (Outcome Succeeded, or PendingMerge for GitOps).</summary>
    public const string Applied = "applied";
    /// <summary>The rollout (or merge, reconcile and rollout) was awaited; Outcome says how it ended.</summary>
    public const string Awaited = "awaited";
    /// <summary>Checklist A-D verified the rolled-back API (Test-KfmRollback).</summary>
    public const string Verified = "verified";
    /// <summary>The run stopped with an error; Changes lists what was sent before it did.</summary>
    public const string Failed = "failed";
    /// <summary>Ctrl+C (or a stopped job) after a change: the rollout continues without anyone waiting.</summary>
    public const string Interrupted = "interrupted";
    /// <summary>An operator broke another holder's rollback lock on the record (-BreakLock -Reason).</summary>
    public const string LockBroken = "lock-broken";
    /// <summary>The rollback lock was lost while this run held it (another holder took or broke it).</summary>
    public const string LockLost = "lock-lost";
}

/// <summary>One change a run sent or will send: what, where, and the sha256 of its exact content.</summary>
public sealed record RunChange(string Surface, string Object, string Action, string ContentSha256);

/// <summary>A preflight check the operator forced past (-Force -ForceReason), kept so a resumed run's receipt still says so.</summary>
public sealed record RunForcedCheck(string Check, string ErrorId, string Target);

/// <summary>
/// One record of a rollback run in its incident's journal. A run is one (incident, environment)
/// rollback; every invocation of it (a rerun, Azure Automation restarting the job) is an attempt of
/// the same run, so the journal shows each attempt's phases in order.
/// </summary>
public sealed record RunRecord
{
    public required string RunId { get; init; }
    public required string Attempt { get; init; }
    public required string Environment { get; init; }
    public required string Method { get; init; }
    public required string Phase { get; init; }
    /// <summary>The target as the request named it: "previous", "revision 4", a digest, "revert &lt;sha&gt;".</summary>
    public string? Named { get; init; }
    public DateTimeOffset At { get; init; }
    public string Actor { get; init; } = string.Empty;
    public string? Outcome { get; init; }
    public string? CurrentRef { get; init; }
    public string? TargetRef { get; init; }
    public long? FromRevision { get; init; }
    public long? ToRevision { get; init; }
    public string? RolloutTarget { get; init; }
    public string? Branch { get; init; }
    public string? Commit { get; init; }
    public string? PullRequestUrl { get; init; }
    public string? MergeCommit { get; init; }
    public string? ReconciledRevision { get; init; }
    public IReadOnlyList<string> Surfaces { get; init; } = Array.Empty<string>();
    public IReadOnlyList<RunChange> Changes { get; init; } = Array.Empty<RunChange>();
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? CompletedAt { get; init; }
    /// <summary>People's words: the plan summary, the outcome's detail, the interruption note.</summary>
    public string? Detail { get; init; }
    public string? ErrorId { get; init; }
    /// <summary>-Force / -BreakLock: why, as the operator gave it.</summary>
    public string? Reason { get; init; }
    /// <summary>The preflight checks forced past before the change (with <see cref="Reason"/>); null when none were.</summary>
    public IReadOnlyList<RunForcedCheck>? ForcedChecks { get; init; }
    /// <summary>-BreakLock / a lost lock: who held the lock.</summary>
    public string? Holder { get; init; }

    internal const string RecordType = "run";

    /// <summary>The record's JSON: snake_case names, no nulls, times as RFC 3339 UTC with milliseconds (as every journal record).</summary>
    private static readonly JsonSerializerOptions s_json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new Rfc3339Converter() },
    };

    internal JsonObject ToJson(string incidentId)
    {
        var record = new JsonObject { ["v"] = 1, ["type"] = RecordType, ["incident_id"] = incidentId };
        foreach (var (key, value) in JsonSerializer.SerializeToNode(this, s_json)!.AsObject().ToList())
        {
            record[key] = value?.DeepClone();
        }
        return record;
    }

    internal static RunRecord FromJson(JsonObject o) => o.Deserialize<RunRecord>(s_json)!;

    private sealed class Rfc3339Converter : JsonConverter<DateTimeOffset>
    {
        public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            DateTimeOffset.Parse(reader.GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal).ToUniversalTime();

        public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
            writer.WriteStringValue(IncidentJournal.Rfc3339(value));
    }
}

/// <summary>
/// A rollback run as its incident's journal tells it: the (incident, environment) it serves, every
/// record of every attempt in order, and what the latest record says.
/// </summary>
public sealed class IncidentRun
{
    public required string RunId { get; init; }
    public required string Environment { get; init; }
    public required string Method { get; init; }
    public required IReadOnlyList<RunRecord> Records { get; init; }

    /// <summary>The latest phase recorded (lock-broken records about other holders do not move it).</summary>
    public string Phase => Progress?.Phase ?? RunPhases.Planned;

    /// <summary>The newest record that says where the run stands.</summary>
    public RunRecord? Progress => Records.LastOrDefault(r => r.Phase is not (RunPhases.LockBroken or RunPhases.Locked));

    /// <summary>The record of the change (applied), or null when no change is known to have gone out.</summary>
    public RunRecord? Applied => Records.LastOrDefault(r => r.Phase == RunPhases.Applied);

    /// <summary>The write-ahead record of the change, with every change listed.</summary>
    public RunRecord? Applying => Records.LastOrDefault(r => r.Phase == RunPhases.Applying);

    public IReadOnlyList<string> Attempts => Records.Select(r => r.Attempt).Distinct(StringComparer.Ordinal).ToList();
    public string? CurrentRef => Records.FirstOrDefault(r => r.Phase == RunPhases.Applying && r.CurrentRef is not null)?.CurrentRef
        ?? Records.LastOrDefault(r => r.CurrentRef is not null)?.CurrentRef;
    /// <summary>The target as the run's first request named it.</summary>
    public string? Named => Records.FirstOrDefault(r => r.Named is not null)?.Named;
    public string? TargetRef => Records.LastOrDefault(r => r.TargetRef is not null)?.TargetRef;
    public DateTimeOffset StartedAt => Records[0].At;
    public DateTimeOffset LastAt => Records[^1].At;

    public override string ToString() => $"{RunId} {Method} {Phase}";
}
