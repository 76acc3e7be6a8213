using System.Text.Json.Nodes;
using KfmRollback.Engine.Adapters.GitOpsControllers;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Freeze;

/// <summary>
/// The freeze of one GitOps controller object (<see cref="IGitOpsController"/>: Argo CD, Flux, image
/// automation; a new controller is one adapter file): read, record who froze and why with the prior
/// value in the controller's annotation, patch with a resourceVersion precondition, restore exactly on
/// thaw, and keep the freeze while other incidents hold it. The controller knows how to stop and
/// restore; this class knows holders and records.
/// </summary>
public sealed class ControllerFreeze : IFreezeMechanism
{
    private readonly IGitOpsController _controller;

    public ControllerFreeze(IGitOpsController controller, string environment)
    {
        _controller = controller;
        Environment = environment;
    }

    public FreezeKind Kind => _controller.Kind;
    private string Environment { get; }

    public string Target => _controller.Object.Description;

    /// <summary>The controller this freeze acts on.</summary>
    public IGitOpsController Controller => _controller;

    private string RecordAnnotation => _controller.RecordAnnotation;

    private bool IsStopped(JsonObject resource) => _controller.IsStopped(resource);

    private JsonNode? CurrentSetting(JsonObject resource) => _controller.CurrentSetting(resource);

    private JsonObject StopPatch() => _controller.FreezePatch();

    private JsonObject RestorePatch(JsonNode? prior) => _controller.ThawPatch(prior);

    private string? WhyNotFreezable(JsonObject resource) => _controller.WhyNotFreezable(resource);

    public async Task<FreezeState> GetAsync(CancellationToken cancellationToken) => StateOf(await ReadAsync(cancellationToken).ConfigureAwait(false));

    /// <summary>The freeze state of the object as <paramref name="resource"/> shows it (read by the caller through the controller).</summary>
    public FreezeState StateOf(JsonObject resource) => Describe(resource, FreezeAction.None);

    public Task<FreezeState> FreezeAsync(FreezeRequest request, bool dryRun, CancellationToken cancellationToken) =>
        Conflicts.RetryAsync("FreezeConflict", () => FreezeOnceAsync(request, dryRun, cancellationToken));

    public Task<FreezeState> ThawAsync(FreezeRequest request, bool dryRun, CancellationToken cancellationToken) =>
        Conflicts.RetryAsync("FreezeConflict", () => ThawOnceAsync(request, dryRun, cancellationToken));

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

    private static IDictionary<string, string>? Annotations(JsonObject resource) =>
        (resource["metadata"]?["annotations"] as JsonObject)?.ToDictionary(p => p.Key, p => p.Value?.GetValue<string>() ?? string.Empty);

    private Task<JsonObject> ReadAsync(CancellationToken cancellationToken) => _controller.GetAsync(cancellationToken);

    private Task<JsonObject> PatchAsync(JsonObject patch, CancellationToken cancellationToken) =>
        _controller.PatchAsync(patch, ex => new KfmException("FreezeConflict", KfmErrorKind.ResourceBusy,
            $"{Target} kept changing while it was being frozen or thawed (someone else is editing it). Run the command again: it reads the object afresh.", Target, ex), cancellationToken);
}
