using KfmRollback.Engine.Incidents;

namespace KfmRollback.Engine.Rollback.Runs;

/// <summary>
/// Which run and which attempt of it a request is: the run is the (incident, environment, method)
/// rollback; an attempt is one invocation (a rerun, a restarted Azure Automation job). The lease
/// holder identity names both, so the same run's rerun can take its own lease over at once.
/// </summary>
/// <param name="Recorded">True when the incident is in the journal, so the run's phases are recorded there.</param>
public sealed record RunContext(string RunId, string Attempt, string? IncidentId, bool Recorded = true)
{
    /// <summary>A run for a request without an incident: nothing to resume, an attempt of its own.</summary>
    public static RunContext Anonymous() => new("(no incident)", NewAttempt(), null, Recorded: false);

    public static string NewAttempt() => Guid.NewGuid().ToString("N")[..8];

    /// <summary>The run id of (incident, environment, method), the <paramref name="number"/>th run of it.</summary>
    public static string Id(string incidentId, string environment, RollbackMethod method, int number) =>
        $"{incidentId}/{environment}/{method.ToString().ToLowerInvariant()}#{number}";
}

/// <summary>Where a recorded run stands, as the next attempt must treat it.</summary>
public enum RunStage
{
    /// <summary>No run, or one that stopped before any change could have gone out: plan afresh.</summary>
    Fresh,
    /// <summary>"applying" was recorded and nothing after it: the change may or may not have gone out.</summary>
    InFlight,
    /// <summary>The change went out (applied, interrupted, an await that did not end well, a lost lock): await it, never apply it again.</summary>
    Applied,
    /// <summary>Applied and awaited successfully (or verified): a rerun changes nothing.</summary>
    Finished,
}

/// <summary>What a new attempt knows of its run from the journal.</summary>
public sealed record RunResume(IncidentRun Run, RunStage Stage)
{
    /// <summary>The target the run chose (a digest, or a commit for a GitOps revert).</summary>
    public string? TargetRef => Run.TargetRef;
    public string? CurrentRef => Run.CurrentRef;
    /// <summary>What Await follows: the ReplicaSet, the Helm release revision, the Git commit.</summary>
    public string? RolloutTarget => Run.Records.LastOrDefault(r => r.RolloutTarget is not null)?.RolloutTarget;

    public static RunStage StageOf(IncidentRun run)
    {
        RunRecord? progress = run.Progress;
        if (progress is null)
        {
            return RunStage.Fresh;
        }
        switch (progress.Phase)
        {
            case RunPhases.Verified:
                return RunStage.Finished;
            case RunPhases.Awaited:
                return progress.Outcome == nameof(RollbackOutcome.Succeeded) ? RunStage.Finished : RunStage.Applied;
            case RunPhases.Applied:
            case RunPhases.Interrupted:
                return RunStage.Applied;
            case RunPhases.Applying:
                return RunStage.InFlight;
            case RunPhases.Failed:
            case RunPhases.LockLost:
                // After the change went out, a failure or a lost lock leaves it applied; before it, nothing happened.
                return run.Applied is not null ? RunStage.Applied : run.Applying is not null && progress.Changes.Count > 0 ? RunStage.InFlight : RunStage.Fresh;
            default:
                return run.Applied is not null ? RunStage.Applied : RunStage.Fresh;
        }
    }
}
