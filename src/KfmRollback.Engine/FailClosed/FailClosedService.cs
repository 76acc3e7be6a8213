using KfmRollback.Engine.Adapters.Kubernetes;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Context;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.FailClosed;

/// <summary>
/// The decision tree's last branch: when a rollback does not restore a safe state, stop serving
/// rather than serve unsafely. Two modes, both inside the policy boundary: scale the API to zero
/// (clients get 503 from the ingress), or set the maintenance flag the API honours by answering
/// 503 itself. Nothing here routes around the API. The prior state is recorded on the object so
/// recovery restores it exactly, from any machine.
/// </summary>
public sealed class FailClosedService
{
    public const string Annotation = "kfm.dev/fail-closed";
    private readonly EngineContext _context;

    public FailClosedService(EngineContext context) => _context = context;

    private IKubernetes Client(EnvironmentConfig environment) => _context.Kubernetes(environment);

    /// <summary>Get-KfmFailClosed: the live state of the mode's target, as read now.</summary>
    public async Task<FailClosedState> GetAsync(EnvironmentConfig environment, CancellationToken cancellationToken)
    {
        FailClosedConfig config = Require(environment);
        Observed now = await ObserveAsync(environment, config, cancellationToken).ConfigureAwait(false);
        return Describe(environment, config, now, changed: false) with
        {
            Detail = now.Record is null ? (now.Active ? "at the fail-closed target, but not failed closed by KfmRollback (no record)" : "serving; not failed closed")
                : now.Active ? "failed closed" : $"DRIFTED: recorded as failed closed, but the live state is {now.Live}; Enable-KfmFailClosed re-applies it",
        };
    }

    public Task<FailClosedState> EnableAsync(EnvironmentConfig environment, string? incidentId, string actor, string reason, bool dryRun, CancellationToken cancellationToken)
    {
        // The reason is written onto the Deployment or flag ConfigMap: a credential in it never is.
        _context.TextSafety.EnsurePolicySafe(reason, "-Reason");
        return Conflicts.RetryAsync("FailClosedConflict", () => EnableOnceAsync(environment, incidentId, actor, reason, dryRun, cancellationToken));
    }

    public Task<FailClosedState> DisableAsync(EnvironmentConfig environment, bool dryRun, CancellationToken cancellationToken) =>
        Conflicts.RetryAsync("FailClosedConflict", () => DisableOnceAsync(environment, dryRun, cancellationToken));

    /// <summary>
    /// Compares the live state with the mode's target: already there (and recorded) changes nothing;
    /// drifted (recorded, but the flag or the replicas were put back behind the module's back) is
    /// applied again, keeping the original record; otherwise the record and the change go together.
    /// Whatever was sent is read back: the result reports what the read shows, and a change the read
    /// does not show is an error (FailClosedNotConfirmed), never a success.
    /// </summary>
    private async Task<FailClosedState> EnableOnceAsync(EnvironmentConfig environment, string? incidentId, string actor, string reason, bool dryRun, CancellationToken cancellationToken)
    {
        FailClosedConfig config = Require(environment);
        Observed now = await ObserveAsync(environment, config, cancellationToken).ConfigureAwait(false);
        if (now.Record is not null && now.Active)
        {
            return Describe(environment, config, now, changed: false) with { Detail = $"already failed closed; verified live: {now.Live}; nothing changed" };
        }
        if (config.Mode == FailClosedMode.ScaleToZero)
        {
            await RefuseWhenAutoscaledAsync(environment, cancellationToken).ConfigureAwait(false);
        }
        bool reapply = now.Record is not null;
        var metadata = new JsonObject { ["resourceVersion"] = now.ResourceVersion };
        if (!reapply)
        {
            var record = new JsonObject
            {
                ["incident"] = incidentId,
                ["by"] = actor,
                ["at"] = _context.Clock.UtcNow.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
                ["reason"] = reason,
                ["prior"] = now.Prior?.DeepClone(),
            };
            metadata["annotations"] = new JsonObject { [Annotation] = record.ToJsonString() };
        }
        JsonObject patch = config.Mode == FailClosedMode.ScaleToZero
            ? new JsonObject { ["metadata"] = metadata, ["spec"] = new JsonObject { ["replicas"] = 0 } }
            : new JsonObject { ["metadata"] = metadata, ["data"] = new JsonObject { [config.Key!] = config.Value } };
        if (dryRun)
        {
            return Describe(environment, config, now, changed: false) with
            {
                Detail = (reapply ? $"drifted (live: {now.Live}); would re-apply merge patch " : "would apply merge patch ") + patch.ToJsonString(),
            };
        }
        await PatchAsync(environment, config, patch, cancellationToken).ConfigureAwait(false);
        Observed after = await ReadBackAsync(environment, config, "failing closed", cancellationToken).ConfigureAwait(false);
        if (!after.Active || after.Record is null)
        {
            throw NotConfirmed(environment, config, "FailClosedNotConfirmed", $"the fail-closed change was sent, but reading it back shows {after.Live}{(after.Record is null ? " and no fail-closed record" : "")}",
                "The API may still be serving. Find what puts it back (an autoscaler, a GitOps sync of the object, a person), stop it, and run Enable-KfmFailClosed again; escalate.");
        }
        return Describe(environment, config, after, changed: true) with
        {
            Reapplied = reapply,
            Detail = reapply ? $"had drifted (live: {now.Live}) since it failed closed; re-applied; read back: {after.Live}" : $"failed closed; read back: {after.Live}",
        };
    }

