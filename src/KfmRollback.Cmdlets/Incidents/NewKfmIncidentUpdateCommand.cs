using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Adapters.Channels;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Incidents;

namespace KfmRollback.Cmdlets.Incidents;

/// <summary>
/// Writes a policy-safe incident update from the runbook's template and records in the timeline
/// that it was posted. The text is fixed wording plus stage, impact and times: nothing an operator
/// types, so nothing restricted, reaches it; and the stage's claim must be one the incident's
/// timeline supports (StageClaims), so no update says what the timeline contradicts. With -Post it
/// is sent to the environment's comms channels (IncidentUpdatePosting), once per channel and stage.
/// </summary>
[Cmdlet(VerbsCommon.New, "KfmIncidentUpdate", SupportsShouldProcess = true)]
[OutputType(typeof(IncidentUpdate), typeof(IncidentUpdatePost))]
public sealed class NewKfmIncidentUpdateCommand : KfmConfiguredCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Id")]
    public string IncidentId { get; set; } = string.Empty;

    [Parameter(Mandatory = true, Position = 1)]
    public IncidentStageName Stage { get; set; }

    [Parameter]
    public ImpactAreaName[] Impact { get; set; } = Array.Empty<ImpactAreaName>();

    [Parameter]
    [DurationTransformation]
    public TimeSpan? NextUpdateIn { get; set; }

    /// <summary>Compose the update without recording it in the timeline (a draft).</summary>
    [Parameter]
    public SwitchParameter NoRecord { get; set; }

    /// <summary>Send the update to the environment's comms channels; a channel that has this stage's update already gets nothing.</summary>
    [Parameter]
    public SwitchParameter Post { get; set; }

    /// <summary>With -Post: send again where an earlier post was cut off before its answer was recorded (check the channel first).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void ProcessRecordCore()
    {
        if (Post && NoRecord)
        {
            throw new KfmException("IncidentUpdatePostNeedsRecord", KfmErrorKind.InvalidArgument,
                "-Post records every post in the incident's timeline, and -NoRecord asks for a draft: leave out -NoRecord to post, or -Post to draft.", "NoRecord");
        }
        IncidentJournal journal = OpenJournal();
        Incident incident = journal.Get(IncidentId);   // an update for an incident nobody opened is a typo
        // The stage's claim must be what the timeline records (a Resolved update after a failed verification is refused).
        IncidentUpdate update = IncidentUpdates.ComposeFor(incident, Stage.ToEngine(), Impact.ToEngine(), NextUpdateIn, DateTimeOffset.UtcNow);
        if (Post)
        {
            PostToChannels(journal, incident, update);
            return;
        }
        if (!NoRecord && ShouldProcess($"incident {incident.IncidentId}", $"Record incident update ({update.Stage})"))
        {
            journal.AppendTimeline(incident.IncidentId, "COMMS", update.TimelineEvent, Actor.Current(), update.At);
        }
        WriteObject(update);
    }

    private void PostToChannels(IncidentJournal journal, Incident incident, IncidentUpdate update)
    {
        // The incident's own environment unless -Environment names one.
        EnvironmentConfig environment = Environment is { Length: > 0 } || incident.Environment is null
            ? ResolveEnvironment(required: true)!
            : LoadConfig(required: true)!.GetEnvironment(incident.Environment);
        CommsConfig comms = environment.Comms ?? throw new ConfigSectionMissingException(environment.Name, "comms",
            "the channels the update is posted to (Slack, Teams, PagerDuty, Statuspage)", MyInvocation.MyCommand.Name);
        var channels = comms.Channels.Select(c => UpdateChannels.Open(comms, c)).ToList();
        try
        {
            var posting = new IncidentUpdatePosting(journal, channels, EngineContext.TextSafety);
            var send = new HashSet<string>(StringComparer.Ordinal);
            foreach (ChannelPostPlan plan in posting.Plan(incident, update))
            {
                string where = $"channel {plan.Channel} ({plan.Kind.ToString().ToLowerInvariant()})";
                if (plan.Recorded == PostOutcome.AlreadyPosted)
                {
                    WriteVerbose($"The {update.Stage} update was posted to {where} at {plan.Earlier!.At.UtcDateTime:HH:mm} UTC ({plan.Earlier.Answer}); not posting it again.");
                    WriteObject(plan.Earlier);
                    continue;
                }
                if (plan.Recorded == PostOutcome.Unconfirmed && !Force)
                {
                    WriteObject(plan.Earlier);
                    WriteError(ErrorRecords.From(new KfmException("IncidentUpdatePostUnconfirmed", KfmErrorKind.Ambiguous,
                        $"Incident {incident.IncidentId}: a post of the {update.Stage} update to {where} started at {plan.Earlier!.At.UtcDateTime:HH:mm} UTC and stopped before its answer was recorded, so it may or may not have arrived. Check {plan.Channel}; to post it there again, rerun with -Force.",
                        plan.Channel)));
                    continue;
                }
                if (ShouldProcess($"{where} of incident {incident.IncidentId}", $"Post the {update.Stage} update: {update.Text}"))
                {
                    send.Add(plan.Channel);
                }
            }
            if (send.Count == 0)
            {
                return;
            }
            string actor = Actor.Current();
            IReadOnlyList<IncidentUpdatePost> posts = RunAsync(token => posting.PostAsync(incident, update, send, actor, token));
            if (posts.Any(p => p.Outcome == PostOutcome.Posted))
            {
                journal.AppendTimeline(incident.IncidentId, "COMMS", update.TimelineEvent, actor, update.At);
            }
            foreach (IncidentUpdatePost post in posts)
            {
                WriteObject(post);
                if (post.Outcome == PostOutcome.NotPosted)
                {
                    string why = post.Message is { } message
                        ? $"the {update.Stage} update was not posted. {message}"
                        : $"the {update.Stage} update was not posted to channel {post.Channel} ({post.Kind.ToString().ToLowerInvariant()}): {post.Answer}{(post.Attempts > 1 ? $" after {post.Attempts} attempts" : "")}.";
                    WriteError(ErrorRecords.From(new KfmException("IncidentUpdateNotPosted", KfmErrorKind.ConnectionError,
                        $"Incident {incident.IncidentId}: {why} " +
                        "It is recorded as not posted; rerun the same command to try that channel again (channels that have it are not posted twice).", post.Channel)));
                }
            }
        }
        finally
        {
            foreach (IUpdateChannel channel in channels) channel.Dispose();
        }
    }
}
