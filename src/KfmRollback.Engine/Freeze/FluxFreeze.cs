using System.Text.Json.Nodes;
using k8s;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Freeze;

/// <summary>
/// Freezes a Flux object with <c>spec.suspend: true</c>, as <c>flux suspend</c> does for every kind,
/// recording who and why (fluxcd/flux2#4232 asks for exactly that). Each kind is a small file that
/// names its API (Kustomization and HelmRelease here; <see cref="FluxImageUpdateFreeze"/>), as the Flux
/// CLI's suspend_&lt;kind&gt;.go files do over one suspend command.
/// </summary>
public sealed class FluxFreeze : CustomObjectFreeze
{
    private readonly FreezeKind _kind;
    private readonly string _kindName;

    internal FluxFreeze(IKubernetes client, string environment, FreezeKind kind, string kindName, string group, string version, string plural, string @namespace, string name)
        : base(client, environment, group, version, plural, @namespace, name)
    {
        _kind = kind;
        _kindName = kindName;
    }

    public static FluxFreeze Kustomization(IKubernetes client, string environment, string @namespace, string name) =>
        new(client, environment, FreezeKind.FluxKustomization, "flux Kustomization", "kustomize.toolkit.fluxcd.io", "v1", "kustomizations", @namespace, name);

    public static FluxFreeze HelmRelease(IKubernetes client, string environment, string @namespace, string name) =>
        new(client, environment, FreezeKind.FluxHelmrelease, "flux HelmRelease", "helm.toolkit.fluxcd.io", "v2", "helmreleases", @namespace, name);

    public override FreezeKind Kind => _kind;
    protected override string KindName => _kindName;

    protected override bool IsStopped(JsonObject resource) => resource["spec"]?["suspend"]?.GetValue<bool>() == true;

    protected override JsonNode? CurrentSetting(JsonObject resource) => JsonValue.Create(resource["spec"]?["suspend"]?.GetValue<bool>() ?? false);

    protected override JsonObject StopSpec() => new() { ["suspend"] = true };

    protected override JsonObject RestoreSpec(JsonNode? prior) => new() { ["suspend"] = prior?.GetValue<bool>() ?? false };
}
