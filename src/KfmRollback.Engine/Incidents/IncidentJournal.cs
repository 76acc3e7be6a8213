using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using KfmRollback.Engine.Adapters.Journal;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Incidents;

/// <summary>What a caller asks for when opening an incident.</summary>
public sealed class IncidentRequest
{
    public required string IncidentId { get; init; }
    public required string Commander { get; init; }
    public required string Reason { get; init; }
    public string? Environment { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public IReadOnlyList<ImpactedEndpoint> ImpactedEndpoints { get; init; } = Array.Empty<ImpactedEndpoint>();
}

/// <summary>Whether <see cref="IncidentJournal.Open"/> wrote a new incident or found the same one.</summary>
public sealed record IncidentOpenResult(Incident Incident, bool Created);

/// <summary>
/// The append-only journal of incidents: their timelines and their rollback runs, one record stream
/// per incident, plus one stream per environment (quarantined digests, rollbacks made). Appending
/// (never rewriting) means a job that Azure Automation restarts from the top finds its incident and
/// its run again, and an operator can read the files with any tool while a rollback runs. Reading one
/// incident costs what that incident holds, not the whole history.
/// <para>
/// On disk (<see cref="NdjsonFileJournal"/>): a journal named <c>dir/incidents.ndjson</c> keeps its
/// streams in <c>dir/incidents.d/incident/&lt;id&gt;.ndjson</c> and <c>dir/incidents.d/environment/&lt;name&gt;.ndjson</c>.
/// A journal written in the older single-file layout (every incident in <c>incidents.ndjson</c>) is
/// imported into those streams once, incrementally if an older module keeps appending to it, and
/// left in place.
/// </para>
/// </summary>
public sealed class IncidentJournal
{
    private const int FormatVersion = 1;
    private const string OpenedType = "incident.opened";
    private const string TimelineType = "timeline";
    private const string LegacyImportedType = "journal.legacy-imported";
    private const string LegacyOffsetKey = "legacy_offset";
    private static readonly Regex s_incidentId = new("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", RegexOptions.CultureInvariant);
    private static readonly Regex s_role = new("^[A-Z][A-Z0-9_-]{0,15}$", RegexOptions.CultureInvariant);
    private static readonly string s_importStream = JournalStreams.Of("journal", "legacy-import");

    private readonly IClock _clock;
    private readonly ITextSafety _safety;
    private readonly IJournalBackend _backend;
    private readonly string? _legacyPath;
    private readonly HashSet<string> _warned = new(StringComparer.Ordinal);
    private bool _legacyChecked;

    /// <summary>The journal in local files named by <paramref name="path"/> (e.g. <c>state/incidents/incidents.ndjson</c>).</summary>
    public IncidentJournal(string path, ITextSafety safety, IClock? clock = null)
    {
        JournalPath = Path.GetFullPath(path);
        _safety = safety;
        _clock = clock ?? SystemClock.Instance;
        _backend = new NdjsonFileJournal(StreamsDirectory(JournalPath), _clock);
        _legacyPath = JournalPath;
    }

    /// <summary>The journal on another medium (a shared backend); <paramref name="name"/> names it in messages.</summary>
    public IncidentJournal(IJournalBackend backend, string name, ITextSafety safety, IClock? clock = null)
    {
        JournalPath = name;
        _backend = backend;
        _safety = safety;
        _clock = clock ?? SystemClock.Instance;
    }

    /// <summary>The journal's name: the single-file path it was configured by (its streams live beside it).</summary>
    public string JournalPath { get; }

    /// <summary>Called once per distinct note (a record set aside after a crash), for the cmdlet to warn.</summary>
    public Action<string>? Warn { get; set; }

