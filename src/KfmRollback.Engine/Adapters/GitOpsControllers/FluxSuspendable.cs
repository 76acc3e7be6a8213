using System.Globalization;
using System.Text.Json.Nodes;
using k8s;
using KfmRollback.Engine.Adapters.Kubernetes;

namespace KfmRollback.Engine.Adapters.GitOpsControllers;

/// <summary>
/// A Flux object stopped with <c>spec.suspend: true</c>, as <c>flux suspend</c> does for every kind
/// (fluxcd/flux2#4232 asks for recording who and why, which the freeze record does). Each kind is a
/// small file that names its API, as the Flux CLI's suspend_&lt;kind&gt;.go files do.
/// </summary>
public abstract class FluxSuspendable : CustomObjectController
{
    protected FluxSuspendable(IKubernetes client, CustomObjectRef target)
        : base(client, target)
    {
    }

    public override bool IsStopped(JsonObject resource) => resource["spec"]?["suspend"]?.GetValue<bool>() == true;

    public override JsonNode? CurrentSetting(JsonObject resource) => JsonValue.Create(resource["spec"]?["suspend"]?.GetValue<bool>() ?? false);

    protected override JsonObject StopSpec() => new() { ["suspend"] = true };

    protected override JsonObject RestoreSpec(JsonNode? prior) => new() { ["suspend"] = prior?.GetValue<bool>() ?? false };
}

/// <summary>
/// A Flux object that deploys from a source (Kustomization, HelmRelease). One commit is deployed
/// while frozen by resuming it with a <c>reconcile.fluxcd.io/requestedAt</c> request (and its
/// GitRepository, as <c>flux reconcile --with-source</c>) and suspending it again as soon as it
/// reports the commit, in a finally, so a timeout or Ctrl+C leaves it frozen too.
/// </summary>
public abstract class FluxDeployer : FluxSuspendable, IDeployingController
{
    protected FluxDeployer(IKubernetes client, CustomObjectRef target)
        : base(client, target)
    {
    }

    /// <summary>Where the object names its source (<c>spec.sourceRef</c>, <c>spec.chart.spec.sourceRef</c>).</summary>
    protected abstract JsonNode? SourceRef(JsonObject resource);

    public async Task<string> DeployOnceAsync(DeployOnce request, CancellationToken cancellationToken)
    {
        string sha = request.Sha;
        JsonObject before = await GetAsync(cancellationToken).ConfigureAwait(false);
        bool suspended = IsStopped(before);
        string token = request.Clock.UtcNow.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff00'Z'", CultureInfo.InvariantCulture);
        var reconcile = new JsonObject { ["metadata"] = new JsonObject { ["annotations"] = new JsonObject { ["reconcile.fluxcd.io/requestedAt"] = token } } };
        await RequestSourceAsync(before, reconcile, cancellationToken).ConfigureAwait(false);
        var resume = (JsonObject)reconcile.DeepClone();
        resume["spec"] = new JsonObject { ["suspend"] = false };
        try
        {
            await PatchAsync(resume, null, cancellationToken).ConfigureAwait(false);
            request.Record(suspended ? $"{Object}: resumed for one reconcile of {sha[..12]}" : $"{Object}: reconcile of {sha[..12]} requested (it was not suspended)");
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                JsonObject o = await GetAsync(cancellationToken).ConfigureAwait(false);
                JsonNode? ready = (o["status"]?["conditions"] as JsonArray)?.FirstOrDefault(c => Str(c?["type"]) == "Ready");
                long generation = o["metadata"]?["generation"]?.GetValue<long>() ?? 0;
                string? applied = Str(o["status"]?["lastAppliedRevision"]);
                string? appliedSha = applied?[(applied.IndexOf("sha1:", StringComparison.Ordinal) is var i and >= 0 ? i + 5 : 0)..];
                bool current = Str(o["status"]?["lastHandledReconcileAt"]) == token && (ready?["observedGeneration"]?.GetValue<long>() ?? -1) == generation;
                if (current && appliedSha is not null && appliedSha != sha && !request.Behind(appliedSha))
                    throw OtherRevision(Object, sha, applied);
                if (current && appliedSha == sha && Str(ready?["status"]) == "True")
                    return applied!;
                request.Progress?.Invoke($"{Object}: reconciling {sha[..12]} (applied {applied ?? "nothing yet"})", 40);
                await Task.Delay(Poll, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            if (suspended)
            {
                // Re-freeze even when the wait timed out or was cancelled: the incident stays frozen.
                await PatchAsync(new JsonObject { ["spec"] = new JsonObject { ["suspend"] = true } }, null, CancellationToken.None).ConfigureAwait(false);
                request.Record($"{Object}: suspended again");
            }
        }
    }

    /// <summary>flux reconcile --with-source: ask the GitRepository to fetch now too, so it does not lag the merge by its interval.</summary>
    private async Task RequestSourceAsync(JsonObject resource, JsonObject reconcile, CancellationToken cancellationToken)
    {
        JsonNode? source = SourceRef(resource);
        if (Str(source?["kind"]) != "GitRepository" || Str(source?["name"]) is not { } name)
            return;
        var repo = CustomObjectRef.GitRepository(Str(source?["namespace"]) ?? Object.Namespace, name);
        await PatchAsync(repo, (JsonObject)reconcile.DeepClone(), null, cancellationToken).ConfigureAwait(false);
    }

    public async Task AwaitHealthyAsync(string sha, CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            JsonObject o = await GetAsync(cancellationToken).ConfigureAwait(false);
            if ((o["status"]?["conditions"] as JsonArray)?.Any(c => Str(c?["type"]) == "Ready" && Str(c?["status"]) == "True") == true)
                return;
            await Task.Delay(Poll, cancellationToken).ConfigureAwait(false);
        }
    }
}