    private async Task<FailClosedState> DisableOnceAsync(EnvironmentConfig environment, bool dryRun, CancellationToken cancellationToken)
    {
        FailClosedConfig config = Require(environment);
        Observed now = await ObserveAsync(environment, config, cancellationToken).ConfigureAwait(false);
        if (now.Record is null)
        {
            return Describe(environment, config, now, changed: false) with { Detail = $"not failed closed by KfmRollback; live: {now.Live}; nothing changed" };
        }
        JsonNode? prior = now.Record["prior"]?.DeepClone();
        var metadata = new JsonObject { ["resourceVersion"] = now.ResourceVersion, ["annotations"] = new JsonObject { [Annotation] = null } };
        // A flag key that did not exist before is removed again, not left as an empty string.
        JsonObject patch = config.Mode == FailClosedMode.ScaleToZero
            ? new JsonObject { ["metadata"] = metadata, ["spec"] = new JsonObject { ["replicas"] = PriorReplicas(prior) } }
            : new JsonObject { ["metadata"] = metadata, ["data"] = new JsonObject { [config.Key!] = prior?.GetValue<string>() } };
        if (dryRun)
        {
            return Describe(environment, config, now, changed: false) with { Detail = "would apply merge patch " + patch.ToJsonString() };
        }
        await PatchAsync(environment, config, patch, cancellationToken).ConfigureAwait(false);
        Observed after = await ReadBackAsync(environment, config, "lifting fail-closed", cancellationToken).ConfigureAwait(false);
        bool restored = config.Mode == FailClosedMode.ScaleToZero ? after.Replicas == PriorReplicas(prior) : after.Value == prior?.GetValue<string>();
        if (after.Record is not null || !restored)
        {
            throw NotConfirmed(environment, config, "FailClosedRecoveryNotConfirmed",
                $"the recovery was sent, but reading it back shows {after.Live}{(after.Record is null ? "" : " with the fail-closed record still on it")}, not the prior {(config.Mode == FailClosedMode.ScaleToZero ? $"replicas {PriorReplicas(prior)}" : $"value {prior?.GetValue<string>() ?? "(none)"}")}",
                "The API may not serve yet. Find what holds it (a person, a sync), then run Disable-KfmFailClosed again.");
        }
        return Describe(environment, config, after, changed: true) with { Detail = $"serving again; read back: {after.Live}" };
    }

    private static int PriorReplicas(JsonNode? prior) => prior is JsonValue value && value.TryGetValue(out int replicas) ? replicas : 1;

    /// <summary>What a fail-closed mode changes, as read from the live object.</summary>
    private sealed record Observed(string ResourceVersion, JsonObject? Record, bool Active, string Live, JsonNode? Prior, int? Replicas, string? Value);

