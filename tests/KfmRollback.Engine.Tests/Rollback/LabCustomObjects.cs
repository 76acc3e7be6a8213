using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Adapters.Kubernetes;

namespace KfmRollback.Engine.Tests.Rollback;

/// <summary>
/// What a test reads and edits behind the module's back on the lab's custom objects (an Argo CD
/// Application, a Flux object), straight through the Kubernetes client: the module's own reads go
/// through its controller adapters, which a test must not trust to check them.
/// </summary>
internal static class LabCustomObjects
{
    public static async Task<JsonObject> GetAsync(IKubernetes client, CustomObjectRef target, CancellationToken cancellationToken = default) =>
        Parse(await client.CustomObjects.GetNamespacedCustomObjectAsync(target.Group, target.Version, target.Namespace, target.Plural, target.Name, cancellationToken));

    public static async Task<JsonObject> PatchAsync(IKubernetes client, CustomObjectRef target, JsonObject patch, CancellationToken cancellationToken = default) =>
        Parse(await client.CustomObjects.PatchNamespacedCustomObjectAsync(
            new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch), target.Group, target.Version, target.Namespace, target.Plural, target.Name, cancellationToken: cancellationToken));

    private static JsonObject Parse(object result) => result is JsonElement element
        ? JsonNode.Parse(element.GetRawText())!.AsObject()
        : JsonNode.Parse(KubernetesJson.Serialize(result))!.AsObject();
}
