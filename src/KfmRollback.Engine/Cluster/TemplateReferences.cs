using k8s.Models;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Cluster;

/// <summary>The ConfigMaps, Secrets and policy bundle a pod template depends on.</summary>
public static class TemplateReferences
{
    public static IReadOnlyList<string> ConfigMaps(V1PodTemplateSpec template)
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (V1Volume volume in template.Spec?.Volumes ?? new List<V1Volume>())
        {
            Add(names, volume.ConfigMap?.Name);
            foreach (V1VolumeProjection projection in volume.Projected?.Sources ?? new List<V1VolumeProjection>())
            {
                Add(names, projection.ConfigMap?.Name);
            }
        }
        foreach (V1Container container in AllContainers(template))
        {
            foreach (V1EnvFromSource source in container.EnvFrom ?? new List<V1EnvFromSource>())
            {
                Add(names, source.ConfigMapRef?.Name);
            }
            foreach (V1EnvVar variable in container.Env ?? new List<V1EnvVar>())
            {
                Add(names, variable.ValueFrom?.ConfigMapKeyRef?.Name);
            }
        }
        return names.ToList();
    }

    public static IReadOnlyList<string> Secrets(V1PodTemplateSpec template)
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (V1Volume volume in template.Spec?.Volumes ?? new List<V1Volume>())
        {
            Add(names, volume.Secret?.SecretName);
            foreach (V1VolumeProjection projection in volume.Projected?.Sources ?? new List<V1VolumeProjection>())
            {
                Add(names, projection.Secret?.Name);
            }
        }
        foreach (V1Container container in AllContainers(template))
        {
            foreach (V1EnvFromSource source in container.EnvFrom ?? new List<V1EnvFromSource>())
            {
                Add(names, source.SecretRef?.Name);
            }
            foreach (V1EnvVar variable in container.Env ?? new List<V1EnvVar>())
            {
                Add(names, variable.ValueFrom?.SecretKeyRef?.Name);
            }
        }
        return names.ToList();
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

    private static void Add(SortedSet<string> names, string? name)
    {
        if (!string.IsNullOrEmpty(name))
        {
            names.Add(name);
        }
    }
}
