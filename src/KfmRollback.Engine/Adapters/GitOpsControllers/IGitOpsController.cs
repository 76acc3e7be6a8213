using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Adapters.Kubernetes;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Adapters.GitOpsControllers;

/// <summary>
/// One GitOps controller object that deploys or automates deploys (an Argo CD Application, a Flux
/// Kustomization, HelmRelease or ImageUpdateAutomation, Argo CD Image Updater's annotation), behind one
/// interface as the Flux CLI's <c>suspendable</c> is: one file per kind, and the Freeze step and the
/// GitOps rollback's controlled thaw know no kind. It stops and restores exactly; who froze and why
/// is the Freeze step's business, kept in <see cref="RecordAnnotation"/>.
/// </summary>
public interface IGitOpsController
{
    FreezeKind Kind { get; }

    /// <summary>The object, for reads, patches and messages.</summary>
    CustomObjectRef Object { get; }

    /// <summary>The annotation the freeze record lives in; controllers sharing an object each keep their own.</summary>
    string RecordAnnotation { get; }

    Task<JsonObject> GetAsync(CancellationToken cancellationToken);

    /// <summary>Merge-patches the object; a 409 (the object changed under the precondition) becomes <paramref name="onConflict"/>'s error.</summary>
    Task<JsonObject> PatchAsync(JsonObject patch, Func<Exception, Exception>? onConflict, CancellationToken cancellationToken);

    /// <summary>True when the object, as it stands, would not deploy changes.</summary>
    bool IsStopped(JsonObject resource);

    /// <summary>The setting that freezing changes, as it is now (restored exactly on thaw).</summary>
    JsonNode? CurrentSetting(JsonObject resource);

    /// <summary>The merge patch that stops deploys (Freeze).</summary>
    JsonObject FreezePatch();

    /// <summary>The merge patch that restores <paramref name="prior"/> (Thaw).</summary>
    JsonObject ThawPatch(JsonNode? prior);

    /// <summary>Why this object cannot be frozen this way, or null when it can.</summary>
    string? WhyNotFreezable(JsonObject resource);
}

/// <summary>
/// A controller that deploys from Git (Argo CD Application, Flux Kustomization and HelmRelease): it
/// can deploy exactly one commit while frozen and report when that commit runs healthy.
/// </summary>
public interface IDeployingController : IGitOpsController
{
    /// <summary>Deploys exactly <see cref="DeployOnce.Sha"/> and leaves the controller as frozen as it found it; returns the revision it reported.</summary>
    Task<string> DeployOnceAsync(DeployOnce request, CancellationToken cancellationToken);

    /// <summary>Waits until the controller reports <paramref name="sha"/> and Healthy (Argo CD) / Ready (Flux).</summary>
    Task AwaitHealthyAsync(string sha, CancellationToken cancellationToken);
}

/// <summary>One deploy of one commit: who asks and why (recorded by the controller where it can), how to tell a lagging source, and where to report.</summary>
/// <param name="Behind">True when a reported commit id is an ancestor of <paramref name="Sha"/> (the source has not fetched the merge yet): wait, do not fail.</param>
/// <param name="Record">A line for the incident timeline (what was changed on the controller).</param>
public sealed record DeployOnce(string Sha, string Actor, string Reason, Func<string, bool> Behind, Action<string> Record, Action<string, int>? Progress, IClock Clock);

/// <summary>The controllers an environment configures (its freeze mechanisms that live in the cluster): the one place that maps a kind to its file.</summary>
public static class GitOpsControllerKinds
{
    /// <summary>The controller of <paramref name="mechanism"/>, or null for a mechanism that is no cluster object (the kill switch).</summary>
    public static IGitOpsController? For(IKubernetes client, FreezeMechanism mechanism)
    {
        string ns = mechanism.EffectiveNamespace!, name = mechanism.Name!;
        return mechanism.Kind switch
        {
            FreezeKind.Argocd => new ArgoCdApplication(client, ns, name),
            FreezeKind.FluxKustomization => new FluxKustomization(client, ns, name),
            FreezeKind.FluxHelmrelease => new FluxHelmRelease(client, ns, name),
            FreezeKind.FluxImageupdateautomation => new FluxImageUpdateAutomation(client, ns, name),
            FreezeKind.ArgocdImageUpdater => new ArgoCdImageUpdater(client, ns, name),
            _ => null,
        };
    }

