using System.Text.Json.Nodes;
using k8s;
using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Adapters.Kubernetes;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Adapters.GitOpsControllers;

/// <summary>
/// An Argo CD Application. Freeze turns auto-sync off (<c>spec.syncPolicy.automated: null</c>), which
/// also stops self-heal from reverting a cluster rollback; thaw restores the exact prior
/// <c>automated</c> block. Deploying one commit while frozen is one sync operation pinned to it
/// (<c>operation.sync.revision</c>; auto-sync stays off).
/// </summary>
public sealed class ArgoCdApplication : CustomObjectController, IDeployingController
{
    public ArgoCdApplication(IKubernetes client, string @namespace, string name)
        : base(client, CustomObjectRef.Application(@namespace, name))
    {
    }

    public override FreezeKind Kind => FreezeKind.Argocd;

    public override bool IsStopped(JsonObject resource)
    {
        JsonNode? automated = resource["spec"]?["syncPolicy"]?["automated"];
        // Argo CD 3.1+ can keep the block and switch it off with enabled: false.
        return automated is null || automated["enabled"]?.GetValue<bool>() == false;
    }

    public override JsonNode? CurrentSetting(JsonObject resource) => resource["spec"]?["syncPolicy"]?["automated"]?.DeepClone();

    protected override JsonObject StopSpec() => new() { ["syncPolicy"] = new JsonObject { ["automated"] = null } };

    protected override JsonObject RestoreSpec(JsonNode? prior) => new() { ["syncPolicy"] = new JsonObject { ["automated"] = prior?.DeepClone() } };

    public override string? WhyNotFreezable(JsonObject resource)
    {
        bool ownedBySet = (resource["metadata"]?["ownerReferences"] as JsonArray)?
            .Any(o => (string?)o?["kind"] == "ApplicationSet") == true;
        return ownedBySet
            ? "owned by an ApplicationSet, whose controller reverts edits to spec.syncPolicy: freeze it through the ApplicationSet template, an AppProject deny sync window, or the kill switch"
            : null;
    }

    public async Task<string> DeployOnceAsync(DeployOnce request, CancellationToken cancellationToken)
    {
        string sha = request.Sha;
        var operation = new JsonObject
        {
            ["operation"] = new JsonObject
            {
                ["initiatedBy"] = new JsonObject { ["username"] = request.Actor },
                ["info"] = new JsonArray(new JsonObject { ["name"] = "Reason", ["value"] = request.Reason }),
                ["sync"] = new JsonObject { ["revision"] = sha },
            },
        };
        await PatchAsync(operation, null, cancellationToken).ConfigureAwait(false);
        request.Record($"{Object}: one sync operation pinned to {sha[..12]}; auto-sync stays off");
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            JsonObject o = await GetAsync(cancellationToken).ConfigureAwait(false);
            JsonNode? state = o["status"]?["operationState"];
            // Argo clears the operation once it has run it: from then on operationState tells what happened.
            if (o["operation"] is null && Str(state?["operation"]?["sync"]?["revision"]) != sha)
                throw OtherRevision(Object, sha, Str(state?["syncResult"]?["revision"]));
            if (o["operation"] is null && Str(state?["phase"]) is { } phase and not "Running" and not "Terminating")
            {
                if (phase != "Succeeded")
                    throw new KfmException(GitOpsErrorIds.SyncFailed, KfmErrorKind.InvalidOperation,
                        $"{Object} could not sync {sha[..12]} ({phase}: {Str(state?["message"])}). The merge is on the deploy branch and the incident stays frozen; fix the cause, then run Wait-KfmRollback again.", Object.Description);
                string? synced = Str(state?["syncResult"]?["revision"]);
                if (synced != sha)
                    throw OtherRevision(Object, sha, synced);
                return synced;
            }
            request.Progress?.Invoke($"{Object}: syncing {sha[..12]} ({Str(state?["phase"]) ?? "pending"})", 40);
            await Task.Delay(Poll, cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task AwaitHealthyAsync(string sha, CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            JsonObject o = await GetAsync(cancellationToken).ConfigureAwait(false);
            string? synced = Str(o["status"]?["operationState"]?["syncResult"]?["revision"]);
            if (synced != sha)
                throw OtherRevision(Object, sha, synced);
            if (Str(o["status"]?["health"]?["status"]) == "Healthy")
                return;
            await Task.Delay(Poll, cancellationToken).ConfigureAwait(false);
        }
    }
}