    /// <summary>Where the per-incident and per-environment streams of a file journal live.</summary>
    public static string StreamsDirectory(string journalPath) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(journalPath)) ?? ".", Path.GetFileNameWithoutExtension(journalPath) + ".d");

    /// <summary>Where one incident's records live (a file path for the local journal).</summary>
    public string Locate(string incidentId)
    {
        ValidateIncidentId(incidentId);
        return _backend.Locate(IncidentStream(incidentId));
    }

    /// <summary>
    /// Opens an incident, or returns the existing one when the same id was opened with the same
    /// commander and reason (a restarted job). A different incident under the same id is refused.
    /// </summary>
    public IncidentOpenResult Open(IncidentRequest request, string actor)
    {
        ValidateIncidentId(request.IncidentId);
        RequireText(request.Commander, "Commander");
        RequireText(request.Reason, "Reason");
        _safety.EnsurePolicySafe(request.Reason, "Reason");
        foreach (ImpactedEndpoint endpoint in request.ImpactedEndpoints)
        {
            if (!endpoint.Path.StartsWith('/'))
            {
                throw new KfmException("IncidentEndpointInvalid", KfmErrorKind.InvalidArgument,
                    $"Impacted endpoint '{endpoint.Path}' must be a path that starts with '/', for example '/api/v1/datasets'.", endpoint.Path);
            }
        }

        string stream = IncidentStream(request.IncidentId);
        for (int attempt = 0; ; attempt++)
        {
            JournalRead read = ReadStream(stream);
            Incident? existing = Fold(read.Records, stream);
            if (existing is not null)
            {
                if (existing.Commander == request.Commander && existing.Reason == request.Reason)
                {
                    return new IncidentOpenResult(existing, Created: false);
                }
                throw new KfmException("IncidentAlreadyExists", KfmErrorKind.ResourceExists,
                    $"Incident '{existing.IncidentId}' is already open in '{JournalPath}' with another commander or reason. " +
                    $"Use Get-KfmIncident -Id {existing.IncidentId} to continue it, or choose a new -Id.", existing.IncidentId);
            }

            DateTimeOffset now = _clock.UtcNow;
            var record = new JsonObject
            {
                ["v"] = FormatVersion,
                ["type"] = OpenedType,
                ["incident_id"] = request.IncidentId,
                ["at"] = Rfc3339(now),
                ["actor"] = actor,
                ["commander"] = request.Commander,
                ["reason"] = request.Reason,
                ["environment"] = request.Environment,
                ["started_at"] = Rfc3339(request.StartedAt ?? now),
                ["impacted_endpoints"] = new JsonArray(request.ImpactedEndpoints
                    .Select(e => (JsonNode)new JsonObject { ["path"] = e.Path, ["exposure"] = e.Exposure.ToString().ToLowerInvariant() })
                    .ToArray()),
            };
            try
            {
                AppendStream(stream, new[] { record }, read.Version);
            }
            catch (JournalConflictException) when (attempt < 5)
            {
                continue; // someone wrote this incident meanwhile: read it again and decide again
            }
            return new IncidentOpenResult(Get(request.IncidentId), Created: true);
        }
    }

    /// <summary>Appends <c>HH:MM UTC  ROLE  event</c> to an open incident's timeline.</summary>
    public TimelineEntry AppendTimeline(string incidentId, string role, string text, string actor, DateTimeOffset? at = null)
    {
        ValidateIncidentId(incidentId);
        string normalisedRole = (role ?? string.Empty).Trim().ToUpperInvariant();
        if (!s_role.IsMatch(normalisedRole))
        {
            throw new KfmException("TimelineRoleInvalid", KfmErrorKind.InvalidArgument,
                $"Role '{role}' is not a timeline role: use 1-16 letters, digits, '-' or '_', such as IC, OPS or COMMS.", role);
        }
        RequireText(text, "Event");
        if (text.Contains('\n') || text.Contains('\r'))
        {
            throw new KfmException("TimelineEventMultiline", KfmErrorKind.InvalidArgument,
                "A timeline event is one line; add several entries for several events.", incidentId);
        }
        _safety.EnsurePolicySafe(text, "Event");

        RequireOpen(incidentId);
        var entry = new TimelineEntry((at ?? _clock.UtcNow).ToUniversalTime(), normalisedRole, text.Trim(), actor);
        AppendStream(IncidentStream(incidentId), new[]
        {
            new JsonObject
            {
                ["v"] = FormatVersion,
                ["type"] = TimelineType,
                ["incident_id"] = incidentId,
                ["at"] = Rfc3339(entry.At),
                ["actor"] = actor,
                ["role"] = entry.Role,
                ["event"] = entry.Event,
            },
        }, null);
        return entry;
    }

    /// <summary>Records one phase of a rollback run in the incident's journal (the incident must be open).</summary>
    public void RecordRun(string incidentId, RunRecord record)
    {
        RequireOpen(incidentId);
        AppendStream(IncidentStream(incidentId), new[] { record.ToJson(incidentId) }, null);
    }

    /// <summary>
    /// Appends a record of another step's <paramref name="type"/> (e.g. comms.post) to an open incident's
    /// stream; <see cref="ReadRecords"/> reads them back. The timeline and the runs ignore them.
    /// </summary>
    public void AppendRecord(string incidentId, string type, JsonObject fields)
    {
        if (type is OpenedType or TimelineType or RunRecord.RecordType || !type.Contains('.'))
        {
            throw new ArgumentException($"'{type}' is not a step record type (use step.name, e.g. comms.post).", nameof(type));
        }
        RequireOpen(incidentId);
        var record = new JsonObject { ["v"] = FormatVersion, ["type"] = type, ["incident_id"] = incidentId, ["at"] = Rfc3339(_clock.UtcNow) };
        foreach (var (key, value) in fields)
        {
            record[key] = value?.DeepClone();
        }
        AppendStream(IncidentStream(incidentId), new[] { record }, null);
    }

    /// <summary>An incident's records of <paramref name="type"/> (see <see cref="AppendRecord"/>), oldest first.</summary>
    public IReadOnlyList<JsonObject> ReadRecords(string incidentId, string type)
    {
        ValidateIncidentId(incidentId);
        return ReadStream(IncidentStream(incidentId)).Records.Where(r => (string?)r["type"] == type).ToList();
    }

    /// <summary>Appends records to an environment's stream (quarantined digests, rollbacks made), whatever the incident.</summary>
    public void AppendEnvironment(string environment, IReadOnlyList<JsonObject> records) =>
        AppendStream(EnvironmentStream(environment), records, null);

    /// <summary>An environment's records, oldest first.</summary>
    public IReadOnlyList<JsonObject> ReadEnvironment(string environment) => ReadStream(EnvironmentStream(environment)).Records;

    public Incident Get(string incidentId)
    {
        ValidateIncidentId(incidentId);
        string stream = IncidentStream(incidentId);
        return Fold(ReadStream(stream).Records, stream) ?? throw IncidentNotFound(incidentId);
    }

    /// <summary>Every incident in the journal, oldest first, each with its whole timeline.</summary>
    public IReadOnlyList<Incident> ReadAll()
    {
        ImportLegacy();
        return Translate(() => _backend.List("incident"))
            .Select(stream => Fold(ReadStream(stream).Records, stream))
            .OfType<Incident>()
            .OrderBy(i => i.OpenedAt)
            .ThenBy(i => i.IncidentId, StringComparer.OrdinalIgnoreCase)
            .ToList();
    }

    private void RequireOpen(string incidentId)
    {
        string stream = IncidentStream(incidentId);
        if (!ReadStream(stream).Records.Any(r => (string?)r["type"] == OpenedType))
        {
            throw IncidentNotFound(incidentId);
        }
    }

    private Incident? Fold(IReadOnlyList<JsonObject> records, string stream)
    {
        JsonObject? opened = null;
        var timeline = new List<TimelineEntry>();
        var runs = new List<RunRecord>();
        foreach (JsonObject record in records)
        {
            string type = (string?)record["type"] ?? string.Empty;
            if (type == OpenedType)
            {
                opened ??= record;
            }
            else if (type == TimelineType)
            {
                timeline.Add(new TimelineEntry(
                    DateTimeOffset.Parse((string)record["at"]!, System.Globalization.CultureInfo.InvariantCulture),
                    (string?)record["role"] ?? "OPS",
                    (string?)record["event"] ?? string.Empty,
                    (string?)record["actor"] ?? string.Empty));
            }
            else if (type == RunRecord.RecordType)
            {
                runs.Add(RunRecord.FromJson(record));
            }
        }
        return opened is null ? null : ToIncident(opened, timeline, runs, _backend.Locate(stream));
    }

    private Incident ToIncident(JsonObject record, List<TimelineEntry> timeline, List<RunRecord> runs, string location)
    {
        static DateTimeOffset Time(JsonNode? node) =>
            DateTimeOffset.Parse((string)node!, System.Globalization.CultureInfo.InvariantCulture).ToUniversalTime();

        var endpoints = (record["impacted_endpoints"] as JsonArray ?? new JsonArray())
            .OfType<JsonObject>()
            .Select(e => new ImpactedEndpoint((string)e["path"]!,
                string.Equals((string?)e["exposure"], "restricted", StringComparison.OrdinalIgnoreCase) ? EndpointExposure.Restricted : EndpointExposure.Public))
            .ToList();

        return new Incident
        {
            IncidentId = (string)record["incident_id"]!,
            Commander = (string)record["commander"]!,
            Reason = (string)record["reason"]!,
            Environment = (string?)record["environment"],
            StartedAt = Time(record["started_at"]),
            OpenedAt = Time(record["at"]),
            OpenedBy = (string?)record["actor"] ?? string.Empty,
            ImpactedEndpoints = endpoints,
            Timeline = timeline,
            Runs = runs.GroupBy(r => r.RunId, StringComparer.Ordinal)
                .Select(g => new IncidentRun { RunId = g.Key, Environment = g.First().Environment, Method = g.Last().Method, Records = g.ToList() })
                .ToList(),
            JournalPath = JournalPath,
            RecordPath = location,
        };
    }

    private JournalRead ReadStream(string stream)
    {
        ImportLegacy();
        JournalRead read = Translate(() => _backend.Read(stream));
        Notify(read.Notes);
        return read;
    }

    private void AppendStream(string stream, IReadOnlyList<JsonObject> records, string? expectedVersion)
    {
        ImportLegacy();
        JournalAppend appended = Translate(() => _backend.Append(stream, records, expectedVersion));
        Notify(appended.Notes);
    }

    private void Notify(IReadOnlyList<string> notes)
    {
        foreach (string note in notes)
        {
            if (Warn is not null && _warned.Add(WarningKey(note)))
            {
                Warn(note);
            }
        }
    }

    /// <summary>
    /// What a note is about, so one fragment is warned about once: the read that finds it and the append
    /// that sets it aside say the same thing in two tenses.
    /// </summary>
    public static string WarningKey(string note) => Regex.Replace(note, @"\. (It is skipped|It is set aside).*$", string.Empty, RegexOptions.Singleline);

    /// <summary>The backend's errors in the journal's words and ids.</summary>
    private T Translate<T>(Func<T> work)
    {
        try
        {
            return work();
        }
        catch (JournalCorruptException ex)
        {
            throw new KfmException("IncidentJournalCorrupt", KfmErrorKind.InvalidData,
                $"Line {ex.RecordNumber} of incident journal '{ex.Location}' is not a JSON object. The journal is append-only: restore it from backup rather than editing it.", ex.Location, ex);
        }
        catch (JournalWriteException ex)
        {
            throw new KfmException("IncidentJournalNotWritable", KfmErrorKind.WriteError,
                $"Cannot write incident journal '{ex.Location}': {ex.InnerException?.Message} Point incidents.journal in the configuration (or -JournalPath) at a writable location.",
                ex.Location, ex);
        }
    }

    /// <summary>
    /// Imports what the single-file journal holds beyond what was imported already, once per instance:
    /// each record to its incident's stream (tagged with its offset, so an import cut short by a crash
    /// and done again adds nothing twice), then the new imported length.
    /// </summary>
    private void ImportLegacy()
    {
        if (_legacyChecked || _legacyPath is null)
        {
            return;
        }
        _legacyChecked = true;
        if (!File.Exists(_legacyPath))
        {
            return;
        }
        if (new FileInfo(_legacyPath).Length <= ImportedLength())
        {
            return;
        }
        using FileLock importLock = FileLock.Acquire(_legacyPath);
        long done = ImportedLength();
        NdjsonContent content = Translate(() => NdjsonFileJournal.ReadFile(_legacyPath, done));
        if (content.Torn)
        {
            Notify(new[] { $"The last record of '{_legacyPath}' was cut off mid-write ({content.TornLength} bytes at offset {content.TornOffset}: a crash or a full disk). It is skipped; the incidents before it are read as usual." });
        }
        if (content.CompleteLength <= done)
        {
            return;
        }
        var batches = new List<(string, IReadOnlyList<JsonObject>)>();
        foreach (var group in content.Records
            .Where(r => (string?)r.Record["incident_id"] is { } id && s_incidentId.IsMatch(id))
            .GroupBy(r => ((string)r.Record["incident_id"]!).ToLowerInvariant()))
        {
            string stream = JournalStreams.Of("incident", group.Key);
            long imported = Translate(() => _backend.Read(stream)).Records
                .Select(r => r[LegacyOffsetKey] is JsonValue v && v.TryGetValue(out long o) ? o : -1).DefaultIfEmpty(-1).Max();
            var fresh = group.Where(r => r.Offset > imported).Select(r =>
            {
                var copy = (JsonObject)r.Record.DeepClone();
                copy[LegacyOffsetKey] = r.Offset;
                return copy;
            }).ToList();
            if (fresh.Count > 0)
            {
                batches.Add((stream, fresh));
            }
        }
        // The single file stays in place, so a copy lost to a power cut can be imported again (the
        // offsets keep it from doubling): the copies are left to the OS to flush, the marker is not.
        Translate(() => { ((NdjsonFileJournal)_backend).AppendMany(batches); return true; });
        Translate(() => _backend.Append(s_importStream, new[]
        {
            new JsonObject
            {
                ["v"] = FormatVersion,
                ["type"] = LegacyImportedType,
                ["source"] = _legacyPath,
                ["length"] = content.CompleteLength,
                ["records"] = content.Records.Count,
                ["at"] = Rfc3339(_clock.UtcNow),
            },
        }));
    }

    private long ImportedLength() => Translate(() => _backend.Read(s_importStream)).Records
        .Select(r => r["length"] is JsonValue v && v.TryGetValue(out long n) ? n : 0).DefaultIfEmpty(0).Max();

    private static string IncidentStream(string incidentId) => JournalStreams.Of("incident", incidentId.ToLowerInvariant());

    private static string EnvironmentStream(string environment)
    {
        try
        {
            return JournalStreams.Of("environment", environment);
        }
        catch (ArgumentException)
        {
            throw new KfmException("EnvironmentNameInvalid", KfmErrorKind.InvalidArgument,
                $"Environment name '{environment}' cannot name a journal stream: use letters, digits, '.', '_' or '-'.", environment);
        }
    }

    internal static void ValidateIncidentId(string incidentId)
    {
        if (string.IsNullOrWhiteSpace(incidentId) || !s_incidentId.IsMatch(incidentId))
        {
            throw new KfmException("IncidentIdInvalid", KfmErrorKind.InvalidArgument,
                $"Incident id '{incidentId}' is not valid: use 1-64 letters, digits, '.', '_' or '-', such as INC-1042 or inc-2026-05-12-001.", incidentId);
        }
    }

    private static void RequireText(string? value, string name)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            throw new KfmException($"Incident{name}Missing", KfmErrorKind.InvalidArgument, $"{name} must not be empty.", name);
        }
    }

    private KfmException IncidentNotFound(string incidentId) =>
        new("IncidentNotFound", KfmErrorKind.ObjectNotFound,
            $"No incident '{incidentId}' in journal '{JournalPath}'. Open it with New-KfmIncident, or point -JournalPath / incidents.journal at the journal that holds it.",
            incidentId);

    internal static string Rfc3339(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);
}
