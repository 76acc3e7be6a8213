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

    /// <summary>The merge patch that stops deploys (default: <see cref="StopSpec"/> under <c>spec</c>; a mechanism that lives in an annotation overrides it).</summary>
    protected virtual JsonObject StopPatch() => new() { ["spec"] = StopSpec() };

    /// <summary>The merge patch that restores <paramref name="prior"/> (default: <see cref="RestoreSpec"/> under <c>spec</c>).</summary>
    protected virtual JsonObject RestorePatch(JsonNode? prior) => new() { ["spec"] = RestoreSpec(prior) };

    /// <summary>
    /// The annotation holding this mechanism's freeze record. Mechanisms that share an object (Argo CD's
    /// auto-sync and Argo CD Image Updater's annotation on one Application) each keep their own, so one's
    /// prior settings never overwrite the other's.
    /// </summary>
    protected virtual string RecordAnnotation => FreezeRecord.Annotation;

    /// <summary>Why this object cannot be frozen this way, or null when it can.</summary>
    protected virtual string? WhyNotFreezable(JsonObject resource) => null;

    public async Task<FreezeState> GetAsync(CancellationToken cancellationToken) => Describe(await ReadAsync(cancellationToken).ConfigureAwait(false), FreezeAction.None);

    public Task<FreezeState> FreezeAsync(FreezeRequest request, bool dryRun, CancellationToken cancellationToken) =>
        RetryOnConflictAsync(() => FreezeOnceAsync(request, dryRun, cancellationToken));

    public Task<FreezeState> ThawAsync(FreezeRequest request, bool dryRun, CancellationToken cancellationToken) =>
        RetryOnConflictAsync(() => ThawOnceAsync(request, dryRun, cancellationToken));

    /// <summary>
    /// The controller writes status all the time, which moves resourceVersion; a conflict is
    /// answered by reading afresh and deciding again (the decision looks at spec and the record only).
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
            return Describe(resource, FreezeAction.None) with { Freezable = false, Detail = notFreezable };
        }
        FreezeRecord? existing = FreezeRecord.FromAnnotations(Annotations(resource), RecordAnnotation);
        if (existing is not null && IsStopped(resource))
        {
            if (existing.IsHeldBy(request.IncidentId))
            {
                return Describe(resource, FreezeAction.None) with { Detail = "already frozen for this incident; nothing changed" };
            }
            // Frozen for another incident: this one holds it too, so one incident's thaw cannot lift it under the other.
            JsonObject join = MergePatch(resource, existing.Join(request).ToAnnotationValue(), new JsonObject());
            string others = string.Join(", ", existing.Holders.Select(h => h.IncidentId));
            if (dryRun)
            {
                return Describe(resource, FreezeAction.None) with { Detail = $"already frozen for {others}; would add {request.IncidentId} to its holders: merge patch {join.ToJsonString()}" };
            }
            return Describe(await PatchAsync(join, cancellationToken).ConfigureAwait(false), FreezeAction.Joined) with { Detail = $"already frozen for {others}; {request.IncidentId} holds it too" };
        }

        // Resumed behind the module's back while incidents held it: they still hold it, with this one.
        FreezeRecord record = FreezeRecord.For(request, CurrentSetting(resource));
        if (existing is not null)
        {
            var kept = existing.Holders.Where(h => !string.Equals(h.IncidentId, request.IncidentId, StringComparison.OrdinalIgnoreCase));
            record = record with { Holders = kept.Append(FreezeHolder.Of(request)).ToList() };
        }
        JsonObject patch = MergePatch(resource, record.ToAnnotationValue(), StopPatch());
        if (dryRun)
        {
            return Describe(resource, FreezeAction.None) with { Detail = "would apply merge patch " + patch.ToJsonString() };
        }
        JsonObject updated = await PatchAsync(patch, cancellationToken).ConfigureAwait(false);
        return Describe(updated, FreezeAction.Froze);
    }

    private async Task<FreezeState> ThawOnceAsync(FreezeRequest request, bool dryRun, CancellationToken cancellationToken)
    {
        JsonObject resource = await ReadAsync(cancellationToken).ConfigureAwait(false);
        FreezeRecord? record = FreezeRecord.FromAnnotations(Annotations(resource), RecordAnnotation);
        if (record is null)
        {
            return Describe(resource, FreezeAction.None) with
            {
                Detail = IsStopped(resource)
                    ? "stopped, but not by KfmRollback (no freeze record); left as it is: resume it with its own tooling if that is intended"
                    : "not frozen; nothing changed",
            };
        }
        bool held = record.IsHeldBy(request.IncidentId);
        IReadOnlyList<FreezeHolder> others = record.Release(request.IncidentId).Holders;
        // Holders may still be open: only their own Stop-KfmFreeze (or a forced thaw on the record) lifts the freeze.
        if (others.Count > 0 && !request.Force)
        {
            string still = $"still frozen: held by {string.Join(", ", others)}";
            if (!held)
            {
                return Describe(resource, FreezeAction.None) with { Detail = $"{still}; {request.IncidentId} holds no part of it. Each holder stops its own freeze, or -Force -Reason lifts it for all" };
            }
            JsonObject release = MergePatch(resource, record.Release(request.IncidentId).ToAnnotationValue(), new JsonObject());
            if (dryRun)
            {
                return Describe(resource, FreezeAction.None) with { Detail = $"would remove {request.IncidentId} from the holders and leave it frozen ({still}): merge patch {release.ToJsonString()}" };
            }
            return Describe(await PatchAsync(release, cancellationToken).ConfigureAwait(false), FreezeAction.Released) with { Detail = $"{request.IncidentId} released its hold; {still}" };
        }
        JsonObject patch = MergePatch(resource, null, RestorePatch(record.Prior));
        if (dryRun)
        {
            return Describe(resource, FreezeAction.None) with { Detail = "would apply merge patch " + patch.ToJsonString() + (others.Count > 0 ? $" although {string.Join(", ", others.Select(o => o.IncidentId))} still hold it (forced)" : "") };
        }
        JsonObject updated = await PatchAsync(patch, cancellationToken).ConfigureAwait(false);
        return Describe(updated, FreezeAction.Thawed) with
        {
            Overridden = others,
            Detail = others.Count > 0 ? $"thawed although {string.Join(", ", others)} still held it (forced: {request.Reason})" : null,
        };
    }

    /// <summary>
    /// <paramref name="body"/> with the precondition and the freeze record (null removes it) merged into
    /// its metadata: a concurrent edit makes the apiserver answer 409 instead of being overwritten.
    /// </summary>
    private JsonObject MergePatch(JsonObject resource, string? annotation, JsonObject body)
    {
        JsonObject metadata = body["metadata"] as JsonObject ?? new JsonObject();
        body["metadata"] = metadata;
        metadata["resourceVersion"] = (string?)resource["metadata"]?["resourceVersion"];
        JsonObject annotations = metadata["annotations"] as JsonObject ?? new JsonObject();
        metadata["annotations"] = annotations;
        annotations[RecordAnnotation] = annotation;
        return body;
    }

    private FreezeState Describe(JsonObject resource, FreezeAction action)
    {
        FreezeRecord? record = FreezeRecord.FromAnnotations(Annotations(resource), RecordAnnotation);
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
            Holders = record?.Holders ?? Array.Empty<FreezeHolder>(),
            Changed = action != FreezeAction.None,
            Action = action,
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
