using System.Text.Json.Nodes;
using k8s;
using KfmRollback.Engine.Adapters.Kubernetes;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Adapters.GitOpsControllers;

/// <summary>A Flux Kustomization (<c>kustomize.toolkit.fluxcd.io/v1</c>), as flux2 cmd/flux/suspend_kustomization.go.</summary>
public sealed class FluxKustomization(IKubernetes client, string @namespace, string name)
    : FluxDeployer(client, CustomObjectRef.Kustomization(@namespace, name))
{
    public override FreezeKind Kind => FreezeKind.FluxKustomization;

    protected override JsonNode? SourceRef(JsonObject resource) => resource["spec"]?["sourceRef"];
}
