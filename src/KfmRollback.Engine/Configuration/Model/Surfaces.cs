using KfmRollback.Engine.Configuration.Binding;

namespace KfmRollback.Engine.Configuration;

/// <summary>Runtime configuration the API reads. `rollout undo` does not revert these, so they are
/// snapshotted as evidence and compared by hash (secret contents are never stored).</summary>
public sealed class ConfigSurfaceConfig : IConfigSection
{
    /// <summary>ConfigMap names (in cluster.namespace).</summary>
    public IReadOnlyList<string> Configmaps { get; init; } = Array.Empty<string>();

    /// <summary>Secret names (in cluster.namespace); only their hashes are recorded.</summary>
    public IReadOnlyList<string> Secrets { get; init; } = Array.Empty<string>();

    void IConfigSection.Validate(ValidationScope scope)
    {
        foreach (var (key, names) in new[] { ("configmaps", Configmaps), ("secrets", Secrets) })
            foreach (var name in names)
                if (!KubernetesNames.IsSubdomain(name))
                    throw scope.Invalid(key, $"entry '{name}' must be {KubernetesNames.SubdomainRule}.");
    }
}

/// <summary>Where the running policy bundle reference lives: exactly one of configmap (+key), env or annotation.</summary>
public sealed class PolicySurfaceConfig : IConfigSection
{
    /// <summary>ConfigMap holding the bundle reference.</summary>
    public string? Configmap { get; init; }

    /// <summary>Key inside that ConfigMap.</summary>
    public string? Key { get; init; }

    /// <summary>Name of the container environment variable holding the bundle reference.</summary>
    public string? Env { get; init; }

    /// <summary>Pod-template annotation holding the bundle reference (rolled back with the ReplicaSet).</summary>
    public string? Annotation { get; init; }

    /// <summary>Digest of a bundle known to be safe, offered as a target when history has none.</summary>
    [Digest]
    public string? KnownGoodBundleDigest { get; init; }

    /// <summary>OPA status API, whose bundles.&lt;name&gt;.active_revision says which bundle is live.</summary>
    public Uri? OpaStatusUrl { get; init; }

    /// <summary>
    /// Policy cases (a YAML or JSON list of caller, method, endpoint, expected allow|deny) run after a
    /// policy rollback with -Wait, and by Test-KfmPolicyInvariant when -PolicyCases is not given.
    /// </summary>
    [LocalPath]
    public string? CasesFile { get; init; }

    void IConfigSection.Validate(ValidationScope scope)
    {
        scope.ExactlyOne("the policy bundle reference must be found somewhere.", "configmap", "env", "annotation");
        if (Configmap is not null && Key is null)
            throw scope.Missing("key", "configmap needs the key that holds the bundle reference.");
        if (Configmap is null && Key is not null)
            throw scope.Invalid("key", "only applies together with configmap.");
        if (Configmap is not null && !KubernetesNames.IsSubdomain(Configmap))
            throw scope.Invalid("configmap", $"must be {KubernetesNames.SubdomainRule} (got '{Configmap}').");
    }
}

/// <summary>How to fail closed when a rollback does not restore a safe state.</summary>
public enum FailClosedMode
{
    /// <summary>Scale the API Deployment to zero replicas (clients get 503 from the ingress).</summary>
    ScaleToZero,
    /// <summary>Set a maintenance flag the API honours by answering 503.</summary>
    MaintenanceFlag,
}

/// <summary>The fail-closed action of the decision tree ("disable risky endpoints or return 503").</summary>
public sealed class FailClosedConfig : IConfigSection
{
    /// <summary>What failing closed means here.</summary>
    [RequiredKey]
    public FailClosedMode Mode { get; init; }

    /// <summary>ConfigMap holding the maintenance flag (maintenance-flag mode).</summary>
    public string? Configmap { get; init; }

    /// <summary>Key of the flag in that ConfigMap.</summary>
    public string? Key { get; init; }

    /// <summary>Value that switches maintenance on.</summary>
    public string Value { get; init; } = "true";

    void IConfigSection.Validate(ValidationScope scope)
    {
        if (Mode == FailClosedMode.MaintenanceFlag)
        {
            if (Configmap is null) throw scope.Missing("configmap", "mode maintenance-flag needs the ConfigMap holding the flag.");
            if (Key is null) throw scope.Missing("key", "mode maintenance-flag needs the key of the flag.");
            if (!KubernetesNames.IsSubdomain(Configmap))
                throw scope.Invalid("configmap", $"must be {KubernetesNames.SubdomainRule} (got '{Configmap}').");
            return;
        }
        foreach (var key in new[] { "configmap", "key", "value" })
            if (scope.Has(key))
                throw scope.Invalid(key, "only applies to mode maintenance-flag.");
    }
}
