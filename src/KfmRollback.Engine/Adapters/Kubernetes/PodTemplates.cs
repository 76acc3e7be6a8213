using k8s.Models;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Adapters.Kubernetes;

/// <summary>Facts about a pod template that every reader and mechanism shares.</summary>
public static class PodTemplates
{
    /// <summary>The image of the container the rollback is about; several containers need a choice.</summary>
    public static string ContainerImage(V1PodTemplateSpec template, string? container, string deployment)
    {
        IList<V1Container> containers = template.Spec?.Containers ?? new List<V1Container>();
        if (container is not null)
        {
            return containers.FirstOrDefault(c => c.Name == container)?.Image
                ?? throw new KfmException("ContainerNotFound", KfmErrorKind.ObjectNotFound,
                    $"Deployment \"{deployment}\" has no container \"{container}\"; it has {string.Join(", ", containers.Select(c => c.Name))}.", container);
        }
        if (containers.Count == 1)
        {
            return containers[0].Image;
        }
        throw new KfmException("ContainerAmbiguous", KfmErrorKind.Ambiguous,
            $"Deployment \"{deployment}\" has {containers.Count} containers ({string.Join(", ", containers.Select(c => c.Name))}); " +
            "name the API container with -Container or cluster.container in the configuration.", deployment);
    }

    /// <summary>The container the rollback is about: the configured one, or the only one.</summary>
    public static string ResolveContainerName(V1PodTemplateSpec template, string? container, string deployment)
    {
        if (container is not null)
        {
            ContainerImage(template, container, deployment);
            return container;
        }
        ContainerImage(template, null, deployment);
        return template.Spec.Containers[0].Name;
    }
}
