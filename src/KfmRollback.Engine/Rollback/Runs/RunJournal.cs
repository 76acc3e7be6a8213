using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Incidents;
using KfmRollback.Engine.Refs;

namespace KfmRollback.Engine.Rollback.Runs;

/// <summary>
/// The journal side of a rollback run: finds a request's run in its incident's journal, writes each
/// phase (before and after each step, so a crash never loses a change that went out), and records
/// in the environment's stream the digest a rollback moves away from (quarantine) and the one it
/// moves to, before the change is sent. Without an incident there is no run to find, but the
/// environment's records are still written.
/// </summary>
public sealed class RunJournal
{
    private readonly IClock _clock;

    public RunJournal(IncidentJournal journal, LastKnownGoodAuthority? authority = null, IClock? clock = null)
    {
        Journal = journal;
        Authority = authority ?? new LastKnownGoodAuthority(journal);
        _clock = clock ?? SystemClock.Instance;
    }

    public IncidentJournal Journal { get; }
    public LastKnownGoodAuthority Authority { get; }

    /// <summary>The newest run of (incident, environment, method), or null (no incident, not in the journal, no run yet).</summary>
    public IncidentRun? Latest(RollbackRequest request)
    {
        if (string.IsNullOrWhiteSpace(request.IncidentId))
        {
            return null;
        }
        Incident incident;
        try
        {
            incident = Journal.Get(request.IncidentId);
        }
        catch (KfmException ex) when (ex.ErrorId == "IncidentNotFound")
        {
            return null;
        }
        string prefix = RunContext.Id(incident.IncidentId, request.Environment.Name, request.Method, 0)[..^1];
        return incident.Runs.Where(r => r.RunId.StartsWith(prefix, StringComparison.Ordinal)).LastOrDefault();
    }

    /// <summary>True when the request's incident is in the journal, so its run can be recorded.</summary>
    public bool CanRecord(RollbackRequest request)
    {
        if (string.IsNullOrWhiteSpace(request.IncidentId))
        {
            return false;
        }
        try
        {
            Journal.Get(request.IncidentId);
            return true;
        }
        catch (KfmException ex) when (ex.ErrorId == "IncidentNotFound")
        {
            return false;
        }
    }

    /// <summary>Writes one phase record of the run (the incident must be in the journal). Throws when the journal cannot be written.</summary>
    public void Write(RollbackRequest request, RunContext run, string phase, RunRecord? details = null)
    {
        if (!run.Recorded || run.IncidentId is null)
        {
            return;
        }
        RunRecord record = (details ?? Blank(request, run, phase)) with
        {
            RunId = run.RunId,
            Attempt = run.Attempt,
            Environment = request.Environment.Name,
            Method = request.Method.ToString(),
            Phase = phase,
            At = _clock.UtcNow,
            Actor = request.Actor,
        };
        Journal.RecordRun(run.IncidentId, record);
    }

    /// <summary>A record of <paramref name="phase"/> with what a result or plan says.</summary>
    public static RunRecord From(RollbackRequest request, RunContext run, string phase, MechanismPlan? plan, RollbackResult? result, IReadOnlyList<PlannedChange>? changes = null) => new()
    {
        RunId = run.RunId,
        Attempt = run.Attempt,
        Environment = request.Environment.Name,
        Method = request.Method.ToString(),
        Phase = phase,
        Outcome = result?.Outcome.ToString(),
        CurrentRef = result?.CurrentRef ?? plan?.CurrentRef,
        TargetRef = result?.RollbackTargetRef ?? plan?.TargetRef,
        FromRevision = result?.FromRevision ?? plan?.FromRevision,
        ToRevision = result?.ToRevision ?? plan?.ToRevision,
        RolloutTarget = result?.RolloutTarget ?? (plan is null ? null : plan.Decorate(new RollbackResult
        {
            Environment = plan.Environment, Method = plan.Method, Outcome = RollbackOutcome.Planned, StartedAt = plan.PlannedAt,
        }).RolloutTarget),
        Branch = result?.Branch,
        Commit = result?.Commit,
        PullRequestUrl = result?.PullRequestUrl,
        MergeCommit = result?.MergeCommit,
        ReconciledRevision = result?.ReconciledRevision,
        Surfaces = Surfaces.SurfaceNames.ReceiptNames(request.Surfaces),
        Changes = (changes ?? result?.Changes ?? plan?.Changes ?? Array.Empty<PlannedChange>()).Select(Change).ToList(),
        StartedAt = result?.StartedAt ?? plan?.PlannedAt,
        CompletedAt = result?.CompletedAt,
        Detail = result?.Detail ?? plan?.Summary,
        ErrorId = result?.Error?.ErrorId,
    };

