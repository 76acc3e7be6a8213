using k8s;
using k8s.Models;
using KfmRollback.Engine.Configuration;
using KfmRollback.Lab;

namespace KfmRollback.Engine.Tests.Support;

/// <summary>How a <see cref="EngineLab"/> starts: what differs from a quiet lab whose Argo CD self-heals.</summary>
public sealed record LabSetup
{
    /// <summary>A quiet lab (no traffic, no Prometheus, Argo CD self-healing) with the responder's environment "lab".</summary>
    public static readonly LabSetup Default = new();

    /// <summary>Synthetic requests per second to the stand-in API (0: none).</summary>
    public double TrafficPerSecond { get; init; }

    /// <summary>A real Prometheus (/usr/bin/prometheus) scraping the stand-in API.</summary>
    public bool Prometheus { get; init; }

    /// <summary>false: Argo CD's automated sync is switched off at start, so a hand-made deploy stays (responders freeze it first too).</summary>
    public bool ArgoSelfHeal { get; init; } = true;

    /// <summary>Waits at start until kfm/kfm-api has rolled out.</summary>
    public bool Settled { get; init; }

    /// <summary>Fails the dispose when a lab controller loop reported an error.</summary>
    public bool FailOnControllerErrors { get; init; }

    /// <summary>The configuration the module reads of this lab (<see cref="EngineLab.Config"/>); the default is <see cref="LabConfig.Responder"/>.</summary>
    public Func<LabConfig, LabConfig> Environment { get; init; } = c => c.Responder();
}

/// <summary>
/// The in-process lab cluster (KfmRollback.Lab) for the engine tests that need one: its own temp
/// directory, a client for its kubeconfig, the configuration the module reads of it, and cleanup.
/// Start one in a test with <c>await using var lab = await EngineLab.StartAsync(...)</c>, or share one across
/// a class as an xUnit class fixture (a derived class passes its <see cref="LabSetup"/>).
/// </summary>
public class EngineLab : IAsyncLifetime, IAsyncDisposable
{
    private readonly LabSetup _setup;
    private LabHost? _host;
    private IKubernetes? _client;
    private KfmConfig? _config;
    private string? _environmentName;
    private bool _stopped;

    public EngineLab() : this(LabSetup.Default) { }

    protected EngineLab(LabSetup setup)
    {
        _setup = setup;
        Dir = Path.Combine(Path.GetTempPath(), "kfm-engine-lab", Guid.NewGuid().ToString("N")[..12]);
    }

    public static async Task<EngineLab> StartAsync(LabSetup? setup = null)
    {
        var lab = new EngineLab(setup ?? LabSetup.Default);
        await lab.InitializeAsync();
        return lab;
    }

    public string Dir { get; }
    public LabHost Host => _host ?? throw new InvalidOperationException("the lab has not started");
    /// <summary>A client for kubeconfig context "lab" (cluster-admin).</summary>
    public IKubernetes Client => _client ?? throw new InvalidOperationException("the lab has not started");
    /// <summary>The configuration the setup's <see cref="LabSetup.Environment"/> describes.</summary>
    public KfmConfig Config => _config ?? throw new InvalidOperationException("the lab has not started");
    /// <summary>The setup's environment ("lab" unless it was named otherwise).</summary>
    public EnvironmentConfig Environment => Config.GetEnvironment(_environmentName!);

    /// <summary>Starts the lab; a start that fails part way stops what it started and removes the directory.</summary>
    public async Task InitializeAsync()
    {
        try
        {
            await StartLabAsync();
        }
        catch
        {
            await StopLabAsync();
            throw;
        }
    }

