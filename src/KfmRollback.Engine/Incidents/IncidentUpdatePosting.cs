using System.Globalization;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Adapters.Channels;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Configuration.Binding;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Incidents;

/// <summary>Where an update stands on one channel.</summary>
public enum PostOutcome
{
    /// <summary>Posted now; the channel accepted it.</summary>
    Posted,
    /// <summary>Posted by an earlier run (the journal records the channel's acceptance); not sent again.</summary>
    AlreadyPosted,
    /// <summary>Sent and refused, or no answer within the attempts: recorded as not posted; a rerun tries again.</summary>
    NotPosted,
    /// <summary>An earlier run started posting and stopped before the answer was recorded: not sent again unless -Force.</summary>
    Unconfirmed,
}

/// <summary>
/// One channel's part of an incident update: what happened there, with the channel's answer (never its
/// URL or key). <see cref="Detail"/> is the API's error token or an engine error id; <see cref="Message"/>
/// says what to fix when the configuration kept the update from being sent.
/// </summary>
public sealed record IncidentUpdatePost(string IncidentId, IncidentStage Stage, string Channel, ChannelKind Kind, PostOutcome Outcome,
    int? StatusCode, int Attempts, DateTimeOffset At, string? Detail, string? Message = null)
{
    /// <summary>The channel's answer in a few words: "HTTP 200", "HTTP 404 channel_not_found", "timeout".</summary>
    public string Answer => StatusCode is { } code ? $"HTTP {code}{(Detail is { } d ? " " + d : "")}" : Detail ?? "no answer";
}

/// <summary>What a rerun would do on one channel, decided from the incident's journal before anything is sent.</summary>
public sealed record ChannelPostPlan(string Channel, ChannelKind Kind, PostOutcome? Recorded, IncidentUpdatePost? Earlier)
{
    /// <summary>True when the update still has to be sent there (never posted, or refused last time).</summary>
    public bool ToSend => Recorded is null or PostOutcome.NotPosted;
}

/// <summary>
/// Runbook "Communications": sends the policy-safe update (IncidentUpdates' fixed wording, never free
/// text) to the environment's channels, once per (incident, stage, channel). Before each post a
/// <c>comms.post</c> record says it is being sent and after it another records the answer, so a rerun
/// (Azure Automation restarts jobs from the top) finds what was posted and sends nothing twice; a post
/// cut off between the two is reported Unconfirmed, not repeated blindly. Each answer goes on the
/// timeline (COMMS) with the channel's name and status, never its URL or key. A Statuspage incident
/// created once is updated by later stages.
/// </summary>
public sealed class IncidentUpdatePosting
{
    public const string RecordType = "comms.post";
    private readonly IncidentJournal _journal;
    private readonly IReadOnlyList<IUpdateChannel> _channels;
    private readonly ITextSafety _safety;
    private readonly IClock _clock;

    public IncidentUpdatePosting(IncidentJournal journal, IReadOnlyList<IUpdateChannel> channels, ITextSafety safety, IClock? clock = null)
    {
        _journal = journal;
        _channels = channels;
        _safety = safety;
        _clock = clock ?? SystemClock.Instance;
    }

    /// <summary>What the journal says of each channel for this update: posted, unconfirmed, or still to send.</summary>
    public IReadOnlyList<ChannelPostPlan> Plan(Incident incident, IncidentUpdate update)
    {
        IReadOnlyList<JsonObject> records = _journal.ReadRecords(incident.IncidentId, RecordType);
        return _channels.Select(channel =>
        {
            var mine = records.Where(r => Is(r, channel.Name, update.Stage)).ToList();
            JsonObject? delivered = mine.LastOrDefault(r => (string?)r["phase"] == "answered" && (bool?)r["delivered"] == true);
            if (delivered is not null)
            {
                return new ChannelPostPlan(channel.Name, channel.Kind, PostOutcome.AlreadyPosted, ToPost(incident.IncidentId, update.Stage, channel, PostOutcome.AlreadyPosted, delivered));
            }
            JsonObject? last = mine.LastOrDefault();
            return last is null ? new ChannelPostPlan(channel.Name, channel.Kind, null, null)
                : (string?)last["phase"] == "sending"
                    ? new ChannelPostPlan(channel.Name, channel.Kind, PostOutcome.Unconfirmed, ToPost(incident.IncidentId, update.Stage, channel, PostOutcome.Unconfirmed, last))
                    : new ChannelPostPlan(channel.Name, channel.Kind, PostOutcome.NotPosted, ToPost(incident.IncidentId, update.Stage, channel, PostOutcome.NotPosted, last));
        }).ToList();
    }

