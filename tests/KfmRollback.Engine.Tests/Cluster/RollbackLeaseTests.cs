using KfmRollback.Engine.Tests.Support;
using KfmRollback.Engine.Adapters.Kubernetes;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Tests.Rollback;
using KfmRollback.Lab.Api;

namespace KfmRollback.Engine.Tests.Cluster;

/// <summary>
/// The rollback Lease against the lab apiserver (resourceVersion preconditions and conflicts as a
/// real one answers them): a rerun of the same run takes its own lease over at once, another holder
/// is refused with the expiry and the command that breaks it, renewal survives a conflict and notices
/// when the lease was taken.
/// </summary>
public sealed class RollbackLeaseTests
{
    private const string Ns = "kfm";
    private const string Name = "kfm-rollback-kfm-api";
    private static readonly LeaseHolder Run1Attempt1 = new("job@automation", "INC-1", "INC-1/lab/cluster#1", "0000aaaa");
    private static readonly LeaseHolder Run1Attempt2 = new("job@automation", "INC-1", "INC-1/lab/cluster#1", "0000bbbb");

    /// <summary>What a killed job leaves: a live lease nobody renews any more.</summary>
    private static Task Plant(IKubernetes client, string holder, int seconds = 600) =>
        client.CoordinationV1.CreateNamespacedLeaseAsync(new V1Lease
        {
            Metadata = new V1ObjectMeta { Name = Name, NamespaceProperty = Ns },
            Spec = new V1LeaseSpec { HolderIdentity = holder, LeaseDurationSeconds = seconds, AcquireTime = DateTime.UtcNow, RenewTime = DateTime.UtcNow },
        }, Ns);

    private static Task<RollbackLease> Acquire(IKubernetes client, LeaseHolder holder, string? breakReason = null, int seconds = 600) =>
        RollbackLease.AcquireAsync(client, Ns, Name, holder, TimeSpan.FromSeconds(seconds), SystemClock.Instance, breakReason, "Invoke-KfmRollback -BreakLock -Reason '<why>'", CancellationToken.None);

    private static async Task<string?> HolderAsync(IKubernetes client) => (await client.CoordinationV1.ReadNamespacedLeaseAsync(Name, Ns)).Spec.HolderIdentity;

    [Fact]
    public void The_holder_identity_names_incident_run_and_attempt_and_parses_back()
    {
        Assert.Equal("job@automation (INC-1; run INC-1/lab/cluster#1; attempt 0000aaaa)", Run1Attempt1.Identity);
        Assert.Equal(Run1Attempt1, LeaseHolder.Parse(Run1Attempt1.Identity));
        Assert.True(Run1Attempt2.SameRun(LeaseHolder.Parse(Run1Attempt1.Identity)));
        Assert.Null(LeaseHolder.Parse("bob@laptop (INC-9)"));
        Assert.False(Run1Attempt2.SameRun(new LeaseHolder("job@automation", "INC-1", "INC-1/lab/helm#1", "0000cccc")));
    }

