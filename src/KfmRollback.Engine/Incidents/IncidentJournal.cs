using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
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
/// The append-only NDJSON journal of incidents and their timelines. Appending (never rewriting)
/// means a job that Azure Automation restarts from the top finds its incident again, and an
/// operator can read the file with any tool while a rollback runs.
/// </summary>
public sealed class IncidentJournal
{
    private const int FormatVersion = 1;
    private const string OpenedType = "incident.opened";
    private const string TimelineType = "timeline";
    private static readonly Regex s_incidentId = new("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", RegexOptions.CultureInvariant);
    private static readonly Regex s_role = new("^[A-Z][A-Z0-9_-]{0,15}$", RegexOptions.CultureInvariant);

    private readonly IClock _clock;
    private readonly ITextSafety _safety;

    public IncidentJournal(string path, ITextSafety safety, IClock? clock = null)
    {
        JournalPath = Path.GetFullPath(path);
        _safety = safety;
        _clock = clock ?? SystemClock.Instance;
    }

    public string JournalPath { get; }

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

        using FileLock journalLock = FileLock.Acquire(JournalPath);
        Incident? existing = ReadAll().FirstOrDefault(i => string.Equals(i.IncidentId, request.IncidentId, StringComparison.OrdinalIgnoreCase));
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
        Append(record);
        return new IncidentOpenResult(Get(request.IncidentId), Created: true);
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

        using FileLock journalLock = FileLock.Acquire(JournalPath);
        if (!ReadAll().Any(i => string.Equals(i.IncidentId, incidentId, StringComparison.OrdinalIgnoreCase)))
        {
            throw IncidentNotFound(incidentId);
        }
        var entry = new TimelineEntry((at ?? _clock.UtcNow).ToUniversalTime(), normalisedRole, text.Trim(), actor);
        Append(new JsonObject
        {
            ["v"] = FormatVersion,
            ["type"] = TimelineType,
            ["incident_id"] = incidentId,
            ["at"] = Rfc3339(entry.At),
            ["actor"] = actor,
            ["role"] = entry.Role,
            ["event"] = entry.Event,
        });
        return entry;
    }

    public Incident Get(string incidentId)
    {
        ValidateIncidentId(incidentId);
        return ReadAll().FirstOrDefault(i => string.Equals(i.IncidentId, incidentId, StringComparison.OrdinalIgnoreCase))
            ?? throw IncidentNotFound(incidentId);
    }

    /// <summary>Every incident in the journal, oldest first, each with its whole timeline.</summary>
    public IReadOnlyList<Incident> ReadAll()
    {
        if (!File.Exists(JournalPath))
        {
            return Array.Empty<Incident>();
        }

        var opened = new List<(JsonObject Record, List<TimelineEntry> Timeline)>();
        var byId = new Dictionary<string, List<TimelineEntry>>(StringComparer.OrdinalIgnoreCase);
        int lineNumber = 0;
        foreach (string line in ReadLinesShared())
        {
            lineNumber++;
            if (line.Length == 0)
            {
                continue;
            }
            JsonObject record;
            try
            {
                record = JsonNode.Parse(line) as JsonObject ?? throw new JsonException("not an object");
            }
            catch (JsonException)
            {
                throw new KfmException("IncidentJournalCorrupt", KfmErrorKind.InvalidData,
                    $"Line {lineNumber} of incident journal '{JournalPath}' is not a JSON object. The journal is append-only: restore it from backup rather than editing it.", JournalPath);
            }
            string type = (string?)record["type"] ?? string.Empty;
            string id = (string?)record["incident_id"] ?? string.Empty;
            if (type == OpenedType && !byId.ContainsKey(id))
            {
                var timeline = new List<TimelineEntry>();
                byId[id] = timeline;
                opened.Add((record, timeline));
            }
            else if (type == TimelineType && byId.TryGetValue(id, out List<TimelineEntry>? timeline))
            {
                timeline.Add(new TimelineEntry(
                    DateTimeOffset.Parse((string)record["at"]!, System.Globalization.CultureInfo.InvariantCulture),
                    (string?)record["role"] ?? "OPS",
                    (string?)record["event"] ?? string.Empty,
                    (string?)record["actor"] ?? string.Empty));
            }
        }

        return opened.Select(o => ToIncident(o.Record, o.Timeline)).ToList();
    }

    private Incident ToIncident(JsonObject record, List<TimelineEntry> timeline)
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
            JournalPath = JournalPath,
        };
    }

    private IEnumerable<string> ReadLinesShared()
    {
        using var stream = new FileStream(JournalPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        while (reader.ReadLine() is { } line)
        {
            yield return line;
        }
    }

    private void Append(JsonObject record)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(record.ToJsonString() + "\n");
        try
        {
            string? directory = Path.GetDirectoryName(JournalPath);
            if (!string.IsNullOrEmpty(directory))
            {
                Directory.CreateDirectory(directory);
            }
            using var stream = new FileStream(JournalPath, FileMode.Append, FileAccess.Write, FileShare.Read);
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new KfmException("IncidentJournalNotWritable", KfmErrorKind.WriteError,
                $"Cannot append to incident journal '{JournalPath}': {ex.Message} Point incidents.journal in the configuration (or -JournalPath) at a writable file.",
                JournalPath, ex);
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