    private async Task StartLabAsync()
    {
        if (_setup.Prometheus)
        {
            Assert.True(File.Exists("/usr/bin/prometheus"), "/usr/bin/prometheus is missing: install it with `apt-get install -y prometheus`");
        }
        _host = await LabHost.StartAsync(new LabOptions
        {
            OutDir = Dir, TimeScale = 20, PodStartSeconds = 2, TrafficPerSecond = _setup.TrafficPerSecond, Prometheus = _setup.Prometheus,
        });
        _client = NewClient();
        LabConfig config = _setup.Environment(Configure());
        _environmentName = config.Name;
        _config = config.Load();
        if (!_setup.ArgoSelfHeal)
        {
            await Client.CustomObjects.PatchNamespacedCustomObjectAsync(new V1Patch("{\"spec\":{\"syncPolicy\":{\"automated\":null}}}", V1Patch.PatchType.MergePatch),
                "argoproj.io", "v1alpha1", "argocd", "applications", "kfm-api");
        }
        if (_setup.Settled)
        {
            await RolledOutAsync();
        }
    }

    /// <summary>A new description of the module's configuration for this lab: environment "lab" on its cluster, nothing else yet.</summary>
    public LabConfig Configure() => new(this);

    /// <summary>A client of its own, as another machine would have; context "lab-viewer" has the built-in view role only.</summary>
    public IKubernetes NewClient(string context = "lab", params DelegatingHandler[] handlers) =>
        new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(Host.KubeconfigPath, context), handlers);

    /// <summary>A new empty directory inside the lab's, removed with it.</summary>
    public string NewDirectory(string prefix) =>
        Directory.CreateDirectory(Path.Combine(Dir, prefix + "-" + Guid.NewGuid().ToString("N")[..8])).FullName;

    public string Digest(string build) => Host.Images.Get(build).Digest;

    /// <summary>Sets the api container's image of kfm/<paramref name="deployment"/> (a new revision), as a deploy by hand does; waits for nothing.</summary>
    public Task SetImageAsync(string image, string deployment = "kfm-api") =>
        Client.AppsV1.PatchNamespacedDeploymentAsync(
            new V1Patch($"{{\"spec\":{{\"template\":{{\"spec\":{{\"containers\":[{{\"name\":\"api\",\"image\":\"{image}\"}}]}}}}}}}}", V1Patch.PatchType.StrategicMergePatch),
            deployment, "kfm");

    /// <summary>Deploys <paramref name="build"/> and returns once it rolled out and the stand-in API serves it.</summary>
    public async Task DeployAsync(string build)
    {
        await SetImageAsync(Host.Images.Get(build).Image);
        await RolledOutAsync();
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

    /// <summary>Patches kfm/kfm-api and waits until it rolled out.</summary>
    public async Task PatchDeploymentAsync(string strategicMergePatch)
    {
        await Client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch(strategicMergePatch, V1Patch.PatchType.StrategicMergePatch), "kfm-api", "kfm");
        await RolledOutAsync();
    }

    public Task SetConfigAsync(string key, string value) =>
        Client.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch($"{{\"data\":{{\"{key}\":\"{value}\"}}}}", V1Patch.PatchType.MergePatch), "kfm-api-config", "kfm");

    /// <summary>Returns once kfm/kfm-api's newest generation is observed and every replica is updated and available.</summary>
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

    public async ValueTask DisposeAsync()
    {
        IReadOnlyList<string> errors = await StopLabAsync();
        if (_setup.FailOnControllerErrors)
        {
            Assert.True(errors.Count == 0, "lab controller errors:\n" + string.Join("\n", errors));
        }
    }

    /// <summary>Stops the lab once and removes its directory; returns the errors its controller loops reported.</summary>
    private async Task<IReadOnlyList<string>> StopLabAsync()
    {
        if (_stopped) return Array.Empty<string>();
        _stopped = true;
        IReadOnlyList<string> errors = _host?.LoopErrors ?? Array.Empty<string>();
        _client?.Dispose();
        if (_host is not null) await _host.DisposeAsync();
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
        return errors;
    }

    Task IAsyncLifetime.DisposeAsync() => DisposeAsync().AsTask();
}