    [Fact]
    public async Task The_same_runs_rerun_takes_its_own_lease_over_at_once()
    {
        await using var lab = await EngineLab.StartAsync();
        await Plant(lab.Client, Run1Attempt1.Identity);

        await using RollbackLease lease = await Acquire(lab.Client, Run1Attempt2);

        Assert.Equal(LeaseTakeover.OwnRun, lease.Takeover);
        Assert.Equal(Run1Attempt1.Identity, lease.PreviousHolder);
        Assert.Equal(Run1Attempt2.Identity, await HolderAsync(lab.Client));
        await lease.EnsureHeldAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Another_holder_is_refused_with_the_expiry_and_the_command_that_breaks_it_on_the_record()
    {
        await using var lab = await EngineLab.StartAsync();
        string other = new LeaseHolder("bob@laptop", "INC-9", "INC-9/lab/cluster#1", "0badf00d").Identity;
        await Plant(lab.Client, other);

        var refused = await Assert.ThrowsAsync<KfmException>(() => Acquire(lab.Client, Run1Attempt1));
        Assert.Equal("RollbackLocked", refused.ErrorId);
        Assert.Contains($"held by '{other}'", refused.Message);
        Assert.Matches(@"expires \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", refused.Message);
        Assert.Contains("-BreakLock -Reason", refused.Message);
        Assert.Equal(other, await HolderAsync(lab.Client));

        // The same incident in another run (another method) is another holder too.
        var otherRun = new LeaseHolder("job@automation", "INC-9", "INC-9/lab/helm#1", "0000dddd");
        Assert.Equal("RollbackLocked", (await Assert.ThrowsAsync<KfmException>(() => Acquire(lab.Client, otherRun))).ErrorId);

        await using RollbackLease broken = await Acquire(lab.Client, Run1Attempt1, breakReason: "bob's job was killed");
        Assert.Equal(LeaseTakeover.Broken, broken.Takeover);
        Assert.Equal(other, broken.PreviousHolder);
        Assert.Equal(Run1Attempt1.Identity, await HolderAsync(lab.Client));
    }

    [Fact]
    public async Task An_expired_lease_is_taken_over_and_says_from_whom()
    {
        await using var lab = await EngineLab.StartAsync();
        await Plant(lab.Client, "bob@laptop (INC-9)", seconds: 1);
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        await using RollbackLease lease = await Acquire(lab.Client, Run1Attempt1);
        Assert.Equal(LeaseTakeover.Expired, lease.Takeover);
        Assert.Equal("bob@laptop (INC-9)", lease.PreviousHolder);
    }

    [Fact]
    public async Task Renewal_recovers_from_a_conflict_while_the_lease_is_still_ours()
    {
        await using var lab = await EngineLab.StartAsync();
        await using RollbackLease lease = await Acquire(lab.Client, Run1Attempt1);
        DateTime? before = (await lab.Client.CoordinationV1.ReadNamespacedLeaseAsync(Name, Ns)).Spec.RenewTime;
        var conflict = FaultRule.FromJson(JsonNode.Parse("""{"resource":"leases","verb":"update","conflictCount":1}""")!);
        lab.Host.Faults.Add(conflict);

        await Task.Delay(20);
        await lease.RenewAsync(CancellationToken.None);

        Assert.Equal(0, conflict.ConflictCount); // the apiserver did answer 409 once
        Assert.Null(lease.LostTo);
        V1Lease now = await lab.Client.CoordinationV1.ReadNamespacedLeaseAsync(Name, Ns);
        Assert.Equal(Run1Attempt1.Identity, now.Spec.HolderIdentity);
        Assert.True(now.Spec.RenewTime > before);
        await lease.EnsureHeldAsync(CancellationToken.None);
    }

    [Fact]
    public async Task A_lease_taken_by_someone_else_is_noticed_by_renewal_stops_the_next_change_and_is_not_released()
    {
        await using var lab = await EngineLab.StartAsync();
        RollbackLease lease = await Acquire(lab.Client, Run1Attempt1);
        V1Lease taken = await lab.Client.CoordinationV1.ReadNamespacedLeaseAsync(Name, Ns);
        taken.Spec.HolderIdentity = "carol@desk (INC-7; run INC-7/lab/cluster#1; attempt 0000eeee)";
        await lab.Client.CoordinationV1.ReplaceNamespacedLeaseAsync(taken, Name, Ns);

        await lease.RenewAsync(CancellationToken.None);

        Assert.Equal(taken.Spec.HolderIdentity, lease.LostTo);
        var lost = await Assert.ThrowsAsync<KfmException>(() => lease.EnsureHeldAsync(CancellationToken.None));
        Assert.Equal("RollbackLockLost", lost.ErrorId);
        await lease.DisposeAsync();
        Assert.Equal(taken.Spec.HolderIdentity, await HolderAsync(lab.Client));
    }

    [Fact]
    public async Task A_fresh_check_before_apply_notices_a_broken_lease_even_between_renewals()
    {
        await using var lab = await EngineLab.StartAsync();
        await using RollbackLease lease = await Acquire(lab.Client, Run1Attempt1);
        await using RollbackLease breaker = await Acquire(lab.Client, new LeaseHolder("bob@laptop", "INC-9", "INC-9/lab/cluster#1", "0badf00d"), breakReason: "job presumed dead");
        var lost = await Assert.ThrowsAsync<KfmException>(() => lease.EnsureHeldAsync(CancellationToken.None));
        Assert.Equal("RollbackLockLost", lost.ErrorId);
        Assert.Contains("bob@laptop", lost.Message);
    }
}
