using System.Globalization;
using System.Text.Json.Nodes;

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
    /// <summary>-BreakLock / a lost lock: who held the lock.</summary>
    public string? Holder { get; init; }

    internal const string RecordType = "run";

    internal JsonObject ToJson(string incidentId)
    {
        var o = new JsonObject
        {
            ["v"] = 1,
            ["type"] = RecordType,
            ["incident_id"] = incidentId,
            ["at"] = IncidentJournal.Rfc3339(At),
            ["actor"] = Actor,
            ["run"] = RunId,
            ["attempt"] = Attempt,
            ["environment"] = Environment,
            ["method"] = Method,
            ["phase"] = Phase,
        };
        void Put(string key, string? value) { if (value is not null) { o[key] = value; } }
        void PutLong(string key, long? value) { if (value is not null) { o[key] = value.Value; } }
        Put("named", Named);
        Put("outcome", Outcome);
        Put("current_ref", CurrentRef);
        Put("target_ref", TargetRef);
        PutLong("from_revision", FromRevision);
        PutLong("to_revision", ToRevision);
        Put("rollout_target", RolloutTarget);
        Put("branch", Branch);
        Put("commit", Commit);
        Put("pull_request", PullRequestUrl);
        Put("merge_commit", MergeCommit);
        Put("reconciled_revision", ReconciledRevision);
        if (Surfaces.Count > 0)
        {
            o["surfaces"] = new JsonArray(Surfaces.Select(s => (JsonNode)JsonValue.Create(s)!).ToArray());
        }
        if (Changes.Count > 0)
        {
            o["changes"] = new JsonArray(Changes.Select(c => (JsonNode)new JsonObject
            {
                ["surface"] = c.Surface,
                ["object"] = c.Object,
                ["action"] = c.Action,
                ["sha256"] = c.ContentSha256,
            }).ToArray());
        }
        Put("started_at", StartedAt is null ? null : IncidentJournal.Rfc3339(StartedAt.Value));
        Put("completed_at", CompletedAt is null ? null : IncidentJournal.Rfc3339(CompletedAt.Value));
        Put("detail", Detail);
        Put("error_id", ErrorId);
        Put("reason", Reason);
        Put("holder", Holder);
        return o;
    }

    internal static RunRecord FromJson(JsonObject o)
    {
        static string? S(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue(out string? s) ? s : null;
        static long? L(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue(out long n) ? n : null;
        static DateTimeOffset? T(JsonObject o, string key) => S(o, key) is { } s
            ? DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal).ToUniversalTime()
            : null;
        return new RunRecord
        {
            RunId = S(o, "run") ?? string.Empty,
            Attempt = S(o, "attempt") ?? string.Empty,
            Environment = S(o, "environment") ?? string.Empty,
            Method = S(o, "method") ?? string.Empty,
            Phase = S(o, "phase") ?? string.Empty,
            At = T(o, "at") ?? DateTimeOffset.MinValue,
            Actor = S(o, "actor") ?? string.Empty,
            Named = S(o, "named"),
            Outcome = S(o, "outcome"),
            CurrentRef = S(o, "current_ref"),
            TargetRef = S(o, "target_ref"),
            FromRevision = L(o, "from_revision"),
            ToRevision = L(o, "to_revision"),
            RolloutTarget = S(o, "rollout_target"),
            Branch = S(o, "branch"),
            Commit = S(o, "commit"),
            PullRequestUrl = S(o, "pull_request"),
            MergeCommit = S(o, "merge_commit"),
            ReconciledRevision = S(o, "reconciled_revision"),
            Surfaces = (o["surfaces"] as JsonArray ?? new JsonArray()).Select(n => n?.GetValue<string>()).OfType<string>().ToList(),
            Changes = (o["changes"] as JsonArray ?? new JsonArray()).OfType<JsonObject>()
                .Select(c => new RunChange(S(c, "surface") ?? "", S(c, "object") ?? "", S(c, "action") ?? "", S(c, "sha256") ?? "")).ToList(),
            StartedAt = T(o, "started_at"),
            CompletedAt = T(o, "completed_at"),
            Detail = S(o, "detail"),
            ErrorId = S(o, "error_id"),
            Reason = S(o, "reason"),
            Holder = S(o, "holder"),
        };
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
