using System.Text.Json.Nodes;
using k8s;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Freeze;

/// <summary>
/// Freezes an Argo CD Application by turning auto-sync off (<c>spec.syncPolicy.automated: null</c>),
/// which also stops self-heal from reverting a cluster rollback; thaw restores the exact prior
/// <c>automated</c> block.
/// </summary>
public sealed class ArgoCdFreeze : CustomObjectFreeze
{
    public ArgoCdFreeze(IKubernetes client, string environment, string @namespace, string name)
        : base(client, environment, "argoproj.io", "v1alpha1", "applications", @namespace, name)
    {
    }

    public override FreezeKind Kind => FreezeKind.Argocd;
    protected override string KindName => "argocd Application";

    protected override bool IsStopped(JsonObject resource)
    {
        JsonNode? automated = resource["spec"]?["syncPolicy"]?["automated"];
        // Argo CD 3.1+ can keep the block and switch it off with enabled: false.
        return automated is null || automated["enabled"]?.GetValue<bool>() == false;
    }

    protected override JsonNode? CurrentSetting(JsonObject resource) => resource["spec"]?["syncPolicy"]?["automated"]?.DeepClone();

    protected override JsonObject StopSpec() => new() { ["syncPolicy"] = new JsonObject { ["automated"] = null } };

    protected override JsonObject RestoreSpec(JsonNode? prior) => new() { ["syncPolicy"] = new JsonObject { ["automated"] = prior?.DeepClone() } };

    protected override string? WhyNotFreezable(JsonObject resource)
    {
        bool ownedBySet = (resource["metadata"]?["ownerReferences"] as JsonArray)?
            .Any(o => (string?)o?["kind"] == "ApplicationSet") == true;
        return ownedBySet
            ? "owned by an ApplicationSet, whose controller reverts edits to spec.syncPolicy: freeze it through the ApplicationSet template, an AppProject deny sync window, or the kill switch"
            : null;
    }
}
