using k8s;
using KfmRollback.Engine.Adapters.Kubernetes;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Adapters.GitOpsControllers;

/// <summary>
/// A Flux ImageUpdateAutomation (<c>image.toolkit.fluxcd.io/v1</c>), suspended as <c>flux suspend image
/// update</c> does (flux2 cmd/flux/suspend_image_updateauto.go), so image automation commits no newer
/// image to Git while deploys are frozen (fluxcd/flux2#4676: after a thaw it brings the bad version back).
/// It deploys nothing itself.
/// </summary>
public sealed class FluxImageUpdateAutomation(IKubernetes client, string @namespace, string name)
    : FluxSuspendable(client, new CustomObjectRef("image.toolkit.fluxcd.io", "v1", "imageupdateautomations", @namespace, name, $"flux ImageUpdateAutomation {@namespace}/{name}"))
{
    public override FreezeKind Kind => FreezeKind.FluxImageupdateautomation;
}
