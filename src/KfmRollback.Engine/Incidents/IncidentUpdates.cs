using System.Globalization;

namespace KfmRollback.Engine.Incidents;

/// <summary>Where the rollback stands, as an incident update tells it.</summary>
public enum IncidentStage
{
    /// <summary>Regression identified; deploys being frozen.</summary>
    Identified,
    /// <summary>Rollback to the last-known-good build under way (the runbook's template).</summary>
    RollingBack,
    /// <summary>Rollback done; health and safety invariants being verified.</summary>
    Verifying,
    /// <summary>Verified on the last-known-good build.</summary>
    Resolved,
    /// <summary>Rollback did not restore safe operation; endpoints fail closed; escalated.</summary>
    FailedClosed,
}

/// <summary>What the regression affects, in the words an update may use.</summary>
public enum ImpactArea
{
    Availability,
    PolicyEnforcement,
    Latency,
    Correctness,
}

/// <summary>One policy-safe incident update, ready to post.</summary>
public sealed record IncidentUpdate(string IncidentId, IncidentStage Stage, DateTimeOffset At, DateTimeOffset? NextUpdateBy, string Text)
{
    /// <summary>The COMMS timeline line recording that this update was posted (the text itself stays out of the journal).</summary>
    public string TimelineEvent => $"Incident update posted ({Stage}){(NextUpdateBy is { } by ? $"; next update by {by:HH:mm} UTC" : string.Empty)}";

    public override string ToString() => Text;
}

/// <summary>
/// Incident updates built from the runbook's policy-safe template ("We identified a regression in
/// the KFM API deployment affecting availability and/or policy enforcement…"). Safe by
/// construction: fixed wording, the stage, the impact areas and times only; no free text, no
/// endpoint, dataset, identifier, version or digest ever enters an update, so nothing restricted can.
/// </summary>
public static class IncidentUpdates
{
    /// <summary>
    /// The update for <paramref name="incident"/> at <paramref name="stage"/>, refused when the
    /// incident's timeline does not support what the stage claims (<see cref="StageClaims"/>).
    /// </summary>
    public static IncidentUpdate ComposeFor(Incident incident, IncidentStage stage, IReadOnlyCollection<ImpactArea> impact, TimeSpan? nextUpdateIn, DateTimeOffset now)
    {
        // The parameters first (a bad timebox is the caller's to fix whatever the timeline says), then the claim.
        IncidentUpdate update = Compose(incident.IncidentId, stage, impact, nextUpdateIn, now);
        StageClaims.Require(stage, incident);
        return update;
    }

    public static IncidentUpdate Compose(string incidentId, IncidentStage stage, IReadOnlyCollection<ImpactArea> impact, TimeSpan? nextUpdateIn, DateTimeOffset now)
    {
        if (nextUpdateIn is { } wait && (wait < TimeSpan.FromMinutes(1) || wait > TimeSpan.FromHours(24)))
        {
            throw new Core.KfmException("IncidentUpdateTimeboxInvalid", Core.KfmErrorKind.InvalidArgument,
                $"The next update must be promised between 1 minute and 24 hours from now (got {Configuration.Binding.DurationParser.Format(wait)}): give -NextUpdateIn as e.g. 30m or 1h.", nextUpdateIn);
        }
        // A closed incident promises no next update; every open stage does (30 minutes unless told).
        TimeSpan? timebox = stage == IncidentStage.Resolved ? null : nextUpdateIn ?? TimeSpan.FromMinutes(30);
        DateTimeOffset at = now.ToUniversalTime();
        DateTimeOffset? nextBy = timebox is { } t ? at + t : null;

        string affecting = Affecting(impact);
        string body = stage switch
        {
            IncidentStage.Identified =>
                $"We identified a regression in the KFM API deployment affecting {affecting}. We have paused deployments and are preparing a rollback to the last-known-good build.",
            IncidentStage.RollingBack =>
                $"We identified a regression in the KFM API deployment affecting {affecting}. We have initiated a rollback to the last-known-good build and are verifying service health and safety invariants.",
            IncidentStage.Verifying =>
                $"The rollback of the KFM API to the last-known-good build is complete. We are verifying service health and safety invariants.",
            IncidentStage.Resolved =>
                $"The KFM API is running the last-known-good build, and service health and safety invariants have been verified. Follow-up work to prevent a recurrence is tracked in the incident.",
            IncidentStage.FailedClosed =>
                $"The rollback did not restore safe operation. As a precaution, affected KFM API endpoints are temporarily unavailable while the incident is escalated; no data is served outside policy.",
            _ => throw new ArgumentOutOfRangeException(nameof(stage), stage, "unknown stage"),
        };
        DateTimeOffset chicago = IncidentTime.ToChicago(at);
        // Chicago's date is named only when it is not UTC's, so an evening there is not misread as the next day.
        string chicagoText = chicago.Date == at.UtcDateTime.Date ? $"{chicago:HH:mm}" : $"{chicago:yyyy-MM-dd HH:mm}";
        string header = $"Update ({at:yyyy-MM-dd HH:mm} UTC / {chicagoText} {IncidentTime.ChicagoAbbreviation(at)}):";
        string next = nextBy is { } by ? $" Next update in: {Describe(timebox!.Value)} (by {by:HH:mm} UTC)." : string.Empty;
        return new IncidentUpdate(incidentId, stage, at, nextBy, $"{header} {body}{next}");
    }

    /// <summary>"availability and/or policy enforcement" when nobody said, as the runbook's template puts it.</summary>
    private static string Affecting(IReadOnlyCollection<ImpactArea> impact)
    {
        if (impact.Count == 0) { return "availability and/or policy enforcement"; }
        string[] words = impact.Distinct().Order().Select(area => area switch
        {
            ImpactArea.Availability => "availability",
            ImpactArea.PolicyEnforcement => "policy enforcement",
            ImpactArea.Latency => "response times",
            ImpactArea.Correctness => "the correctness of responses",
            _ => throw new ArgumentOutOfRangeException(nameof(impact), area, "unknown impact area"),
        }).ToArray();
        return words.Length == 1 ? words[0] : string.Join(", ", words[..^1]) + " and " + words[^1];
    }

    /// <summary>Whole hours as hours ("1 hour", "2 hours"), anything else in minutes ("45 minutes", "90 minutes").</summary>
    private static string Describe(TimeSpan span) =>
        span.TotalMinutes >= 60 && span.TotalMinutes % 60 == 0
            ? $"{(span.TotalMinutes / 60).ToString("0", CultureInfo.InvariantCulture)} hour{(span.TotalMinutes == 60 ? "" : "s")}"
            : $"{span.TotalMinutes.ToString("0", CultureInfo.InvariantCulture)} minutes";
}
