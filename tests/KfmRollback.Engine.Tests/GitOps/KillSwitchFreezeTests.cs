using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Freeze;

namespace KfmRollback.Engine.Tests.GitOps;

public class KillSwitchFreezeTests : IDisposable
{
    private const string SwitchPath = "ops/FREEZE.json";
    private static readonly DateTimeOffset At = new(2026, 11, 28, 9, 0, 0, TimeSpan.Zero);
    private readonly GitTestRepo _repo = new();
    private readonly FreezeRequest _request = new("INC-5", "alice@example.test", "error budget burn", At);

    [Fact]
    public async Task DirectPushFreezeAndThawAreCommittedAndIdempotent()
    {
        var freeze = new KillSwitchFreeze("prod", _repo.Config(allowDirectPush: true, killSwitch: SwitchPath));
        Assert.False((await freeze.GetAsync(default)).Frozen);

        var frozen = await freeze.FreezeAsync(_request, dryRun: false, default);
        Assert.True(frozen.Frozen);
        Assert.True(frozen.Changed);
        Assert.Equal("git:" + SwitchPath, frozen.Target);
        string content = Git.Run(_repo.Root, "--git-dir", _repo.Bare, "show", "main:" + SwitchPath);
        Assert.Contains("\"incident\": \"INC-5\"", content);
        Assert.Contains("\"frozen_by\": \"alice@example.test\"", content);
        Assert.Contains("\"reason\": \"error budget burn\"", content);

        var state = await freeze.GetAsync(default);
        Assert.True(state.Frozen);
        Assert.Equal("INC-5", state.IncidentId);
        Assert.Equal(At, state.FrozenAt);
        var again = await freeze.FreezeAsync(_request, dryRun: false, default);
        Assert.False(again.Changed);
        string tip = _repo.RemoteBranchTip("main");

        var thawed = await freeze.ThawAsync(_request, dryRun: false, default);
        Assert.False(thawed.Frozen);
        Assert.True(thawed.Changed);
        Assert.NotEqual(tip, _repo.RemoteBranchTip("main"));
        Assert.Throws<InvalidOperationException>(() => Git.Run(_repo.Root, "--git-dir", _repo.Bare, "cat-file", "-e", "main:" + SwitchPath));
        Assert.False((await freeze.ThawAsync(_request, dryRun: false, default)).Changed);
    }

    [Fact]
    public async Task WithoutDirectPushTheFreezeGoesThroughABranchOnce()
    {
        var freeze = new KillSwitchFreeze("prod", _repo.Config(killSwitch: SwitchPath));
        var first = await freeze.FreezeAsync(_request, dryRun: false, default);
        Assert.False(first.Frozen); // not in force until the PR merges
        Assert.True(first.Changed);
        Assert.Contains("ops/freeze-api-INC-5", _repo.RemoteBranches());
        string tip = _repo.RemoteBranchTip("ops/freeze-api-INC-5");
        await freeze.FreezeAsync(_request, dryRun: false, default);
        Assert.Equal(tip, _repo.RemoteBranchTip("ops/freeze-api-INC-5"));
    }

    [Fact]
    public async Task DryRunChangesNothing()
    {
        var freeze = new KillSwitchFreeze("prod", _repo.Config(allowDirectPush: true, killSwitch: SwitchPath));
        string tip = _repo.RemoteBranchTip("main");
        var planned = await freeze.FreezeAsync(_request, dryRun: true, default);
        Assert.False(planned.Changed);
        Assert.Equal(tip, _repo.RemoteBranchTip("main"));
    }

    [Fact]
    public async Task TheKillSwitchStaysWhileAnotherIncidentHoldsIt()
    {
        var freeze = new KillSwitchFreeze("prod", _repo.Config(allowDirectPush: true, killSwitch: SwitchPath));
        var other = new FreezeRequest("INC-6", "bob@example.test", "second regression", At.AddMinutes(5));
        Assert.Equal(FreezeAction.Froze, (await freeze.FreezeAsync(_request, dryRun: false, default)).Action);
        var joined = await freeze.FreezeAsync(other, dryRun: false, default);
        Assert.Equal(FreezeAction.Joined, joined.Action);
        Assert.Equal(new[] { "INC-5", "INC-6" }, joined.Holders.Select(h => h.IncidentId));
        Assert.Contains("\"holders\"", Git.Run(_repo.Root, "--git-dir", _repo.Bare, "show", "main:" + SwitchPath));

        var released = await freeze.ThawAsync(_request, dryRun: false, default);
        Assert.Equal(FreezeAction.Released, released.Action);
        Assert.True(released.Frozen);
        Assert.Equal("INC-6", Assert.Single((await freeze.GetAsync(default)).Holders).IncidentId);

        var forced = await freeze.ThawAsync(new FreezeRequest("INC-7", "carol@example.test", "both closed", At.AddHours(1), Force: true), dryRun: false, default);
        Assert.Equal(FreezeAction.Thawed, forced.Action);
        Assert.Equal("INC-6", Assert.Single(forced.Overridden).IncidentId);
        Assert.Throws<InvalidOperationException>(() => Git.Run(_repo.Root, "--git-dir", _repo.Bare, "cat-file", "-e", "main:" + SwitchPath));
    }

    [Fact]
    public void MissingPathIsAConfigurationError()
    {
        var e = Assert.Throws<KfmException>(() => new KillSwitchFreeze("prod", _repo.Config()));
        Assert.Equal(GitOpsErrorIds.KillSwitchNotConfigured, e.ErrorId);
        Assert.Contains("gitops.kill_switch_path", e.Message);
    }

    public void Dispose() => _repo.Dispose();
}
