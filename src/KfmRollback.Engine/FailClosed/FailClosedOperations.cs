using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Cluster;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.FailClosed;

/// <summary>
/// The decision tree's last branch: when a rollback does not restore a safe state, stop serving
/// rather than serve unsafely. Two modes, both inside the policy boundary: scale the API to zero
/// (clients get 503 from the ingress), or set the maintenance flag the API honours by answering
/// 503 itself. Nothing here routes around the API. The prior state is recorded on the object so
/// recovery restores it exactly, from any machine.
/// </summary>
public sealed class FailClosedOperations
{
    public const string Annotation = "kfm.dev/fail-closed";
    private readonly IKubernetes _client;
    private readonly IClock _clock;

    public FailClosedOperations(IKubernetes client, IClock? clock = null)
    {
        _client = client;
        _clock = clock ?? SystemClock.Instance;
    }

    public static FailClosedOperations For(EnvironmentConfig environment) => new(ClusterClientFactory.For(environment.Cluster));

    public async Task<FailClosedState> GetAsync(EnvironmentConfig environment, CancellationToken cancellationToken)
    {
        FailClosedConfig config = Require(environment);
        return config.Mode == FailClosedMode.ScaleToZero
            ? DescribeScale(environment, await ReadDeploymentAsync(environment, cancellationToken).ConfigureAwait(false), changed: false)
            : DescribeFlag(environment, config, await ReadConfigMapAsync(environment, config, cancellationToken).ConfigureAwait(false), changed: false);
    }

    public Task<FailClosedState> EnableAsync(EnvironmentConfig environment, string? incidentId, string actor, string reason, bool dryRun, CancellationToken cancellationToken)
    {
        // The reason is written onto the Deployment or flag ConfigMap: a credential in it never is.
        EngineServices.TextSafety.EnsurePolicySafe(reason, "-Reason");
        return RetryOnConflictAsync(() => EnableOnceAsync(environment, incidentId, actor, reason, dryRun, cancellationToken));
    }

    public Task<FailClosedState> DisableAsync(EnvironmentConfig environment, bool dryRun, CancellationToken cancellationToken) =>
        RetryOnConflictAsync(() => DisableOnceAsync(environment, dryRun, cancellationToken));

