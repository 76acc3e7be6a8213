using KfmRollback.Engine.Adapters.GitOpsControllers;
using KfmRollback.Engine.Adapters.Helm;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Freeze;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Rollback.Helm;
using KfmRollback.Engine.Tests.Configuration;
using KfmRollback.Lab;

namespace KfmRollback.Engine.Tests.Rollback.Helm;

/// <summary>An in-process lab with the seeded Helm release kfm/kfm-api, and the engine pointed at it.</summary>
internal sealed class HelmLab : IAsyncDisposable
{
    private readonly string _dir;

    private HelmLab(LabHost host, string dir, EnvironmentConfig environment)
    {
        Host = host;
        _dir = dir;
        Environment = environment;
        Client = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(host.KubeconfigPath));
        Store = new HelmReleaseStore(Client, "kfm");
        Argo = new ControllerFreeze(new ArgoCdApplication(Client, "argocd", "kfm-api"), "prod");
    }

    public LabHost Host { get; }
    public EnvironmentConfig Environment { get; }
    public IKubernetes Client { get; }
    public HelmReleaseStore Store { get; }
    public IFreezeMechanism Argo { get; }

    public static async Task<HelmLab> StartAsync(int historyMax = 10)
    {
        string dir = Path.Combine(Path.GetTempPath(), "kfm-helm-tests", Guid.NewGuid().ToString("N")[..12]);
        LabHost host = await LabHost.StartAsync(new LabOptions { OutDir = dir, TimeScale = 20, TrafficPerSecond = 0 });
        string yaml = ConfigTestSupport.Minimal
            .Replace("      namespace: kfm\n      deployment: kfm-api\n",
                $"      kubeconfig_path: {host.KubeconfigPath}\n      namespace: kfm\n      deployment: kfm-api\n      container: api\n      lease_duration: 1m\n    helm:\n      release: kfm-api\n      history_max: {historyMax}\n");
        EnvironmentConfig environment = ConfigTestSupport.Load(yaml).GetEnvironment("prod");
        return new HelmLab(host, dir, environment);
    }

    /// <summary>Freezes Argo CD, as the runbook does before any cluster change.</summary>
    public Task FreezeAsync() => Argo.FreezeAsync(new FreezeRequest("INC-1", "tester", "helm rollback test", DateTimeOffset.UtcNow), false, CancellationToken.None);

    public HelmRollbackMechanism Mechanism() => new(Client, new[] { Argo });

    public RollbackRequest Request(RollbackTarget? target = null, bool wait = true) => new()
    {
        Environment = Environment,
        Method = RollbackMethod.Helm,
        Actor = "tester",
        IncidentId = "INC-1",
        Target = target ?? RollbackTarget.Previous,
        Wait = wait,
        Timeout = TimeSpan.FromSeconds(60),
    };

    /// <summary>Plan, then Apply, then (with Wait) Await, as the engine does.</summary>
    public async Task<RollbackResult> RollBackAsync(RollbackTarget? target = null, bool wait = true)
    {
        RollbackRequest request = Request(target, wait);
        HelmRollbackMechanism mechanism = Mechanism();
        MechanismPlan plan = await mechanism.PlanAsync(request, RollbackReporter.Silent, CancellationToken.None);
        RollbackResult applied = await mechanism.ApplyAsync(request, plan, RollbackReporter.Silent, CancellationToken.None);
        return wait && applied.Outcome == RollbackOutcome.Succeeded
            ? await mechanism.AwaitAsync(request, applied, RollbackReporter.Silent, CancellationToken.None)
            : applied;
    }

    public async Task<IReadOnlyDictionary<int, StoredRelease>> ReleasesAsync() =>
        (await Store.HistoryAsync("kfm-api", CancellationToken.None)).ToDictionary(r => r.Version);

    public async Task<V1Secret> SecretAsync(int version) =>
        await Client.CoreV1.ReadNamespacedSecretAsync(HelmReleaseStore.SecretName("kfm-api", version), "kfm");

    public string Digest(string build) => Host.Images.Get(build).Digest;

    public async Task<string> DeploymentImageAsync() =>
        (await Client.AppsV1.ReadNamespacedDeploymentAsync("kfm-api", "kfm")).Spec.Template.Spec.Containers[0].Image;

    /// <summary>What `helm upgrade` leaves: a new deployed revision rendering <paramref name="build"/>, the old one superseded.</summary>
    public async Task UpgradeAsync(string build, int replicas = 3)
    {
        var releases = await ReleasesAsync();
        StoredRelease current = releases.Values.Last(r => r.Status == HelmStatus.Deployed);
        int version = releases.Keys.Max() + 1;
        var record = HelmSeed.Record(version, HelmStatus.Deployed, "Upgrade complete", build, Host.Images.Get(build).Image,
            current.Release.FirstDeployed!.Value, DateTimeOffset.UtcNow, replicas);
        await Store.CreateAsync(new HelmRelease(record), CancellationToken.None);
        await Store.UpdateAsync(current, current.Release.WithStatus(HelmStatus.Superseded), CancellationToken.None);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Host.DisposeAsync();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
