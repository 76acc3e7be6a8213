using k8s;
using k8s.Models;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Planning;
using KfmRollback.Engine.Refs;
using KfmRollback.Lab;

namespace KfmRollback.Engine.Tests.Planning;

/// <summary>An in-process lab with the module's view of it (environment "lab") and the changes the decision-tree tests make.</summary>
internal sealed class PlanningLab : IAsyncDisposable
{
    private readonly string _dir;

    private PlanningLab(LabHost host, string dir, IKubernetes client)
    {
        Host = host;
        _dir = dir;
        Client = client;
    }

    public LabHost Host { get; }
    public IKubernetes Client { get; }

    public static async Task<PlanningLab> StartAsync()
    {
        string dir = Path.Combine(Path.GetTempPath(), "kfm-plan-tests", Guid.NewGuid().ToString("N")[..12]);
        LabHost host = await LabHost.StartAsync(new LabOptions { OutDir = dir, TimeScale = 20, PodStartSeconds = 2, TrafficPerSecond = 0 });
        var client = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(host.KubeconfigPath));
        var lab = new PlanningLab(host, dir, client);
        // Argo's self-heal would put a hand-made deploy back; incident responders freeze it first too.
        await client.CustomObjects.PatchNamespacedCustomObjectAsync(new V1Patch("{\"spec\":{\"syncPolicy\":{\"automated\":null}}}", V1Patch.PatchType.MergePatch),
            "argoproj.io", "v1alpha1", "argocd", "applications", "kfm-api");
        await lab.RolledOutAsync();
        return lab;
    }

    /// <summary>The environment <see cref="StartFrozenAsync"/> configured.</summary>
    public EnvironmentConfig Configured { get; private set; } = null!;

    /// <summary>A lab whose running configuration was snapshotted, as Start-KfmFreeze does when an incident starts.</summary>
    public static async Task<PlanningLab> StartFrozenAsync(string? policySurface)
    {
        PlanningLab lab = await StartAsync();
        lab.Configured = lab.Environment(policySurface);
        await lab.FreezeSnapshotAsync(lab.Configured);
        return lab;
    }

    /// <summary>The lab's environment as the module reads it; <paramref name="policySurface"/> is YAML under policy_surface.</summary>
    public EnvironmentConfig Environment(string? policySurface = null)
    {
        string policy = policySurface is null ? "" : "    policy_surface:\n" + string.Join("\n", policySurface.Split('\n').Select(l => "      " + l)) + "\n";
        string yaml = $"""
            defaults:
              incident_journal: {_dir}/incidents
              receipt_store: {_dir}/receipts
            environments:
              lab:
                cluster:
                  kubeconfig_path: {Host.KubeconfigPath}
                  context: lab
                  namespace: kfm
                  deployment: kfm-api
                  container: api
                gitops:
                  path: {_dir}/no-gitops
                  file: infra/kustomization.yaml
                  kind: kustomize
                  image_name: registry.kfm.local/kfm-api
                freeze:
                  mechanisms:
                    - kind: argocd
                      name: kfm-api
                      namespace: argocd
                prometheus:
                  url: http://127.0.0.1:9
                api:
                  base_url: {Host.KfmApiUrl}
                  contract_snapshot_dir: {_dir}/contracts
                  probe:
                    callers:
                      anon:
                        anonymous: true
                        role: public
                    endpoints:
                      - path: /api/v1/datasets
                config_surface:
                  configmaps: [kfm-api-config]

            """ + policy;
        return KfmConfigLoader.LoadFromText(yaml, "kfm-rollback.yaml", _dir).GetEnvironment("lab");
    }

    public string Digest(string build) => Host.Images.Entries.Single(e => e.Name == build).Digest;

    /// <summary>What Start-KfmFreeze records: the running template's ConfigMaps and Secrets, by content.</summary>
    public Task FreezeSnapshotAsync(EnvironmentConfig environment) => KfmRollback.Engine.Rollback.Surfaces.SurfaceRollback.SnapshotRunningAsync(KfmRollback.Engine.Context.EngineContext.For(Client), environment, CancellationToken.None);

    public async Task DeployAsync(string build)
    {
        string image = Host.Images.Entries.Single(e => e.Name == build).Image;
        await PatchDeploymentAsync($"{{\"spec\":{{\"template\":{{\"spec\":{{\"containers\":[{{\"name\":\"api\",\"image\":\"{image}\"}}]}}}}}}}}");
        // A converged Deployment is not yet an API that answers as the build (on a loaded machine the
        // contract tests once probed the previous build): wait until the stand-in serves it.
        string digest = Digest(build);
        DateTime until = DateTime.UtcNow.AddSeconds(60);
        while (Host.KfmApi.CurrentBuild().digest != digest)
        {
            if (DateTime.UtcNow > until) throw new TimeoutException($"the lab's API did not serve {build} within 60 s of its rollout");
            await Task.Delay(50);
        }
    }

    /// <summary>`kubectl rollout restart`: a new revision with the same image, so pods read changed configuration.</summary>
    public Task RestartAsync() =>
        PatchDeploymentAsync($"{{\"spec\":{{\"template\":{{\"metadata\":{{\"annotations\":{{\"kubectl.kubernetes.io/restartedAt\":\"{Guid.NewGuid():N}\"}}}}}}}}}}");

    public async Task PatchDeploymentAsync(string strategicMergePatch)
    {
        await Client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch(strategicMergePatch, V1Patch.PatchType.StrategicMergePatch), "kfm-api", "kfm");
        await RolledOutAsync();
    }

    public Task SetConfigAsync(string key, string value) =>
        Client.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch($"{{\"data\":{{\"{key}\":\"{value}\"}}}}", V1Patch.PatchType.MergePatch), "kfm-api-config", "kfm");

    public async Task RolledOutAsync()
    {
        DateTime until = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < until)
        {
            V1Deployment d = await Client.AppsV1.ReadNamespacedDeploymentAsync("kfm-api", "kfm");
            int replicas = d.Spec.Replicas ?? 1;
            if ((d.Status?.ObservedGeneration ?? 0) >= (d.Metadata.Generation ?? 1) && d.Status?.UpdatedReplicas == replicas
                && d.Status?.AvailableReplicas == replicas && d.Status?.Replicas == replicas)
            {
                return;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException("kfm/kfm-api did not roll out within 60 s");
    }

    /// <summary>A request as Get-KfmRollbackPlan -Since makes it, the incident starting now on the lab's clock.</summary>
    public RollbackPlanRequest Request(TimeSpan? window = null) =>
        new() { IncidentId = "INC-PLAN", IncidentStartedAt = Host.Clock.Now, DeployWindow = window ?? TimeSpan.FromHours(1) };

    public RollbackPlanner Planner(EnvironmentConfig environment, Func<CancellationToken, Task<ApiRef>>? gitOps = null, HttpClient? http = null) =>
        new(Client, environment, new PlanSources { GitOpsRef = gitOps, Http = http });

    public async ValueTask DisposeAsync()
    {
        IReadOnlyList<string> errors = Host.LoopErrors;
        Client.Dispose();
        await Host.DisposeAsync();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
        Assert.True(errors.Count == 0, "lab controller errors:\n" + string.Join("\n", errors));
    }
}
