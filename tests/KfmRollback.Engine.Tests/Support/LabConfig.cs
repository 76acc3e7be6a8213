using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Tests.Support;

/// <summary>
/// The module's configuration of an <see cref="EngineLab"/>, built from sections so that each test says
/// only what differs: environment "lab" on the lab's cluster (kfm/kfm-api, container api), the journal
/// and receipts under state/ of the lab's directory, and whatever sections are added
/// (<see cref="With"/>, <see cref="Block"/>), in the order added.
/// </summary>
public sealed class LabConfig
{
    /// <summary>Freeze by Argo CD's Application argocd/kfm-api, which the lab seeds.</summary>
    public const string ArgoFreeze = "{ mechanisms: [ { kind: argocd, name: kfm-api, namespace: argocd } ] }";

    /// <summary>A Prometheus nobody listens on (the discard port).</summary>
    public const string NoPrometheus = "{ url: 'http://127.0.0.1:9' }";

    /// <summary>A GitOps repository that does not exist, for environments whose tests never reach it.</summary>
    public const string NoGitOps = "{ path: gitops, branch: main, file: k.yaml, kind: kustomize, image_name: kfm-api }";

    /// <summary>The probe of one public endpoint by an anonymous caller.</summary>
    public const string AnonymousProbe = "{ callers: { anon: { anonymous: true, role: public } }, endpoints: [ { path: /api/v1/datasets } ] }";

    private readonly List<KeyValuePair<string, string>> _sections = new();
    private readonly List<string> _fleet = new();
    private string _dir;
    private string _cluster = "";

    internal LabConfig(EngineLab lab)
    {
        Lab = lab;
        _dir = lab.Dir;
    }

    public EngineLab Lab { get; }

    /// <summary>The environment's name ("lab" unless <see cref="Named"/>).</summary>
    public string Name { get; private set; } = "lab";

    public LabConfig Named(string name)
    {
        Name = name;
        return this;
    }

    /// <summary>Where the configuration file is (relative paths, the journal and receipts resolve there); the lab's directory unless set.</summary>
    public LabConfig In(string dir)
    {
        _dir = dir;
        return this;
    }

    /// <summary>More keys of the cluster mapping, flow style (e.g. "lease_duration: 1m").</summary>
    public LabConfig Cluster(string keys)
    {
        _cluster += ", " + keys;
        return this;
    }

    /// <summary>More environments on the same cluster (a fleet), each with the same sections and its own Deployment in namespace kfm named as it is.</summary>
    public LabConfig Fleet(params string[] environments)
    {
        _fleet.AddRange(environments);
        return this;
    }

    /// <summary>Sets a section of the environment to a one-line value (flow style for a mapping or list).</summary>
    public LabConfig With(string section, string value)
    {
        if (value.Contains('\n')) throw new ArgumentException($"{section}: a value of several lines is a Block", nameof(value));
        return Set(section, " " + value);
    }

    /// <summary>Sets a section of the environment to a block: lines as they stand under the key.</summary>
    public LabConfig Block(string section, string yaml) =>
        Set(section, string.Concat(yaml.TrimEnd('\n').Split('\n').Select(l => "\n      " + l)));

    private LabConfig Set(string section, string rendered)
    {
        int at = _sections.FindIndex(s => s.Key == section);
        if (at >= 0) _sections[at] = new(section, rendered);
        else _sections.Add(new(section, rendered));
        return this;
    }

    /// <summary>
    /// What an incident responder configures: a GitOps repository (<see cref="NoGitOps"/> unless given), the
    /// Argo CD freeze, Prometheus and the API (unreachable unless given), the ConfigMap kfm-api-config as
    /// config surface, and no approval.
    /// </summary>
    public LabConfig Responder(string? gitops = null, string? api = null) =>
        With("gitops", gitops ?? NoGitOps)
            .With("freeze", ArgoFreeze)
            .With("prometheus", NoPrometheus)
            .With("api", api ?? $"{{ base_url: 'http://127.0.0.1:9', openapi_path: /openapi.json, probe: {AnonymousProbe} }}")
            .With("config_surface", "{ configmaps: [kfm-api-config] }")
            .With("approval_required", "false");

    private string Yaml()
    {
        var yaml = new System.Text.StringBuilder("defaults:\n  incident_journal: state/incidents\n  receipt_store: state/receipts\nenvironments:\n");
        foreach ((string name, string deployment) in _fleet.Select(e => (e, e)).Prepend((Name, "kfm-api")))
        {
            yaml.Append($"  {name}:\n    cluster: {{ kubeconfig_path: {Lab.Host.KubeconfigPath}, context: lab, namespace: kfm, deployment: {deployment}, container: api{_cluster} }}\n");
            foreach ((string key, string rendered) in _sections)
            {
                yaml.Append($"    {key}:{rendered}\n");
            }
        }
        return yaml.ToString();
    }

    public KfmConfig Load() => KfmConfigLoader.LoadFromText(Yaml(), Path.Combine(_dir, "kfm-rollback.yaml"), _dir);

    /// <summary>The environment as the module reads it.</summary>
    public EnvironmentConfig Environment() => Load().GetEnvironment(Name);
}
