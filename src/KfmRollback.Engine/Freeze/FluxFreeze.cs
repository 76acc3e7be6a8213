using System.Text.Json.Nodes;
using k8s;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Freeze;

/// <summary>
/// Freezes a Flux Kustomization or HelmRelease with <c>spec.suspend: true</c>, as
/// <c>flux suspend</c> does, recording who and why (fluxcd/flux2#4232 asks for exactly that).
/// </summary>
public sealed class FluxFreeze : CustomObjectFreeze
{
    private readonly FreezeKind _kind;

    private FluxFreeze(IKubernetes client, string environment, FreezeKind kind, string group, string version, string plural, string @namespace, string name)
        : base(client, environment, group, version, plural, @namespace, name)
    {
        _kind = kind;
    }

    public static FluxFreeze Kustomization(IKubernetes client, string environment, string @namespace, string name) =>
        new(client, environment, FreezeKind.FluxKustomization, "kustomize.toolkit.fluxcd.io", "v1", "kustomizations", @namespace, name);

    public static FluxFreeze HelmRelease(IKubernetes client, string environment, string @namespace, string name) =>
        new(client, environment, FreezeKind.FluxHelmrelease, "helm.toolkit.fluxcd.io", "v2", "helmreleases", @namespace, name);

    public override FreezeKind Kind => _kind;
    protected override string KindName => _kind == FreezeKind.FluxKustomization ? "flux Kustomization" : "flux HelmRelease";

    protected override bool IsStopped(JsonObject resource) => resource["spec"]?["suspend"]?.GetValue<bool>() == true;

    protected override JsonNode? CurrentSetting(JsonObject resource) => JsonValue.Create(resource["spec"]?["suspend"]?.GetValue<bool>() ?? false);

    protected override JsonObject StopSpec() => new() { ["suspend"] = true };

    protected override JsonObject RestoreSpec(JsonNode? prior) => new() { ["suspend"] = prior?.GetValue<bool>() ?? false };
}