    private async Task<Observed> ObserveAsync(EnvironmentConfig environment, FailClosedConfig config, CancellationToken cancellationToken)
    {
        if (config.Mode == FailClosedMode.ScaleToZero)
        {
            V1Deployment deployment = await ReadDeploymentAsync(environment, cancellationToken).ConfigureAwait(false);
            int replicas = deployment.Spec.Replicas ?? 1;
            return new Observed(deployment.Metadata.ResourceVersion, Record(deployment.Metadata.Annotations), replicas == 0,
                $"replicas {replicas} ({deployment.Status?.ReadyReplicas ?? 0} ready)", JsonValue.Create(replicas), replicas, null);
        }
        V1ConfigMap map = await ReadConfigMapAsync(environment, config, cancellationToken).ConfigureAwait(false);
        string? value = map.Data?.TryGetValue(config.Key!, out string? v) == true ? v : null;
        return new Observed(map.Metadata.ResourceVersion, Record(map.Metadata.Annotations), value == config.Value,
            $"{config.Key}={value ?? "(unset)"}", value is null ? null : JsonValue.Create(value), null, value);
    }

    /// <summary>Reads the object again after a change; a read that fails leaves the change unconfirmed, which is an error.</summary>
    private async Task<Observed> ReadBackAsync(EnvironmentConfig environment, FailClosedConfig config, string what, CancellationToken cancellationToken)
    {
        try
        {
            return await ObserveAsync(environment, config, cancellationToken).ConfigureAwait(false);
        }
        catch (KfmException ex)
        {
            throw NotConfirmed(environment, config, what == "failing closed" ? "FailClosedNotConfirmed" : "FailClosedRecoveryNotConfirmed",
                $"the change for {what} was sent, but it could not be read back ({ex.Message.TrimEnd('.')}), so its effect is unconfirmed",
                "Check the live state now (Get-KfmFailClosed) and escalate; do not assume the API's state.", ex);
        }
    }

    private static KfmException NotConfirmed(EnvironmentConfig environment, FailClosedConfig config, string id, string what, string todo, Exception? inner = null) =>
        new(id, KfmErrorKind.InvalidOperation, $"{environment.Name} ({config.Mode}, {TargetOf(environment, config)}): {what}. {todo}", environment.Name, inner);

    /// <summary>What a fail-closed mode changes, for people: <c>deployment ns/name</c> or <c>configmap ns/name#key</c>.</summary>
    public static string TargetOf(EnvironmentConfig environment, FailClosedConfig config) => config.Mode == FailClosedMode.ScaleToZero
        ? $"deployment {environment.Cluster.Namespace}/{environment.Cluster.Deployment}"
        : $"configmap {environment.Cluster.Namespace}/{config.Configmap}#{config.Key}";

    private Task PatchAsync(EnvironmentConfig environment, FailClosedConfig config, JsonObject patch, CancellationToken cancellationToken) =>
        config.Mode == FailClosedMode.ScaleToZero ? PatchDeploymentAsync(environment, patch, cancellationToken) : PatchConfigMapAsync(environment, config, patch, cancellationToken);

    private static FailClosedConfig Require(EnvironmentConfig environment) => environment.FailClosed
        ?? throw new KfmException("FailClosedNotConfigured", KfmErrorKind.InvalidOperation,
            $"Environment '{environment.Name}' has no fail_closed section, so the module will not guess how to stop serving. " +
            "Configure fail_closed.mode (scale-to-zero or maintenance-flag), or escalate to the API owners.", environment.Name);

