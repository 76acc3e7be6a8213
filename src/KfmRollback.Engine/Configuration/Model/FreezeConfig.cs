using KfmRollback.Engine.Configuration.Binding;

namespace KfmRollback.Engine.Configuration;

/// <summary>A way of stopping deploys (runbook step 0).</summary>
public enum FreezeKind
{
    /// <summary>Argo CD Application: automated sync disabled.</summary>
    Argocd,
    /// <summary>Flux Kustomization: spec.suspend = true.</summary>
    FluxKustomization,
    /// <summary>Flux HelmRelease: spec.suspend = true.</summary>
    FluxHelmrelease,
    /// <summary>Kill-switch file in the GitOps repository (gitops.kill_switch_path) that pipelines honour.</summary>
    Killswitch,
    /// <summary>Flux ImageUpdateAutomation: spec.suspend = true, so image automation commits no new image to Git.</summary>
    FluxImageupdateautomation,
    /// <summary>Argo CD Image Updater on an Application: its image-list annotation removed (kept in the freeze record), so the updater skips it.</summary>
    ArgocdImageUpdater,
}

/// <summary>
/// Every mechanism that can redeploy the API. All are frozen before a rollback, because a GitOps
/// controller left running silently reverts a cluster rollback (self-heal).
/// </summary>
public sealed class FreezeConfig : IConfigSection
{
    /// <summary>The mechanisms to freeze, in order.</summary>
    [RequiredKey, NonEmpty]
    public IReadOnlyList<FreezeMechanism> Mechanisms { get; init; } = Array.Empty<FreezeMechanism>();

    void IConfigSection.Validate(ValidationScope scope)
    {
        var duplicate = Mechanisms.GroupBy(m => (m.Kind, m.Name, m.EffectiveNamespace)).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw scope.Invalid("mechanisms", $"lists {ConfigSchema.YamlName(duplicate.Key.Kind)} '{duplicate.Key.Name}' more than once.");
    }
}

/// <summary>One freeze mechanism.</summary>
public sealed class FreezeMechanism : IConfigSection
{
    /// <summary>What kind of mechanism.</summary>
    [RequiredKey]
    public FreezeKind Kind { get; init; }

    /// <summary>Name of the Application / Kustomization / HelmRelease / ImageUpdateAutomation (not used for killswitch).</summary>
    public string? Name { get; init; }

    /// <summary>Its namespace; defaults to argocd (Argo CD) or flux-system (Flux).</summary>
    public string? Namespace { get; init; }

    /// <summary>The namespace actually used (null for killswitch).</summary>
    public string? EffectiveNamespace => Kind switch
    {
        FreezeKind.Killswitch => null,
        FreezeKind.Argocd or FreezeKind.ArgocdImageUpdater => Namespace ?? "argocd",
        _ => Namespace ?? "flux-system",
    };

    void IConfigSection.Validate(ValidationScope scope)
    {
        if (Kind == FreezeKind.Killswitch)
        {
            foreach (var key in new[] { "name", "namespace" })
                if (scope.Has(key))
                    throw scope.Invalid(key, "does not apply to kind killswitch; its file is gitops.kill_switch_path.");
            return;
        }
        if (Name is null)
            throw scope.Missing("name", $"kind {ConfigSchema.YamlName(Kind)} needs the name of the object to suspend.");
        if (!KubernetesNames.IsSubdomain(Name))
            throw scope.Invalid("name", $"must be {KubernetesNames.SubdomainRule} (got '{Name}').");
        if (Namespace is not null && !KubernetesNames.IsLabel(Namespace))
            throw scope.Invalid("namespace", $"must be {KubernetesNames.LabelRule} (got '{Namespace}').");
    }
}
