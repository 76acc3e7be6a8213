using System.Text.Json.Nodes;
using k8s;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Freeze;

/// <summary>
/// Suspends a Flux ImageUpdateAutomation (<c>image.toolkit.fluxcd.io/v1</c>) with <c>spec.suspend: true</c>,
/// as <c>flux suspend image update</c> does (flux2 cmd/flux/suspend_image_updateauto.go), so image
/// automation commits no newer image to Git while deploys are frozen (fluxcd/flux2#4676: after a thaw
/// it brings the bad version back). Thaw restores the exact prior value.
/// </summary>
public sealed class FluxImageUpdateFreeze : CustomObjectFreeze
{
    public FluxImageUpdateFreeze(IKubernetes client, string environment, string @namespace, string name)
        : base(client, environment, "image.toolkit.fluxcd.io", "v1", "imageupdateautomations", @namespace, name)
    {
    }

    public override FreezeKind Kind => FreezeKind.FluxImageupdateautomation;
    protected override string KindName => "flux ImageUpdateAutomation";

    protected override bool IsStopped(JsonObject resource) => resource["spec"]?["suspend"]?.GetValue<bool>() == true;

    protected override JsonNode? CurrentSetting(JsonObject resource) => JsonValue.Create(resource["spec"]?["suspend"]?.GetValue<bool>() ?? false);

    protected override JsonObject StopSpec() => new() { ["suspend"] = true };

    protected override JsonObject RestoreSpec(JsonNode? prior) => new() { ["suspend"] = prior?.GetValue<bool>() ?? false };
}
