using k8s;
using KfmRollback.Engine.Configuration;
using KfmRollback.Lab;

namespace KfmRollback.Engine.Tests.Rollback;

/// <summary>An in-process lab cluster with a client and an environment configured for it.</summary>
public sealed class LabEnvironment : IAsyncDisposable
{
    private LabEnvironment(LabHost host, string dir, IKubernetes client, KfmConfig config)
    {
        Host = host;
        Dir = dir;
        Client = client;
        Config = config;
    }

    public LabHost Host { get; }
    public string Dir { get; }
    public IKubernetes Client { get; }
    public KfmConfig Config { get; }
    public EnvironmentConfig Environment => Config.GetEnvironment("lab");

    /// <param name="extraEnvironments">More environment names on the same cluster (a fleet), each its own Deployment in namespace kfm.</param>
    public static Task<LabEnvironment> StartAsync(params string[] extraEnvironments) => StartWithGitOpsAsync(null, extraEnvironments);

    /// <param name="gitops">The gitops: mapping (flow style) of every environment; null: a placeholder clone path.</param>
    public static async Task<LabEnvironment> StartWithGitOpsAsync(string? gitops, params string[] extraEnvironments)
    {
        string dir = Path.Combine(Path.GetTempPath(), "kfm-engine-lab", Guid.NewGuid().ToString("N")[..12]);
        var host = await LabHost.StartAsync(new LabOptions { OutDir = dir, TimeScale = 20, PodStartSeconds = 2, TrafficPerSecond = 0 });
        string Env(string name, string deployment) => $"""
              {name}:
                cluster: {"{"} kubeconfig_path: {host.KubeconfigPath}, context: lab, namespace: kfm, deployment: {deployment}, container: api {"}"}
                gitops: {gitops ?? "{ path: gitops, branch: main, file: k.yaml, kind: kustomize, image_name: kfm-api }"}
                freeze: {"{"} mechanisms: [ {"{"} kind: argocd, name: kfm-api, namespace: argocd {"}"} ] {"}"}
                prometheus: {"{"} url: 'http://127.0.0.1:9' {"}"}
                api: {"{"} base_url: 'http://127.0.0.1:9', openapi_path: /openapi.json, probe: {"{"} callers: {"{"} anon: {"{"} anonymous: true, role: public {"}"} {"}"}, endpoints: [ {"{"} path: /api/v1/datasets {"}"} ] {"}"} {"}"}
                config_surface: {"{"} configmaps: [kfm-api-config] {"}"}
                approval_required: false
            """;
        string yaml = "defaults: { incident_journal: state/incidents, receipt_store: state/receipts }\nenvironments:\n" +
            string.Join("\n", new[] { Env("lab", "kfm-api") }.Concat(extraEnvironments.Select(e => Env(e, e))));
        var config = KfmConfigLoader.LoadFromText(yaml, Path.Combine(dir, "kfm-rollback.yaml"), dir);
        var client = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(host.KubeconfigPath, "lab"));
        return new LabEnvironment(host, dir, client, config);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Host.DisposeAsync();
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}