    /// <summary>The controllers of <paramref name="environment"/> that deploy from Git, in configuration order.</summary>
    public static IReadOnlyList<IDeployingController> Deploying(IKubernetes client, EnvironmentConfig environment) =>
        environment.Freeze.Mechanisms.Select(m => For(client, m)).OfType<IDeployingController>().ToList();
}

/// <summary>What every controller object shares: read and merge-patch it as JSON, stop and restore a field under <c>spec</c>.</summary>
public abstract class CustomObjectController : IGitOpsController
{
    /// <summary>The annotation a freeze record lives in unless a controller keeps its own.</summary>
    public const string DefaultRecordAnnotation = "kfm.dev/freeze";

    protected CustomObjectController(IKubernetes client, CustomObjectRef target)
    {
        Client = client;
        Object = target;
    }

    protected IKubernetes Client { get; }
    public CustomObjectRef Object { get; }
    public abstract FreezeKind Kind { get; }
    public virtual string RecordAnnotation => DefaultRecordAnnotation;

    public Task<JsonObject> GetAsync(CancellationToken cancellationToken) => GetAsync(Object, cancellationToken);

    public Task<JsonObject> PatchAsync(JsonObject patch, Func<Exception, Exception>? onConflict, CancellationToken cancellationToken) =>
        PatchAsync(Object, patch, onConflict, cancellationToken);

    /// <summary>GET of <paramref name="target"/> (this object or one it names, such as its source) as JSON, errors mapped to KfmException.</summary>
    protected async Task<JsonObject> GetAsync(CustomObjectRef target, CancellationToken cancellationToken)
    {
        try
        {
            object result = await Client.CustomObjects.GetNamespacedCustomObjectAsync(target.Group, target.Version, target.Namespace, target.Plural, target.Name, cancellationToken).ConfigureAwait(false);
            return ToJsonObject(result);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw KubernetesErrors.Wrap(ex, $"Reading {target}", target.Description);
        }
    }

    /// <summary>Merge PATCH of <paramref name="target"/>; a 409 becomes <paramref name="onConflict"/>'s error (null wraps it like any other).</summary>
    protected async Task<JsonObject> PatchAsync(CustomObjectRef target, JsonObject patch, Func<Exception, Exception>? onConflict, CancellationToken cancellationToken)
    {
        try
        {
            object result = await Client.CustomObjects.PatchNamespacedCustomObjectAsync(
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

    public abstract bool IsStopped(JsonObject resource);
    public abstract JsonNode? CurrentSetting(JsonObject resource);

    /// <summary>The fragment of <c>spec</c> that stops deploys.</summary>
    protected abstract JsonObject StopSpec();

    /// <summary>The fragment of <c>spec</c> that restores <paramref name="prior"/>.</summary>
    protected abstract JsonObject RestoreSpec(JsonNode? prior);

    public virtual JsonObject FreezePatch() => new() { ["spec"] = StopSpec() };
    public virtual JsonObject ThawPatch(JsonNode? prior) => new() { ["spec"] = RestoreSpec(prior) };
    public virtual string? WhyNotFreezable(JsonObject resource) => null;

    protected static string? Str(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    protected static KfmException OtherRevision(CustomObjectRef controller, string sha, string? reported) =>
        new(Git.GitOpsErrorIds.ReconciledOtherRevision, KfmErrorKind.InvalidOperation,
            $"{controller} deployed {reported ?? "nothing"}, not the merged rollback {sha[..12]}: another change reached the cluster. The rollback is not verified; freeze again (Start-KfmFreeze), compare Get-KfmApiRef with Git, then decide.", controller.Description);

    /// <summary>How often a deploy or health wait reads the controller again.</summary>
    protected static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(500);
}
