using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;

namespace KfmRollback.Engine.Adapters.Kubernetes;

/// <summary>One custom resource (an Argo CD Application, a Flux Kustomization) read and merge-patched as JSON.</summary>
public sealed record CustomObjectRef(string Group, string Version, string Plural, string Namespace, string Name, string Description)
{
    public static CustomObjectRef Application(string ns, string name) => new("argoproj.io", "v1alpha1", "applications", ns, name, $"argocd Application {ns}/{name}");
    public static CustomObjectRef Kustomization(string ns, string name) => new("kustomize.toolkit.fluxcd.io", "v1", "kustomizations", ns, name, $"flux Kustomization {ns}/{name}");
    public static CustomObjectRef HelmRelease(string ns, string name) => new("helm.toolkit.fluxcd.io", "v2", "helmreleases", ns, name, $"flux HelmRelease {ns}/{name}");
    public static CustomObjectRef GitRepository(string ns, string name) => new("source.toolkit.fluxcd.io", "v1", "gitrepositories", ns, name, $"flux GitRepository {ns}/{name}");

    public override string ToString() => Description;
}

/// <summary>GET and merge PATCH of custom resources, errors mapped to KfmException in one place.</summary>
public static class CustomObjectClient
{
    public static async Task<JsonObject> GetAsync(IKubernetes client, CustomObjectRef target, CancellationToken cancellationToken)
    {
        try
        {
            object result = await client.CustomObjects.GetNamespacedCustomObjectAsync(target.Group, target.Version, target.Namespace, target.Plural, target.Name, cancellationToken).ConfigureAwait(false);
            return ToJsonObject(result);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw KubernetesErrors.Wrap(ex, $"Reading {target}", target.Description);
        }
    }

    /// <param name="onConflict">The error for a 409 (the object changed under a resourceVersion precondition); null wraps it like any other.</param>
    public static async Task<JsonObject> PatchAsync(IKubernetes client, CustomObjectRef target, JsonObject patch, CancellationToken cancellationToken, Func<Exception, Exception>? onConflict = null)
    {
        try
        {
            object result = await client.CustomObjects.PatchNamespacedCustomObjectAsync(
                new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch), target.Group, target.Version, target.Namespace, target.Plural, target.Name, cancellationToken: cancellationToken).ConfigureAwait(false);
            return ToJsonObject(result);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            if (onConflict is not null && KubernetesErrors.IsConflict(ex))
            {
                throw onConflict(ex);
            }
            throw KubernetesErrors.Wrap(ex, $"Patching {target}", target.Description);
        }
    }

    private static JsonObject ToJsonObject(object result) => result switch
    {
        JsonElement element => JsonNode.Parse(element.GetRawText())!.AsObject(),
        JsonObject node => node,
        _ => JsonNode.Parse(KubernetesJson.Serialize(result))!.AsObject(),
    };
}
