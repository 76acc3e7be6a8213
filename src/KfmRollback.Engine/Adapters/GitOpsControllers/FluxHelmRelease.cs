using System.Text.Json.Nodes;
using k8s;
using KfmRollback.Engine.Adapters.Kubernetes;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Adapters.GitOpsControllers;

/// <summary>A Flux HelmRelease (<c>helm.toolkit.fluxcd.io/v2</c>), as flux2 cmd/flux/suspend_helmrelease.go.</summary>
public sealed class FluxHelmRelease(IKubernetes client, string @namespace, string name)
    : FluxDeployer(client, CustomObjectRef.HelmRelease(@namespace, name))
{
    public override FreezeKind Kind => FreezeKind.FluxHelmrelease;

    protected override JsonNode? SourceRef(JsonObject resource) => resource["spec"]?["chart"]?["spec"]?["sourceRef"];
}
