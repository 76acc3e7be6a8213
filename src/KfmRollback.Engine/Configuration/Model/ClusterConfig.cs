using KfmRollback.Engine.Configuration.Binding;

namespace KfmRollback.Engine.Configuration;

/// <summary>How to reach the cluster and which Deployment runs the API (the runbook's &lt;NAMESPACE&gt;
/// and &lt;API_DEPLOYMENT&gt;).</summary>
public sealed class ClusterConfig : IConfigSection
{
    /// <summary>Kubeconfig file; when absent, $KUBECONFIG then ~/.kube/config (see <see cref="ResolveKubeconfigPath"/>).</summary>
    [LocalPath]
    public string? KubeconfigPath { get; init; }

    /// <summary>Kubeconfig context; absent means the file's current context.</summary>
    public string? Context { get; init; }

    /// <summary>Use the pod's service account (running inside the cluster, e.g. an automation job).</summary>
    public bool InCluster { get; init; }

    /// <summary>Environment variable holding a bearer token that overrides the kubeconfig user.</summary>
    [EnvVarName]
    public string? TokenEnv { get; init; }

    /// <summary>File holding a bearer token that overrides the kubeconfig user.</summary>
    [LocalPath]
    public string? TokenFile { get; init; }

    /// <summary>
    /// Accept a kubeconfig whose cluster sets insecure-skip-tls-verify (default false: such a kubeconfig
    /// is refused, since anyone on the path could read the token). Receipts record it (kfm_integrity.insecure_tls).
    /// </summary>
    public bool AllowInsecureTls { get; init; }

    /// <summary>Namespace of the API Deployment.</summary>
    [RequiredKey]
    public string Namespace { get; init; } = null!;

    /// <summary>Name of the API Deployment.</summary>
    [RequiredKey]
    public string Deployment { get; init; } = null!;

    /// <summary>The API container when the pod has several (sidecars); absent means the only/first one.</summary>
    public string? Container { get; init; }

    /// <summary>Lease (coordination.k8s.io) that serialises rollbacks; absent means "kfm-rollback-&lt;deployment&gt;".</summary>
    public string? LeaseName { get; init; }

    /// <summary>How long a rollback lock is held without renewal before another operator may take it over.</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>ReplicaSet annotation carrying the revision number (kubectl's convention).</summary>
    public string RevisionAnnotation { get; init; } = "deployment.kubernetes.io/revision";

    /// <summary>Annotation carrying the human change cause shown in rollout history.</summary>
    public string ChangeCauseAnnotation { get; init; } = "kubernetes.io/change-cause";

    /// <summary>The Lease name actually used.</summary>
    public string EffectiveLeaseName => LeaseName ?? $"kfm-rollback-{Deployment}";

    /// <summary>
    /// The kubeconfig to read: the configured path, else the first entry of $KUBECONFIG, else
    /// ~/.kube/config (kubectl's order); null when <see cref="InCluster"/> is set.
    /// </summary>
    /// <param name="kubeconfigEnvValue">Value of $KUBECONFIG (may hold several paths).</param>
    /// <param name="homeDirectory">The user's home directory.</param>
    public string? ResolveKubeconfigPath(string? kubeconfigEnvValue, string homeDirectory)
    {
        if (InCluster)
            return null;
        if (KubeconfigPath is not null)
            return KubeconfigPath;
        var fromEnv = kubeconfigEnvValue?.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
        return fromEnv ?? Path.Combine(homeDirectory, ".kube", "config");
    }

    void IConfigSection.Validate(ValidationScope scope)
    {
        if (!KubernetesNames.IsLabel(Namespace))
            throw scope.Invalid("namespace", $"must be {KubernetesNames.LabelRule} (got '{Namespace}').");
        if (!KubernetesNames.IsSubdomain(Deployment))
            throw scope.Invalid("deployment", $"must be {KubernetesNames.SubdomainRule} (got '{Deployment}').");
        if (Container is not null && !KubernetesNames.IsLabel(Container))
            throw scope.Invalid("container", $"must be {KubernetesNames.LabelRule} (got '{Container}').");
        if (LeaseName is not null && !KubernetesNames.IsSubdomain(LeaseName))
            throw scope.Invalid("lease_name", $"must be {KubernetesNames.SubdomainRule} (got '{LeaseName}').");
        scope.AtMostOne("token_env", "token_file");
        // In-cluster credentials come from the service account; a kubeconfig alongside would make it
        // unclear which identity performs the rollback, and the receipt must name exactly one.
        if (InCluster)
            foreach (var key in new[] { "kubeconfig_path", "context" })
                if (scope.Has(key))
                    throw scope.Invalid(key, "cannot be combined with in_cluster: true; the service account is used instead.");
    }
}
