using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Cluster;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Freeze;

/// <summary>
/// Shared machinery for freezes that flip a field on a custom resource (Argo CD Application,
/// Flux Kustomization/HelmRelease): read, record the prior value in an annotation, patch with a
/// resourceVersion precondition, and restore exactly on thaw.
/// </summary>
public abstract class CustomObjectFreeze : IFreezeMechanism
{
    private readonly IKubernetes _client;

    protected CustomObjectFreeze(IKubernetes client, string environment, string group, string version, string plural, string @namespace, string name)
    {
        _client = client;
        Environment = environment;
        Group = group;
        Version = version;
        Plural = plural;
        Namespace = @namespace;
        Name = name;
    }

    public abstract FreezeKind Kind { get; }
    protected string Environment { get; }
    protected string Group { get; }
    protected string Version { get; }
    protected string Plural { get; }
    protected string Namespace { get; }
    protected string Name { get; }
    protected abstract string KindName { get; }

    public string Target => $"{KindName} {Namespace}/{Name}";

    /// <summary>True when the object, as it stands, would not deploy changes.</summary>
    protected abstract bool IsStopped(JsonObject resource);

    /// <summary>The setting freezing changes, as it is now (restored exactly on thaw).</summary>
    protected abstract JsonNode? CurrentSetting(JsonObject resource);

    /// <summary>The merge-patch fragment of <c>spec</c> that stops deploys.</summary>
    protected abstract JsonObject StopSpec();

    /// <summary>The merge-patch fragment of <c>spec</c> that restores <paramref name="prior"/>.</summary>
    protected abstract JsonObject RestoreSpec(JsonNode? prior);

    /// <summary>Why this object cannot be frozen this way, or null when it can.</summary>
    protected virtual string? WhyNotFreezable(JsonObject resource) => null;

    public async Task<FreezeState> GetAsync(CancellationToken cancellationToken) => Describe(await ReadAsync(cancellationToken).ConfigureAwait(false), changed: false);

    public Task<FreezeState> FreezeAsync(FreezeRequest request, bool dryRun, CancellationToken cancellationToken) =>
        RetryOnConflictAsync(() => FreezeOnceAsync(request, dryRun, cancellationToken));

    public Task<FreezeState> ThawAsync(FreezeRequest request, bool dryRun, CancellationToken cancellationToken) =>
        RetryOnConflictAsync(() => ThawOnceAsync(request, dryRun, cancellationToken));

    /// <summary>
    /// The controller writes status all the time, which moves resourceVersion; a conflict is
    /// answered by reading afresh and deciding again (the decision looks at spec only).
    /// </summary>
    private static async Task<FreezeState> RetryOnConflictAsync(Func<Task<FreezeState>> attempt)
    {
        for (int tries = 1; ; tries++)
        {
            try
            {
                return await attempt().ConfigureAwait(false);
            }
            catch (KfmException ex) when (ex.ErrorId == "FreezeConflict" && tries < 5)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50 * tries)).ConfigureAwait(false);
            }
        }
    }

    private async Task<FreezeState> FreezeOnceAsync(FreezeRequest request, bool dryRun, CancellationToken cancellationToken)
    {
        JsonObject resource = await ReadAsync(cancellationToken).ConfigureAwait(false);
        string? notFreezable = WhyNotFreezable(resource);
        if (notFreezable is not null)
        {
            return Describe(resource, changed: false) with { Freezable = false, Detail = notFreezable };
        }
        if (FreezeRecord.FromAnnotations(Annotations(resource)) is not null && IsStopped(resource))
        {
            return Describe(resource, changed: false) with { Detail = "already frozen; nothing changed" };
        }

        var record = new FreezeRecord(request.IncidentId, request.Actor, request.At, request.Reason, CurrentSetting(resource));
        JsonObject patch = MergePatch(resource, record.ToAnnotationValue(), StopSpec());
        if (dryRun)
        {
            return Describe(resource, changed: false) with { Detail = "would apply merge patch " + patch.ToJsonString() };
        }
        JsonObject updated = await PatchAsync(patch, cancellationToken).ConfigureAwait(false);
        return Describe(updated, changed: true);
    }

    private async Task<FreezeState> ThawOnceAsync(FreezeRequest request, bool dryRun, CancellationToken cancellationToken)
    {
        JsonObject resource = await ReadAsync(cancellationToken).ConfigureAwait(false);
        FreezeRecord? record = FreezeRecord.FromAnnotations(Annotations(resource));
        if (record is null)
        {
            return Describe(resource, changed: false) with
            {
                Detail = IsStopped(resource)
                    ? "stopped, but not by KfmRollback (no freeze record); left as it is: resume it with its own tooling if that is intended"
                    : "not frozen; nothing changed",
            };
        }
        JsonObject patch = MergePatch(resource, null, RestoreSpec(record.Prior));
        if (dryRun)
        {
            return Describe(resource, changed: false) with { Detail = "would apply merge patch " + patch.ToJsonString() };
        }
        JsonObject updated = await PatchAsync(patch, cancellationToken).ConfigureAwait(false);
        return Describe(updated, changed: true);
    }

    private static JsonObject MergePatch(JsonObject resource, string? annotation, JsonObject spec) => new()
    {
        ["metadata"] = new JsonObject
        {
            // The precondition: a concurrent edit makes the apiserver answer 409 instead of being overwritten.
            ["resourceVersion"] = (string?)resource["metadata"]?["resourceVersion"],
            ["annotations"] = new JsonObject { [FreezeRecord.Annotation] = annotation },
        },
        ["spec"] = spec,
    };

    private FreezeState Describe(JsonObject resource, bool changed)
    {
        FreezeRecord? record = FreezeRecord.FromAnnotations(Annotations(resource));
        return new FreezeState
        {
            Environment = Environment,
            Mechanism = Kind,
            Target = Target,
            Frozen = IsStopped(resource),
            IncidentId = record?.IncidentId,
            FrozenBy = record?.FrozenBy,
            FrozenAt = record?.FrozenAt,
            Reason = record?.Reason,
            PriorSettings = record?.Prior?.ToJsonString(),
            Changed = changed,
            Freezable = WhyNotFreezable(resource) is null,
            Detail = WhyNotFreezable(resource),
        };
    }

    protected static IDictionary<string, string>? Annotations(JsonObject resource) =>
        (resource["metadata"]?["annotations"] as JsonObject)?.ToDictionary(p => p.Key, p => p.Value?.GetValue<string>() ?? string.Empty);

    /// <summary>The controller's own report on the object (its <c>status</c>), for evidence; null when it has none.</summary>
    public async Task<JsonNode?> ReadStatusAsync(CancellationToken cancellationToken) =>
        (await ReadAsync(cancellationToken).ConfigureAwait(false))["status"]?.DeepClone();

    private CustomObjectRef Object => new(Group, Version, Plural, Namespace, Name, Target);

    private Task<JsonObject> ReadAsync(CancellationToken cancellationToken) => CustomObjectClient.GetAsync(_client, Object, cancellationToken);

    private Task<JsonObject> PatchAsync(JsonObject patch, CancellationToken cancellationToken) =>
        CustomObjectClient.PatchAsync(_client, Object, patch, cancellationToken, ex => new KfmException("FreezeConflict", KfmErrorKind.ResourceBusy,
            $"{Target} kept changing while it was being frozen or thawed (someone else is editing it). Run the command again: it reads the object afresh.", Target, ex));
}