    /// <summary>A change as the journal keeps it: what, where, and the sha256 of its exact content (the content itself stays in the result).</summary>
    public static RunChange Change(PlannedChange change) =>
        new(change.Surface, change.Object, change.Action, "sha256:" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(change.Content))).ToLowerInvariant());

    /// <summary>
    /// Checklist A-D ran on a rollback's result (Test-KfmRollback): its run records <c>verified</c>
    /// with the outcome, so a rerun knows the run is finished, and with when the verification started
    /// (the start of the run's "verified" phase). Nothing when the run is not in the journal.
    /// </summary>
    public bool RecordVerified(RollbackResult rollback, bool passed, string detail, string actor, DateTimeOffset? startedAt = null)
    {
        if (string.IsNullOrWhiteSpace(rollback.IncidentId))
        {
            return false;
        }
        IncidentRun? run;
        try
        {
            string prefix = RunContext.Id(rollback.IncidentId, rollback.Environment, rollback.Method, 0)[..^1];
            run = Journal.Get(rollback.IncidentId).Runs.Where(r => r.RunId.StartsWith(prefix, StringComparison.Ordinal)).LastOrDefault();
        }
        catch (KfmException ex) when (ex.ErrorId == "IncidentNotFound")
        {
            return false;
        }
        if (run?.Applied is null)
        {
            return false;
        }
        Journal.RecordRun(rollback.IncidentId, new RunRecord
        {
            RunId = run.RunId,
            Attempt = run.Attempts[^1],
            Environment = rollback.Environment,
            Method = rollback.Method.ToString(),
            Phase = RunPhases.Verified,
            At = _clock.UtcNow,
            Actor = actor,
            Outcome = passed ? "Passed" : "Failed",
            StartedAt = startedAt,
            CurrentRef = rollback.CurrentRef,
            TargetRef = rollback.RollbackTargetRef,
            Detail = detail,
        });
        return true;
    }

    /// <summary>
    /// Before the change: the environment's stream records the digest the rollback moves away from
    /// (quarantined) and the one it moves to, so a crash right after the change still leaves both
    /// known, and a rerun or a new incident never targets the bad build.
    /// </summary>
    public void RecordMove(RollbackRequest request, RunContext run, string from, string to)
    {
        string at = IncidentJournal.Rfc3339(_clock.UtcNow);
        JsonObject Base(string type) => new()
        {
            ["v"] = 1,
            ["type"] = type,
            ["environment"] = request.Environment.Name,
            ["incident_id"] = run.IncidentId,
            ["run"] = run.Recorded ? run.RunId : null,
            ["method"] = request.Method.ToString(),
            ["at"] = at,
            ["actor"] = request.Actor,
        };
        JsonObject quarantine = Base(LastKnownGoodAuthority.QuarantineRecord);
        quarantine["digest"] = from;
        quarantine["moved_to"] = to;
        JsonObject rollback = Base(LastKnownGoodAuthority.RollbackRecord);
        rollback["from"] = from;
        rollback["to"] = to;
        Journal.AppendEnvironment(request.Environment.Name, new[] { quarantine, rollback });
    }

    /// <summary>An operator forced a quarantined digest as the target (-Force -ForceReason): it is released, on the record.</summary>
    public void RecordLift(RollbackRequest request, RunContext run, QuarantineEntry entry)
    {
        Journal.AppendEnvironment(request.Environment.Name, new[]
        {
            new JsonObject
            {
                ["v"] = 1,
                ["type"] = LastKnownGoodAuthority.LiftRecord,
                ["environment"] = request.Environment.Name,
                ["digest"] = entry.Digest,
                ["incident_id"] = run.IncidentId,
                ["run"] = run.Recorded ? run.RunId : null,
                ["reason"] = request.ForceReason,
                ["quarantined_by"] = entry.IncidentId,
                ["at"] = IncidentJournal.Rfc3339(_clock.UtcNow),
                ["actor"] = request.Actor,
            },
        });
    }

    private static RunRecord Blank(RollbackRequest request, RunContext run, string phase) => new()
    {
        RunId = run.RunId,
        Attempt = run.Attempt,
        Environment = request.Environment.Name,
        Method = request.Method.ToString(),
        Phase = phase,
    };
}