    /// <summary>Status writes move resourceVersion; a conflict is answered by reading afresh and deciding again.</summary>
    private static async Task<FailClosedState> RetryOnConflictAsync(Func<Task<FailClosedState>> attempt)
    {
        for (int tries = 1; ; tries++)
        {
            try
            {
                return await attempt().ConfigureAwait(false);
            }
            catch (KfmException ex) when (ex.ErrorId == "FailClosedConflict" && tries < 5)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50 * tries)).ConfigureAwait(false);
            }
        }
    }

    private async Task<FailClosedState> EnableOnceAsync(EnvironmentConfig environment, string? incidentId, string actor, string reason, bool dryRun, CancellationToken cancellationToken)
    {
        FailClosedConfig config = Require(environment);
        var record = new JsonObject
        {
            ["incident"] = incidentId,
            ["by"] = actor,
            ["at"] = _clock.UtcNow.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
            ["reason"] = reason,
        };

        if (config.Mode == FailClosedMode.ScaleToZero)
        {
            V1Deployment deployment = await ReadDeploymentAsync(environment, cancellationToken).ConfigureAwait(false);
            if (deployment.Metadata.Annotations?.ContainsKey(Annotation) == true)
            {
                return DescribeScale(environment, deployment, changed: false) with { Detail = "already failed closed; nothing changed" };
            }
            await RefuseWhenAutoscaledAsync(environment, cancellationToken).ConfigureAwait(false);
            record["prior"] = deployment.Spec.Replicas ?? 1;
            var patch = new JsonObject
            {
                ["metadata"] = new JsonObject { ["resourceVersion"] = deployment.Metadata.ResourceVersion, ["annotations"] = new JsonObject { [Annotation] = record.ToJsonString() } },
                ["spec"] = new JsonObject { ["replicas"] = 0 },
            };
            if (dryRun)
            {
                return DescribeScale(environment, deployment, changed: false) with { Detail = "would apply merge patch " + patch.ToJsonString() };
            }
            return DescribeScale(environment, await PatchDeploymentAsync(environment, patch, cancellationToken).ConfigureAwait(false), changed: true);
        }

        V1ConfigMap map = await ReadConfigMapAsync(environment, config, cancellationToken).ConfigureAwait(false);
        if (map.Metadata.Annotations?.ContainsKey(Annotation) == true)
        {
            return DescribeFlag(environment, config, map, changed: false) with { Detail = "already failed closed; nothing changed" };
        }
        record["prior"] = map.Data?.TryGetValue(config.Key!, out string? prior) == true ? prior : null;
        var flagPatch = new JsonObject
        {
            ["metadata"] = new JsonObject { ["resourceVersion"] = map.Metadata.ResourceVersion, ["annotations"] = new JsonObject { [Annotation] = record.ToJsonString() } },
            ["data"] = new JsonObject { [config.Key!] = config.Value },
        };
        if (dryRun)
        {
            return DescribeFlag(environment, config, map, changed: false) with { Detail = "would apply merge patch " + flagPatch.ToJsonString() };
        }
        return DescribeFlag(environment, config, await PatchConfigMapAsync(environment, config, flagPatch, cancellationToken).ConfigureAwait(false), changed: true);
    }

    private async Task<FailClosedState> DisableOnceAsync(EnvironmentConfig environment, bool dryRun, CancellationToken cancellationToken)
    {
        FailClosedConfig config = Require(environment);
        if (config.Mode == FailClosedMode.ScaleToZero)
        {
            V1Deployment deployment = await ReadDeploymentAsync(environment, cancellationToken).ConfigureAwait(false);
            JsonObject? record = Record(deployment.Metadata.Annotations);
            if (record is null)
            {
                return DescribeScale(environment, deployment, changed: false) with { Detail = "not failed closed by KfmRollback; nothing changed" };
            }
            int replicas = record["prior"]?.GetValue<int>() ?? 1;
            var patch = new JsonObject
            {
                ["metadata"] = new JsonObject { ["resourceVersion"] = deployment.Metadata.ResourceVersion, ["annotations"] = new JsonObject { [Annotation] = null } },
                ["spec"] = new JsonObject { ["replicas"] = replicas },
            };
            if (dryRun)
            {
                return DescribeScale(environment, deployment, changed: false) with { Detail = "would apply merge patch " + patch.ToJsonString() };
            }
            return DescribeScale(environment, await PatchDeploymentAsync(environment, patch, cancellationToken).ConfigureAwait(false), changed: true);
        }

        V1ConfigMap map = await ReadConfigMapAsync(environment, config, cancellationToken).ConfigureAwait(false);
        JsonObject? flagRecord = Record(map.Metadata.Annotations);
        if (flagRecord is null)
        {
            return DescribeFlag(environment, config, map, changed: false) with { Detail = "not failed closed by KfmRollback; nothing changed" };
        }
        string? priorValue = (string?)flagRecord["prior"];
        var flagPatch = new JsonObject
        {
            ["metadata"] = new JsonObject { ["resourceVersion"] = map.Metadata.ResourceVersion, ["annotations"] = new JsonObject { [Annotation] = null } },
            // A key that did not exist before is removed again, not left as an empty string.
            ["data"] = new JsonObject { [config.Key!] = priorValue },
        };
        if (dryRun)
        {
            return DescribeFlag(environment, config, map, changed: false) with { Detail = "would apply merge patch " + flagPatch.ToJsonString() };
        }
        return DescribeFlag(environment, config, await PatchConfigMapAsync(environment, config, flagPatch, cancellationToken).ConfigureAwait(false), changed: true);
    }

    private static FailClosedConfig Require(EnvironmentConfig environment) => environment.FailClosed
        ?? throw new KfmException("FailClosedNotConfigured", KfmErrorKind.InvalidOperation,
            $"Environment '{environment.Name}' has no fail_closed section, so the module will not guess how to stop serving. " +
            "Configure fail_closed.mode (scale-to-zero or maintenance-flag), or escalate to the API owners.", environment.Name);

    /// <summary>An autoscaler would scale the API straight back up: refuse rather than pretend.</summary>
    private async Task RefuseWhenAutoscaledAsync(EnvironmentConfig environment, CancellationToken cancellationToken)
    {
        try
        {
            V2HorizontalPodAutoscalerList autoscalers = await _client.AutoscalingV2.ListNamespacedHorizontalPodAutoscalerAsync(environment.Cluster.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
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

    private static FailClosedState DescribeScale(EnvironmentConfig environment, V1Deployment deployment, bool changed)
    {
        JsonObject? record = Record(deployment.Metadata.Annotations);
        return Describe(environment, FailClosedMode.ScaleToZero, $"deployment {environment.Cluster.Namespace}/{environment.Cluster.Deployment}",
            active: record is not null && (deployment.Spec.Replicas ?? 1) == 0, record, changed);
    }

    private static FailClosedState DescribeFlag(EnvironmentConfig environment, FailClosedConfig config, V1ConfigMap map, bool changed)
    {
        JsonObject? record = Record(map.Metadata.Annotations);
        bool on = map.Data?.TryGetValue(config.Key!, out string? value) == true && value == config.Value;
        return Describe(environment, FailClosedMode.MaintenanceFlag, $"configmap {environment.Cluster.Namespace}/{config.Configmap}#{config.Key}", on, record, changed);
    }

    private static FailClosedState Describe(EnvironmentConfig environment, FailClosedMode mode, string target, bool active, JsonObject? record, bool changed) => new()
    {
        Environment = environment.Name,
        Mode = mode,
        Target = target,
        Active = active,
        IncidentId = (string?)record?["incident"],
        By = (string?)record?["by"],
        At = DateTimeOffset.TryParse((string?)record?["at"], System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out DateTimeOffset at) ? at : null,
        Reason = (string?)record?["reason"],
        PriorValue = record?["prior"]?.ToJsonString().Trim('"'),
        Changed = changed,
    };

    private async Task<V1Deployment> ReadDeploymentAsync(EnvironmentConfig environment, CancellationToken cancellationToken)
    {
        try { return await _client.AppsV1.ReadNamespacedDeploymentAsync(environment.Cluster.Deployment, environment.Cluster.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false); }
        catch (Exception ex) when (ex is not OperationCanceledException) { throw KubernetesErrors.Wrap(ex, $"Reading deployment {environment.Cluster.Namespace}/{environment.Cluster.Deployment}"); }
    }

    private async Task<V1Deployment> PatchDeploymentAsync(EnvironmentConfig environment, JsonObject patch, CancellationToken cancellationToken)
    {
        try
        {
            return await _client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch),
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
        try { return await _client.CoreV1.ReadNamespacedConfigMapAsync(config.Configmap, environment.Cluster.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false); }
        catch (Exception ex) when (ex is not OperationCanceledException) { throw KubernetesErrors.Wrap(ex, $"Reading configmap {environment.Cluster.Namespace}/{config.Configmap}"); }
    }

    private async Task<V1ConfigMap> PatchConfigMapAsync(EnvironmentConfig environment, FailClosedConfig config, JsonObject patch, CancellationToken cancellationToken)
    {
        try
        {
            return await _client.CoreV1.PatchNamespacedConfigMapAsync(new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch),
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
