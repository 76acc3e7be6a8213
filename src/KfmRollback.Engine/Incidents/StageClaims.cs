using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Incidents;

/// <summary>
/// What each incident-update stage claims, and what in the incident's timeline must support it, so an
/// update never tells the public what the timeline contradicts:
/// <list type="table">
/// <item><term>Identified</term><description>"we have paused deployments and are preparing a rollback": this incident holds a freeze, and no rollback was applied yet.</description></item>
/// <item><term>RollingBack</term><description>"we have initiated a rollback": a rollback was applied (a change sent).</description></item>
/// <item><term>Verifying</term><description>"the rollback is complete": a rollout finished, and none failed after it.</description></item>
/// <item><term>Resolved</term><description>"running the last-known-good build, health and safety invariants verified": a finished rollout, then a verification (Test-KfmRollback) with every section A–D passing, and no fail-closed in force.</description></item>
/// <item><term>FailedClosed</term><description>"affected endpoints are temporarily unavailable": a fail-closed in force (Enable-KfmFailClosed, not lifted since).</description></item>
/// </list>
/// </summary>
public static class StageClaims
{
    public const string NotVerified = "IncidentUpdateNotVerified";
    public const string Unsupported = "IncidentUpdateUnsupported";

    private static readonly IncidentStage[] MostAdvancedFirst =
        { IncidentStage.FailedClosed, IncidentStage.Resolved, IncidentStage.Verifying, IncidentStage.RollingBack, IncidentStage.Identified };

    /// <summary>Why the timeline does not support <paramref name="stage"/>'s claim, or null when it does.</summary>
    public static string? WhyNot(IncidentStage stage, TimelineFacts facts) => stage switch
    {
        IncidentStage.Identified => facts.StillFrozen.Count == 0
            ? "it says deployments are paused, and this incident holds no freeze (Start-KfmFreeze records one)"
            : facts.FirstRollbackApplied is { } applied ? $"it says a rollback is being prepared, and one was applied at {Time(applied)}" : null,
        IncidentStage.RollingBack => facts.FirstRollbackApplied is null
            ? "it says a rollback was initiated, and the timeline records none applied (Invoke-KfmRollback records it)"
            : null,
        IncidentStage.Verifying => RolloutProblem(facts),
        IncidentStage.Resolved => RolloutProblem(facts) ?? VerificationProblem(facts)
            ?? (facts.FailedClosed is { } closed ? $"it says the API serves, and it failed closed at {Time(closed)} (Disable-KfmFailClosed lifts it; verify again after)" : null),
        IncidentStage.FailedClosed => facts.FailedClosed is null
            ? "it says affected endpoints are unavailable, and no fail-closed is in force (Enable-KfmFailClosed records one)"
            : null,
        _ => throw new ArgumentOutOfRangeException(nameof(stage), stage, "unknown stage"),
    };

    /// <summary>The most advanced stage the timeline supports, or null when it supports none yet.</summary>
    public static IncidentStage? Fitting(TimelineFacts facts) =>
        MostAdvancedFirst.Cast<IncidentStage?>().FirstOrDefault(s => WhyNot(s!.Value, facts) is null);

    /// <summary>Refuses an update whose claim the timeline does not support, naming why and the stage that fits.</summary>
    public static void Require(IncidentStage stage, Incident incident)
    {
        var facts = TimelineFacts.Read(incident.Timeline);
        if (WhyNot(stage, facts) is not { } why)
        {
            return;
        }
        IncidentStage? fits = Fitting(facts);
        string offer = fits is { } f
            ? $" The timeline supports -Stage {f}{(f == IncidentStage.Verifying && stage == IncidentStage.Resolved ? "; post Resolved once Test-KfmRollback passes" : "")}."
            : " The timeline supports no update yet: freeze deploys first (Start-KfmFreeze).";
        bool verification = stage == IncidentStage.Resolved && RolloutProblem(facts) is null && VerificationProblem(facts) is not null;
        throw new KfmException(verification ? NotVerified : Unsupported, KfmErrorKind.InvalidOperation,
            $"Incident {incident.IncidentId}: the {stage} update would not be true: {why}.{offer}", stage);
    }

    private static string? RolloutProblem(TimelineFacts facts)
    {
        if (facts.RollbackFailedSinceCompleted is { } failed)
        {
            return $"it says the rollback is complete, and the rollout failed at {Time(failed)}";
        }
        return facts.LastRollbackCompleted is null
            ? "it says the rollback is complete, and the timeline records no finished rollout (Invoke-KfmRollback -Wait or Wait-KfmRollback records it)"
            : null;
    }

    private static string? VerificationProblem(TimelineFacts facts)
    {
        RecordedVerification? verified = facts.LastVerification;
        if (verified is null || (facts.LastRollbackCompleted is { } done && verified.Entry.At < done.At))
        {
            return "it says health and safety invariants have been verified, and no verification was recorded after the rollout finished (Test-KfmRollback records one)";
        }
        if (!verified.AllPassed)
        {
            string sections = string.Join(", ", "ABCD".Select(s => $"{s} {verified.Section(s)}"));
            string checks = verified.NotPassing.Count > 0 ? $"; not passing: {string.Join(", ", verified.NotPassing)}" : "";
            return $"it says health and safety invariants have been verified, and the latest verification ({Time(verified.Entry)}) did not pass ({sections}{checks})";
        }
        return null;
    }

    private static string Time(TimelineEntry entry) => $"{entry.At.UtcDateTime:HH:mm} UTC";
}
