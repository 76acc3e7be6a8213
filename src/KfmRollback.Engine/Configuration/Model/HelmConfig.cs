using System.Text.RegularExpressions;
using KfmRollback.Engine.Configuration.Binding;

namespace KfmRollback.Engine.Configuration;

/// <summary>
/// The Helm release that deploys the API (environments deployed by <c>helm upgrade</c> or a Flux
/// HelmRelease): read for refs and history, and rolled back as <c>helm rollback</c> does.
/// </summary>
public sealed partial class HelmConfig : IConfigSection
{
    /// <summary>The release name (<c>helm list</c>'s NAME).</summary>
    [RequiredKey]
    public string Release { get; init; } = null!;

    /// <summary>Namespace holding the release's Secrets; absent means <c>cluster.namespace</c>.</summary>
    public string? Namespace { get; init; }

    /// <summary>Revisions kept per release, as helm's <c>--history-max</c> (0 = no limit).</summary>
    [Range(0, 1000)]
    public int HistoryMax { get; init; } = 10;

    /// <summary>The namespace actually used: <see cref="Namespace"/>, else the cluster's.</summary>
    public string EffectiveNamespace(ClusterConfig cluster) => Namespace ?? cluster.Namespace;

    // helm's chartutil.ValidateReleaseName: a DNS-1123 subdomain of at most 53 characters.
    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", RegexOptions.CultureInvariant)]
    private static partial Regex ReleaseName();

    void IConfigSection.Validate(ValidationScope scope)
    {
        if (Release.Length > 53 || !ReleaseName().IsMatch(Release))
            throw scope.Invalid("release", $"is not a valid Helm release name: lowercase a-z, 0-9, '-', '.', at most 53 characters (got '{Release}').");
        if (Namespace is not null && !KubernetesNames.IsLabel(Namespace))
            throw scope.Invalid("namespace", $"must be {KubernetesNames.LabelRule} (got '{Namespace}').");
    }
}