    /// <summary>An autoscaler would scale the API straight back up: refuse rather than pretend.</summary>
    private async Task RefuseWhenAutoscaledAsync(EnvironmentConfig environment, CancellationToken cancellationToken)
    {
        try
        {
            V2HorizontalPodAutoscalerList autoscalers = await Client(environment).AutoscalingV2.ListNamespacedHorizontalPodAutoscalerAsync(environment.Cluster.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
            V2HorizontalPodAutoscaler? owner = autoscalers.Items.FirstOrDefault(h => h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == environment.Cluster.Deployment);
            if (owner is not null)
            {
                throw new KfmException("FailClosedAutoscaled", KfmErrorKind.InvalidOperation,
                    $"HorizontalPodAutoscaler {environment.Cluster.Namespace}/{owner.Metadata.Name} controls the replicas of {environment.Cluster.Deployment} and would scale it back up. " +
                    "Use fail_closed.mode maintenance-flag for this environment, or remove the autoscaler first.", owner.Metadata.Name);
            }
        }
        catch (Exception ex) when (KubernetesErrors.IsNotFound(ex))
        {
            // No autoscaling API on this cluster: nothing can scale it back.
        }
    }

    private static JsonObject? Record(IDictionary<string, string>? annotations) =>
        annotations is not null && annotations.TryGetValue(Annotation, out string? text) ? JsonNode.Parse(text) as JsonObject : null;

    private static FailClosedState Describe(EnvironmentConfig environment, FailClosedConfig config, Observed observed, bool changed)
    {
        JsonObject? record = observed.Record;
        return new()
        {
            Environment = environment.Name,
            Mode = config.Mode,
            Target = TargetOf(environment, config),
            Active = observed.Active,
            Live = observed.Live,
            Recorded = record is not null,
            IncidentId = (string?)record?["incident"],
            By = (string?)record?["by"],
            At = DateTimeOffset.TryParse((string?)record?["at"], System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out DateTimeOffset at) ? at : null,
            Reason = (string?)record?["reason"],
            PriorValue = record?["prior"]?.ToJsonString().Trim('"'),
            Changed = changed,
        };
    }

    private async Task<V1Deployment> ReadDeploymentAsync(EnvironmentConfig environment, CancellationToken cancellationToken)
    {
        try { return await Client(environment).AppsV1.ReadNamespacedDeploymentAsync(environment.Cluster.Deployment, environment.Cluster.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false); }
        catch (Exception ex) when (ex is not OperationCanceledException) { throw KubernetesErrors.Wrap(ex, $"Reading deployment {environment.Cluster.Namespace}/{environment.Cluster.Deployment}"); }
    }

    private async Task<V1Deployment> PatchDeploymentAsync(EnvironmentConfig environment, JsonObject patch, CancellationToken cancellationToken)
    {
        try
        {
            return await Client(environment).AppsV1.PatchNamespacedDeploymentAsync(new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch),
                environment.Cluster.Deployment, environment.Cluster.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw KubernetesErrors.IsConflict(ex)
                ? new KfmException("FailClosedConflict", KfmErrorKind.ResourceBusy, $"Deployment {environment.Cluster.Deployment} changed meanwhile; run the command again.", environment.Cluster.Deployment, ex)
                : KubernetesErrors.Wrap(ex, $"Patching deployment {environment.Cluster.Namespace}/{environment.Cluster.Deployment}");
        }
    }

    private async Task<V1ConfigMap> ReadConfigMapAsync(EnvironmentConfig environment, FailClosedConfig config, CancellationToken cancellationToken)
    {
        try { return await Client(environment).CoreV1.ReadNamespacedConfigMapAsync(config.Configmap, environment.Cluster.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false); }
        catch (Exception ex) when (ex is not OperationCanceledException) { throw KubernetesErrors.Wrap(ex, $"Reading configmap {environment.Cluster.Namespace}/{config.Configmap}"); }
    }

    private async Task<V1ConfigMap> PatchConfigMapAsync(EnvironmentConfig environment, FailClosedConfig config, JsonObject patch, CancellationToken cancellationToken)
    {
        try
        {
            return await Client(environment).CoreV1.PatchNamespacedConfigMapAsync(new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch),
                config.Configmap, environment.Cluster.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw KubernetesErrors.IsConflict(ex)
                ? new KfmException("FailClosedConflict", KfmErrorKind.ResourceBusy, $"ConfigMap {config.Configmap} changed meanwhile; run the command again.", config.Configmap, ex)
                : KubernetesErrors.Wrap(ex, $"Patching configmap {environment.Cluster.Namespace}/{config.Configmap}");
        }
    }
}