    /// <summary>
    /// Posts <paramref name="update"/> to the channels named in <paramref name="send"/> (those the plan
    /// says to send, plus unconfirmed ones the caller chose to send again), in configured order. A channel
    /// that fails is recorded as not posted and the others are still posted.
    /// </summary>
    public async Task<IReadOnlyList<IncidentUpdatePost>> PostAsync(Incident incident, IncidentUpdate update, IReadOnlySet<string> send, string actor, CancellationToken cancellationToken)
    {
        // The text is the template's by construction; checking again costs nothing and guards the boundary.
        _safety.EnsurePolicySafe(update.Text, "incident update");
        var results = new List<IncidentUpdatePost>();
        foreach (IUpdateChannel channel in _channels.Where(c => send.Contains(c.Name)))
        {
            cancellationToken.ThrowIfCancellationRequested();
            IReadOnlyList<JsonObject> records = _journal.ReadRecords(incident.IncidentId, RecordType);
            string? thread = records.LastOrDefault(r => (string?)r["channel"] == channel.Name && (string?)r["phase"] == "answered"
                && (bool?)r["delivered"] == true && r["thread_id"] is not null)?["thread_id"]?.GetValue<string>();
            var message = new ChannelMessage(Title(update.Stage), update.Text, Status(update.Stage), update.At, Details(update), thread);

            _journal.AppendRecord(incident.IncidentId, RecordType, Record(channel, update.Stage, "sending", actor));
            ChannelAnswer answer;
            string? failure = null;
            try
            {
                answer = await channel.PostAsync(message, cancellationToken).ConfigureAwait(false);
            }
            catch (KfmException e)
            {
                // Configuration to fix (a secret not set): the channel is not posted, the others still are.
                (answer, failure) = (new ChannelAnswer(false, null, 0, e.ErrorId, thread), e.Message);
            }
            JsonObject done = Record(channel, update.Stage, "answered", actor);
            done["delivered"] = answer.Delivered;
            done["status"] = answer.StatusCode;
            done["attempts"] = answer.Attempts;
            done["error"] = answer.Error;
            done["thread_id"] = answer.Delivered ? answer.ThreadId : null;
            _journal.AppendRecord(incident.IncidentId, RecordType, done);

            var post = new IncidentUpdatePost(incident.IncidentId, update.Stage, channel.Name, channel.Kind,
                answer.Delivered ? PostOutcome.Posted : PostOutcome.NotPosted, answer.StatusCode, answer.Attempts, _clock.UtcNow, answer.Error);
            string attempts = answer.Attempts > 1 ? $" after {answer.Attempts} attempts" : "";
            _journal.AppendTimeline(incident.IncidentId, "COMMS", answer.Delivered
                ? $"Incident update ({update.Stage}) posted to {channel.Name} ({ConfigSchema.YamlName(channel.Kind)}): {post.Answer}{attempts}"
                : $"Incident update ({update.Stage}) NOT posted to {channel.Name} ({ConfigSchema.YamlName(channel.Kind)}): {post.Answer}{attempts}", actor);
            results.Add(post with { Message = failure });
        }
        return results;
    }

    /// <summary>The fixed title of every message: the stage in plain words, never an identifier.</summary>
    public static string Title(IncidentStage stage) => stage switch
    {
        IncidentStage.Identified => "KFM API incident: regression identified",
        IncidentStage.RollingBack => "KFM API incident: rolling back",
        IncidentStage.Verifying => "KFM API incident: verifying the rollback",
        IncidentStage.Resolved => "KFM API incident: resolved",
        IncidentStage.FailedClosed => "KFM API incident: endpoints failed closed",
        _ => throw new ArgumentOutOfRangeException(nameof(stage), stage, "unknown stage"),
    };

    /// <summary>The runbook's stages as status pages count them.</summary>
    public static ChannelStatus Status(IncidentStage stage) => stage switch
    {
        IncidentStage.Verifying => ChannelStatus.Monitoring,
        IncidentStage.Resolved => ChannelStatus.Resolved,
        _ => ChannelStatus.Identified,
    };

    private static IReadOnlyDictionary<string, string> Details(IncidentUpdate update)
    {
        var details = new Dictionary<string, string>(StringComparer.Ordinal) { ["stage"] = update.Stage.ToString() };
        if (update.NextUpdateBy is { } by)
        {
            details["next_update_by"] = by.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm'Z'", CultureInfo.InvariantCulture);
        }
        return details;
    }

    private static bool Is(JsonObject record, string channel, IncidentStage stage) =>
        (string?)record["channel"] == channel && (string?)record["stage"] == stage.ToString();

    private static JsonObject Record(IUpdateChannel channel, IncidentStage stage, string phase, string actor) => new()
    {
        ["stage"] = stage.ToString(),
        ["channel"] = channel.Name,
        ["kind"] = ConfigSchema.YamlName(channel.Kind),
        ["phase"] = phase,
        ["actor"] = actor,
    };

    private static IncidentUpdatePost ToPost(string incidentId, IncidentStage stage, IUpdateChannel channel, PostOutcome outcome, JsonObject record) =>
        new(incidentId, stage, channel.Name, channel.Kind, outcome,
            record["status"] is JsonValue s && s.TryGetValue(out int code) ? code : null,
            record["attempts"] is JsonValue a && a.TryGetValue(out int n) ? n : 0,
            DateTimeOffset.Parse((string)record["at"]!, CultureInfo.InvariantCulture),
            (string?)record["error"]);
}
