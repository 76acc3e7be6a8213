using System.Globalization;
using System.Text.Json.Nodes;
using k8s;
using KfmRollback.Engine.Cluster;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.GitOps;

namespace KfmRollback.Engine.Rollback.GitOps;

/// <summary>
/// Deploys exactly one merged commit while the incident stays frozen (issue 11): Argo CD gets one
/// sync operation pinned to the commit (<c>operation.sync.revision</c>; auto-sync stays off), Flux is
/// resumed with a <c>reconcile.fluxcd.io/requestedAt</c> request and suspended again as soon as it
/// reports the commit (in a finally, so a timeout or Ctrl+C leaves it frozen too). Then it waits
/// until the controller reports exactly that revision, current, and healthy/ready.
/// </summary>
public sealed class ControlledThaw
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(500);
    private readonly IKubernetes _client;
    private readonly IClock _clock;
    private readonly RollbackReporter _reporter;
    private readonly string _actor;

    public ControlledThaw(IKubernetes client, IClock clock, RollbackReporter reporter, string actor)
    {
        _client = client;
        _clock = clock;
        _reporter = reporter;
        _actor = actor;
    }

    /// <summary>The controllers of an environment that deploy from Git (its Argo CD / Flux freeze mechanisms).</summary>
    public static IReadOnlyList<CustomObjectRef> Controllers(EnvironmentConfig environment) =>
        environment.Freeze.Mechanisms.Select(m => m.Kind switch
        {
            FreezeKind.Argocd => CustomObjectRef.Application(m.EffectiveNamespace!, m.Name!),
            FreezeKind.FluxKustomization => CustomObjectRef.Kustomization(m.EffectiveNamespace!, m.Name!),
            FreezeKind.FluxHelmrelease => CustomObjectRef.HelmRelease(m.EffectiveNamespace!, m.Name!),
            _ => null,
        }).OfType<CustomObjectRef>().ToList();

    /// <summary>Deploys <paramref name="sha"/> through <paramref name="controller"/>; returns the revision it reported.</summary>
    /// <param name="behind">True when a reported commit id is an ancestor of <paramref name="sha"/> (the source has not fetched the merge yet): wait, do not fail.</param>
    public Task<string> DeployAsync(CustomObjectRef controller, string sha, string incidentId, Func<string, bool> behind, CancellationToken cancellationToken) =>
        controller.Plural == "applications"
            ? ArgoAsync(controller, sha, incidentId, cancellationToken)
            : FluxAsync(controller, sha, behind, cancellationToken);

    private async Task<string> ArgoAsync(CustomObjectRef app, string sha, string incidentId, CancellationToken cancellationToken)
    {
        var operation = new JsonObject
        {
            ["operation"] = new JsonObject
            {
                ["initiatedBy"] = new JsonObject { ["username"] = _actor },
                ["info"] = new JsonArray(new JsonObject { ["name"] = "Reason", ["value"] = $"KfmRollback {incidentId}: deploy the merged rollback" }),
                ["sync"] = new JsonObject { ["revision"] = sha },
            },
        };
        await CustomObjectClient.PatchAsync(_client, app, operation, cancellationToken).ConfigureAwait(false);
        _reporter.Record("OPS", $"{app}: one sync operation pinned to {sha[..12]}; auto-sync stays off");
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            JsonObject o = await CustomObjectClient.GetAsync(_client, app, cancellationToken).ConfigureAwait(false);
            JsonNode? state = o["status"]?["operationState"];
            // Argo clears the operation once it has run it: from then on operationState tells what happened.
            if (o["operation"] is null && Str(state?["operation"]?["sync"]?["revision"]) != sha)
                throw OtherRevision(app, sha, Str(state?["syncResult"]?["revision"]));
            if (o["operation"] is null && Str(state?["phase"]) is { } phase and not "Running" and not "Terminating")
            {
                if (phase != "Succeeded")
                    throw new KfmException(GitOpsErrorIds.SyncFailed, KfmErrorKind.InvalidOperation,
                        $"{app} could not sync {sha[..12]} ({phase}: {Str(state?["message"])}). The merge is on the deploy branch and the incident stays frozen; fix the cause, then run Wait-KfmRollback again.", app.Description);
                string? synced = Str(state?["syncResult"]?["revision"]);
                if (synced != sha)
                    throw OtherRevision(app, sha, synced);
                return synced;
            }
            _reporter.Progress?.Invoke($"{app}: syncing {sha[..12]} ({Str(state?["phase"]) ?? "pending"})", 40);
            await Task.Delay(Poll, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<string> FluxAsync(CustomObjectRef target, string sha, Func<string, bool> behind, CancellationToken cancellationToken)
    {
        JsonObject before = await CustomObjectClient.GetAsync(_client, target, cancellationToken).ConfigureAwait(false);
        bool suspended = before["spec"]?["suspend"]?.GetValue<bool>() == true;
        string token = _clock.UtcNow.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff00'Z'", CultureInfo.InvariantCulture);
        var request = new JsonObject { ["metadata"] = new JsonObject { ["annotations"] = new JsonObject { ["reconcile.fluxcd.io/requestedAt"] = token } } };
        await RequestSourceAsync(target, before, request, cancellationToken).ConfigureAwait(false);
        var resume = (JsonObject)request.DeepClone();
        resume["spec"] = new JsonObject { ["suspend"] = false };
        try
        {
            await CustomObjectClient.PatchAsync(_client, target, resume, cancellationToken).ConfigureAwait(false);
            _reporter.Record("OPS", suspended ? $"{target}: resumed for one reconcile of {sha[..12]}" : $"{target}: reconcile of {sha[..12]} requested (it was not suspended)");
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                JsonObject o = await CustomObjectClient.GetAsync(_client, target, cancellationToken).ConfigureAwait(false);
                JsonNode? ready = (o["status"]?["conditions"] as JsonArray)?.FirstOrDefault(c => Str(c?["type"]) == "Ready");
                long generation = o["metadata"]?["generation"]?.GetValue<long>() ?? 0;
                string? applied = Str(o["status"]?["lastAppliedRevision"]);
                string? appliedSha = applied?[(applied.IndexOf("sha1:", StringComparison.Ordinal) is var i and >= 0 ? i + 5 : 0)..];
                bool current = Str(o["status"]?["lastHandledReconcileAt"]) == token && (ready?["observedGeneration"]?.GetValue<long>() ?? -1) == generation;
                if (current && appliedSha is not null && appliedSha != sha && !behind(appliedSha))
                    throw OtherRevision(target, sha, applied);
                if (current && appliedSha == sha && Str(ready?["status"]) == "True")
                    return applied!;
                _reporter.Progress?.Invoke($"{target}: reconciling {sha[..12]} (applied {applied ?? "nothing yet"})", 40);
                await Task.Delay(Poll, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            if (suspended)
            {
                // Re-freeze even when the wait timed out or was cancelled: the incident stays frozen.
                await CustomObjectClient.PatchAsync(_client, target, new JsonObject { ["spec"] = new JsonObject { ["suspend"] = true } }, CancellationToken.None).ConfigureAwait(false);
                _reporter.Record("OPS", $"{target}: suspended again");
            }
        }
    }

    /// <summary>flux reconcile --with-source: ask the GitRepository to fetch now too, so it does not lag the merge by its interval.</summary>
    private async Task RequestSourceAsync(CustomObjectRef target, JsonObject resource, JsonObject request, CancellationToken cancellationToken)
    {
        JsonNode? source = target.Plural == "kustomizations" ? resource["spec"]?["sourceRef"] : resource["spec"]?["chart"]?["spec"]?["sourceRef"];
        if (Str(source?["kind"]) != "GitRepository" || Str(source?["name"]) is not { } name)
            return;
        var repo = CustomObjectRef.GitRepository(Str(source?["namespace"]) ?? target.Namespace, name);
        await CustomObjectClient.PatchAsync(_client, repo, (JsonObject)request.DeepClone(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>After the rollout: the controller reports <paramref name="revision"/> and Healthy (Argo) / Ready (Flux).</summary>
    public async Task AwaitHealthyAsync(CustomObjectRef controller, string sha, CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            JsonObject o = await CustomObjectClient.GetAsync(_client, controller, cancellationToken).ConfigureAwait(false);
            if (controller.Plural == "applications")
            {
                string? synced = Str(o["status"]?["operationState"]?["syncResult"]?["revision"]);
                if (synced != sha)
                    throw OtherRevision(controller, sha, synced);
                if (Str(o["status"]?["health"]?["status"]) == "Healthy")
                    return;
            }
            else if ((o["status"]?["conditions"] as JsonArray)?.Any(c => Str(c?["type"]) == "Ready" && Str(c?["status"]) == "True") == true)
            {
                return;
            }
            await Task.Delay(Poll, cancellationToken).ConfigureAwait(false);
        }
    }

    private static KfmException OtherRevision(CustomObjectRef controller, string sha, string? reported) =>
        new(GitOpsErrorIds.ReconciledOtherRevision, KfmErrorKind.InvalidOperation,
            $"{controller} deployed {reported ?? "nothing"}, not the merged rollback {sha[..12]}: another change reached the cluster. The rollback is not verified; freeze again (Start-KfmFreeze), compare Get-KfmApiRef with Git, then decide.", controller.Description);

    private static string? Str(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}
