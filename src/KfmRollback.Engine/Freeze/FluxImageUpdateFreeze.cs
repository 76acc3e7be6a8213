using k8s;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Freeze;

/// <summary>
/// Suspends a Flux ImageUpdateAutomation (<c>image.toolkit.fluxcd.io/v1</c>) with <c>spec.suspend: true</c>,
/// as <c>flux suspend image update</c> does (flux2 cmd/flux/suspend_image_updateauto.go), so image
/// automation commits no newer image to Git while deploys are frozen (fluxcd/flux2#4676: after a thaw
/// it brings the bad version back). Thaw restores the exact prior value.
/// </summary>
public static class FluxImageUpdateFreeze
{
    public static FluxFreeze For(IKubernetes client, string environment, string @namespace, string name) =>
        new(client, environment, FreezeKind.FluxImageupdateautomation, "flux ImageUpdateAutomation", "image.toolkit.fluxcd.io", "v1", "imageupdateautomations", @namespace, name);
}
