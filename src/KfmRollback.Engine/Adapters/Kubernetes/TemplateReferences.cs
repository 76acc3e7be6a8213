using k8s.Models;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Adapters.Kubernetes;

/// <summary>The ConfigMaps, Secrets and policy bundle a pod template depends on.</summary>
public static class TemplateReferences
{
    public static IReadOnlyList<string> ConfigMaps(V1PodTemplateSpec template) => Names(template,
        volume => volume.ConfigMap?.Name, projection => projection.ConfigMap?.Name,
        source => source.ConfigMapRef?.Name, variable => variable.ValueFrom?.ConfigMapKeyRef?.Name);

    public static IReadOnlyList<string> Secrets(V1PodTemplateSpec template) => Names(template,
        volume => volume.Secret?.SecretName, projection => projection.Secret?.Name,
        source => source.SecretRef?.Name, variable => variable.ValueFrom?.SecretKeyRef?.Name);

    /// <summary>Every place a pod can reference a ConfigMap or Secret: volumes, projected volumes, envFrom, env.</summary>
    private static IReadOnlyList<string> Names(V1PodTemplateSpec template, Func<V1Volume, string?> volume, Func<V1VolumeProjection, string?> projection,
        Func<V1EnvFromSource, string?> envFrom, Func<V1EnvVar, string?> env)
    {
        var volumes = template.Spec?.Volumes ?? new List<V1Volume>();
        var containers = AllContainers(template).ToList();
        return volumes.Select(volume)
            .Concat(volumes.SelectMany(v => v.Projected?.Sources ?? new List<V1VolumeProjection>()).Select(projection))
            .Concat(containers.SelectMany(c => c.EnvFrom ?? new List<V1EnvFromSource>()).Select(envFrom))
            .Concat(containers.SelectMany(c => c.Env ?? new List<V1EnvVar>()).Select(env))
            .Where(name => !string.IsNullOrEmpty(name))
            .Select(name => name!)
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>
    /// The bundle ref the template carries (env var value or template annotation), or, when the
    /// configuration keeps it in a ConfigMap, that ConfigMap's name as <c>configmap/&lt;name&gt;#&lt;key&gt;</c>.
    /// </summary>
    public static string? PolicyBundleRef(V1PodTemplateSpec template, string container, PolicySurfaceConfig? surface)
    {
        if (surface is null)
        {
            return null;
        }
        if (surface.Env is { } env)
        {
            return AllContainers(template).FirstOrDefault(c => c.Name == container)?.Env?.FirstOrDefault(e => e.Name == env)?.Value;
        }
        if (surface.Annotation is { } annotation)
        {
            return template.Metadata?.Annotations?.TryGetValue(annotation, out string? value) == true ? value : null;
        }
        return $"configmap/{surface.Configmap}#{surface.Key}";
    }

    private static IEnumerable<V1Container> AllContainers(V1PodTemplateSpec template) =>
        (template.Spec?.Containers ?? new List<V1Container>()).Concat(template.Spec?.InitContainers ?? new List<V1Container>());
}
