using KfmRollback.Engine.Core;
using KfmRollback.Engine.Freeze;
using KfmRollback.Engine.Incidents;
using KfmRollback.Engine.Rollback.Runs;
using KfmRollback.Engine.Tests.Support;

namespace KfmRollback.Engine.Tests.Freeze;

/// <summary>
/// A Start-KfmFreeze stopped between its "Freeze requested for &lt;env&gt;: …" line and its first mechanism
/// (a killed pwsh, a recycled Automation sandbox) leaves that line alone on the timeline: the rerun freezes
/// as a first run does, and the run's freeze phase starts at the rerun's request, the one that led to a freeze.
/// </summary>
public sealed class FreezeRestartLabTests : IDisposable
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 7, 3, 0, 0, TimeSpan.Zero);
    private readonly TempDirectory _dir = new();
    private readonly ManualClock _clock = new(T0);

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_freeze_stopped_after_its_request_line_freezes_on_the_rerun_and_its_phase_starts_at_the_rerun()
    {
        await using var lab = await EngineLab.StartAsync();
        var journal = new IncidentJournal(_dir.File("journal/incidents.ndjson"), new PolicySafeText(), _clock);
        journal.Open(new IncidentRequest { IncidentId = "INC-K", Commander = "alice", Reason = "5xx after deploy", Environment = lab.Environment.Name, StartedAt = T0.AddSeconds(-60) }, "ops");
        var freezes = new FreezeService(lab.Freezes(), new PolicySafeText(), _clock);
        var request = new FreezeRequest("INC-K", "alice", "5xx after deploy", T0);

        // The first run writes its request line, then dies before any mechanism: the token is gone the moment the line is written.
        using var killed = new CancellationTokenSource();
        DateTimeOffset? killedRequest = null;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => freezes.ApplyAsync(lab.Environment, null, true, request, false, (role, text) =>
        {
            killedRequest ??= journal.AppendTimeline("INC-K", role, text, "alice").At;
            killed.Cancel();
        }, killed.Token));
        Assert.Equal(T0, killedRequest);
        Assert.All(await freezes.GetAsync(lab.Environment, null, default), state => Assert.False(state.Frozen, state.Target));
        Assert.StartsWith(TimelineFacts.FreezeRequestedPrefix, Assert.Single(journal.Get("INC-K").Timeline.Where(e => e.Event.StartsWith("Fr", StringComparison.Ordinal))).Event);

        // The rerun, 20 s later: it freezes every mechanism, one line each, a second apart.
        _clock.UtcNow = T0.AddSeconds(20);
        FreezeSummary rerun = await freezes.ApplyAsync(lab.Environment, null, true, request with { At = _clock.UtcNow }, false, (role, text) =>
        {
            journal.AppendTimeline("INC-K", role, text, "alice");
            _clock.UtcNow += TimeSpan.FromSeconds(1);
        }, default);
        Assert.True(rerun.Complete);
        Assert.NotEmpty(rerun.Mechanisms);
        Assert.All(rerun.Mechanisms, state => Assert.Equal(FreezeAction.Froze, state.Action));
        Assert.All(await freezes.GetAsync(lab.Environment, null, default), state => Assert.True(state.Frozen, state.Target));
        DateTimeOffset lastFroze = T0.AddSeconds(20 + rerun.Mechanisms.Count);

        // The rollback that follows (planned, then the change): the freeze phase is the rerun's, not the killed run's.
        void Record(string phase, DateTimeOffset at) => journal.RecordRun("INC-K", new RunRecord
        {
            RunId = "INC-K/lab/cluster#1", Attempt = "a1", Environment = lab.Environment.Name, Method = "Cluster", Phase = phase, At = at, StartedAt = at,
        });
        Record(RunPhases.Planned, T0.AddSeconds(40));
        Record(RunPhases.Applying, T0.AddSeconds(41));
        RunPhase freeze = RunPhaseTimes.Latest(journal.Get("INC-K"), lab.Environment.Name)!.Phase(SafetyPhases.Freeze)!;
        Assert.Null(freeze.Note);
        Assert.Equal(T0.AddSeconds(20), freeze.Start);
        Assert.Equal(lastFroze, freeze.End);
    }
}
