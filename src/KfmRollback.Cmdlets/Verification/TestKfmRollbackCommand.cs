using System.Management.Automation;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Verification;

namespace KfmRollback.Cmdlets.Verification;

/// <summary>Runs the whole verification checklist (A-D) after a rollback and returns one summary for the receipt.</summary>
[Cmdlet(VerbsDiagnostic.Test, "KfmRollback")]
[OutputType(typeof(VerificationSummary), typeof(bool))]
public sealed class TestKfmRollbackCommand : VerificationCmdlet
{
    /// <summary>The rollback to verify; its refs and timings travel on in the summary.</summary>
    [Parameter(ValueFromPipeline = true)]
    public RollbackResult? Rollback { get; set; }

    protected override void ProcessRecordCore()
    {
        // The start of the run's "verified" phase (its time to safe ends at the verdict).
        DateTimeOffset started = EngineContext.Clock.UtcNow;
        VerificationSummary summary = Run(VerificationRunner.Sections(VerificationSections.All));
        if (Rollback is not null)
        {
            summary = summary.For(Rollback);
        }
        // The verdicts belong on the timeline: the report and the plots' verification marker read them there.
        TimelineWriter()("OPS", KfmRollback.Engine.Aftermath.TimelineMarkers.VerifiedLine(summary));
        if (Rollback is not null)
        {
            // ... and on the rollback's run, which a rerun then finds finished.
            RunJournal(RequireEnvironment()).RecordVerified(Rollback, summary.Passed, KfmRollback.Engine.Aftermath.TimelineMarkers.VerifiedLine(summary), KfmRollback.Engine.Core.Actor.Current(), started);
        }
        foreach (CheckResult failed in summary.Results.Where(r => r.Verdict != Verdict.Pass))
        {
            WriteVerbose($"{failed.Check}: {failed.Verdict}: {failed.Summary}");
        }
        if (Quiet)
        {
            WriteObject(summary.Passed);
            return;
        }
        WriteObject(summary);
    }
}
