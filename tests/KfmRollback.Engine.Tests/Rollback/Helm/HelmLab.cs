using KfmRollback.Engine.Adapters.Helm;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Rollback.Helm;
using KfmRollback.Engine.Tests.Support;
using KfmRollback.Lab;

namespace KfmRollback.Engine.Tests.Rollback.Helm;

/// <summary>The lab with its seeded Helm release kfm/kfm-api, and the engine pointed at it (environment "prod").</summary>
internal static class HelmLab
{
    public static Task<EngineLab> StartAsync(int historyMax = 10) => EngineLab.StartAsync(new LabSetup
    {
        Environment = c => c.Named("prod").Cluster("lease_duration: 1m").With("helm", $"{{ release: kfm-api, history_max: {historyMax} }}").Responder(),
    });

    public static HelmReleaseStore Store(this EngineLab lab) => new(lab.Client, "kfm");

    /// <summary>The mechanism with the environment's freezes (Argo CD), as the engine builds it.</summary>
    public static HelmRollbackMechanism Mechanism(this EngineLab lab) => new(lab.Client, lab.Freezes().For(lab.Environment));

    public static RollbackRequest Request(this EngineLab lab, RollbackTarget? target = null, bool wait = true) => new()
    {
        Environment = lab.Environment,
        Method = RollbackMethod.Helm,
        Actor = "tester",
        IncidentId = "INC-1",
        Target = target ?? RollbackTarget.Previous,
        Wait = wait,
        Timeout = TimeSpan.FromSeconds(60),
    };

    /// <summary>Plan, then Apply, then (with Wait) Await, as the engine does.</summary>
    public static async Task<RollbackResult> RollBackAsync(this EngineLab lab, RollbackTarget? target = null, bool wait = true)
    {
        RollbackRequest request = lab.Request(target, wait);
        HelmRollbackMechanism mechanism = lab.Mechanism();
        MechanismPlan plan = await mechanism.PlanAsync(request, RollbackReporter.Silent, CancellationToken.None);
        RollbackResult applied = await mechanism.ApplyAsync(request, plan, RollbackReporter.Silent, CancellationToken.None);
        return wait && applied.Outcome == RollbackOutcome.Succeeded
            ? await mechanism.AwaitAsync(request, applied, RollbackReporter.Silent, CancellationToken.None)
            : applied;
    }

    public static async Task<IReadOnlyDictionary<int, StoredRelease>> ReleasesAsync(this EngineLab lab) =>
        (await lab.Store().HistoryAsync("kfm-api", CancellationToken.None)).ToDictionary(r => r.Version);

    public static async Task<V1Secret> SecretAsync(this EngineLab lab, int version) =>
        await lab.Client.CoreV1.ReadNamespacedSecretAsync(HelmReleaseStore.SecretName("kfm-api", version), "kfm");

    public static async Task<string> DeploymentImageAsync(this EngineLab lab) =>
        (await lab.Client.AppsV1.ReadNamespacedDeploymentAsync("kfm-api", "kfm")).Spec.Template.Spec.Containers[0].Image;

    /// <summary>What `helm upgrade` leaves: a new deployed revision rendering <paramref name="build"/>, the old one superseded.</summary>
    public static async Task UpgradeAsync(this EngineLab lab, string build, int replicas = 3)
    {
        var releases = await lab.ReleasesAsync();
        StoredRelease current = releases.Values.Last(r => r.Status == HelmStatus.Deployed);
        int version = releases.Keys.Max() + 1;
        var record = HelmSeed.Record(version, HelmStatus.Deployed, "Upgrade complete", build, lab.Host.Images.Get(build).Image,
            current.Release.FirstDeployed!.Value, DateTimeOffset.UtcNow, replicas);
        HelmReleaseStore store = lab.Store();
        await store.CreateAsync(new HelmRelease(record), CancellationToken.None);
        await store.UpdateAsync(current, current.Release.WithStatus(HelmStatus.Superseded), CancellationToken.None);
    }
}
