using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Adapters.Kubernetes;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Rollback.Preflight;

namespace KfmRollback.Engine.Rollback.Cluster;

/// <summary>
/// What -Fast adds to a cluster rollback: the JSON-patch operations that raise the strategy (sent in the
/// rollback's own patch, so the raise and the rollback go out together or not at all), the restore it
/// will send once the rollout converged, and the quota check that decided it. <see cref="Ops"/> is empty
/// when -Fast falls back to the Deployment's own strategy; <see cref="Why"/> then says why.
/// </summary>
public sealed record FastRolloutPlan(IReadOnlyList<JsonObject> Ops, PlannedChange? Restore, PreflightCheck Check, string Why)
{
    /// <summary>The fields raised, as people read them ("maxSurge 25% → 100%"); empty when it falls back.</summary>
    public string Change { get; init; } = "";

    public bool Raises => Ops.Count > 0;

    /// <summary>The timeline line once the raise went out with the rollback patch: who, what and why (the entry carries when).</summary>
    public string Journal(RollbackRequest request) =>
        $"-Fast: raised {Change} on deployment {request.Environment.Cluster.Namespace}/{request.Environment.Cluster.Deployment} for this rollback, restored once it converges ({Check.Saw}); by {request.Actor}: {request.Reason ?? "rollback"}";
}

/// <summary>
/// The record of a -Fast raise, kept on the Deployment in the annotation <see cref="FastRollout.Annotation"/>,
/// written by the same patch as the raise: a run killed between the raise and the restore leaves it, and
/// whichever run next awaits the Deployment's rollout restores from it. Only fields still at the raised
/// value are restored: what someone changed since is theirs.
/// </summary>
public sealed record FastRolloutRecord
{
    public required string Run { get; init; }
    public required string Actor { get; init; }
    public required DateTimeOffset At { get; init; }
    /// <summary>Per field (maxSurge, maxUnavailable): the Deployment's own value before the raise.</summary>
    public required Dictionary<string, JsonNode?> Original { get; init; }
    /// <summary>Per field: the value the module set.</summary>
    public required Dictionary<string, JsonNode?> Raised { get; init; }
}

/// <summary>
/// The -Fast path of a cluster rollback (issue 21, "a fast path for the rollout itself"): for the rollback's
/// rollout only, the Deployment's RollingUpdate strategy is raised to maxSurge 100% and maxUnavailable 0, so
/// the deployment controller starts every pod of the target at once and removes old pods only as new ones
/// become available; once the rollout converged, the Deployment's own strategy is restored. The raise is
/// planned only when a server-side dry run of one pod of the target (dryRun=All: quota, LimitRange defaults,
/// webhooks) is admitted and every ResourceQuota of the namespace has room for a whole second set of pods;
/// otherwise the rollback keeps the Deployment's own strategy and says why. The quota is never exceeded: the
/// apiserver refuses pods past it in any case, and a surge it refuses would stall the rollout, not speed it.
/// </summary>
public sealed class FastRollout(IKubernetes client)
{
    /// <summary>The Deployment annotation that records a raise until it is restored (<see cref="FastRolloutRecord"/>).</summary>
    public const string Annotation = "kfm.dev/fast-rollout";
    public const string CheckName = "fast-rollout";
    public const string RaisedSurge = "100%";

    private static readonly JsonSerializerOptions s_json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };
    private static readonly string[] s_fields = ["maxSurge", "maxUnavailable"];
    /// <summary>Quota resources a pod consumes that this check computes; any other compute resource makes it fall back.</summary>
    private static readonly string[] s_known = ["pods", "count/pods", "cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"];

    public static string PathOf(string field) => $"/spec/strategy/rollingUpdate/{field}";
    private static string AnnotationPath => "/metadata/annotations/" + Annotation.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

    /// <summary>Plans the raise for <paramref name="deployment"/> rolling back to <paramref name="target"/>'s template; sends nothing but a dry run.</summary>
    public async Task<FastRolloutPlan> PlanAsync(RollbackRequest request, V1Deployment deployment, V1PodTemplateSpec target, DateTimeOffset plannedAt, CancellationToken cancellationToken)
    {
        string ns = deployment.Metadata.NamespaceProperty, name = deployment.Metadata.Name;
        string what = $"deployment {ns}/{name} strategy";
        FastRolloutPlan Fallback(string why) => new(Array.Empty<JsonObject>(), null,
            new PreflightCheck { Environment = request.Environment.Name, Check = CheckName, Target = what, Verdict = PreflightVerdict.Skipped, Saw = why }, why);

        if (deployment.Spec.Strategy?.Type == "Recreate")
        {
            return Fallback("the Deployment's strategy is Recreate (old and new pods must not run together), so -Fast keeps it");
        }
        int replicas = deployment.Spec.Replicas ?? 1;
        if (replicas == 0)
        {
            return Fallback("the Deployment has 0 replicas: there is no rollout to speed up");
        }
        JsonObject strategy = JsonNode.Parse(KubernetesJson.Serialize(deployment.Spec.Strategy ?? new V1DeploymentStrategy()))!.AsObject();
        var original = s_fields.ToDictionary(f => f, f => strategy["rollingUpdate"]?[f]?.DeepClone(), StringComparer.Ordinal);
        var raised = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
        if (Resolve(original["maxSurge"], replicas, roundUp: true, 25) < replicas)
        {
            raised["maxSurge"] = JsonValue.Create(RaisedSurge);
        }
        if (Resolve(original["maxUnavailable"], replicas, roundUp: false, 25) != 0)
        {
            raised["maxUnavailable"] = JsonValue.Create(0);
        }
        if (raised.Count == 0)
        {
            return Fallback($"the Deployment's own strategy already surges all {replicas} pods with none unavailable");
        }

        // One pod of the target, as the ReplicaSet controller would create it, admitted with dryRun=All: it
        // passes quota for one pod and comes back with LimitRange defaults, the requests each surge pod takes.
        V1Pod? admitted = null;
        var pod = new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = $"{name}-kfm-fast-dry-run", NamespaceProperty = ns, Labels = target.Metadata?.Labels, Annotations = target.Metadata?.Annotations },
            Spec = target.Spec,
        };
        PreflightCheck dryRun = await ServerDryRun.CheckAsync(request.Environment.Name, $"create pod of {name}'s target",
            async () => admitted = await client.CoreV1.CreateNamespacedPodAsync(pod, ns, dryRun: ServerDryRun.All, cancellationToken: cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        if (dryRun.Failed || admitted is null)
        {
            return Fallback($"the dry run of one pod of the target was refused, so {replicas} more would be too ({dryRun.Saw})");
        }
        Dictionary<string, decimal> perPod = Usage(admitted);
        IList<V1ResourceQuota> quotas = (await client.CoreV1.ListNamespacedResourceQuotaAsync(ns, cancellationToken: cancellationToken).ConfigureAwait(false)).Items;
        var room = new List<string>();
        foreach (V1ResourceQuota quota in quotas.OrderBy(q => q.Metadata.Name, StringComparer.Ordinal))
        {
            foreach (var (resource, hard) in (quota.Spec?.Hard ?? new Dictionary<string, ResourceQuantity>()).OrderBy(h => h.Key, StringComparer.Ordinal))
            {
                if (!s_known.Contains(resource))
                {
                    if (resource.StartsWith("requests.", StringComparison.Ordinal) || resource.StartsWith("limits.", StringComparison.Ordinal) || resource.StartsWith("hugepages-", StringComparison.Ordinal) || resource == "ephemeral-storage")
                    {
                        return Fallback($"quota {quota.Metadata.Name} limits {resource}, which this check does not compute, so whether {replicas} more pods fit is unknown");
                    }
                    continue;
                }
                if (quota.Status?.Used is not { } usedAll || !usedAll.TryGetValue(resource, out ResourceQuantity? usedQuantity))
                {
                    return Fallback($"quota {quota.Metadata.Name} reports no usage of {resource} yet, so whether {replicas} more pods fit is unknown");
                }
                decimal used = usedQuantity.ToDecimal(), limit = hard.ToDecimal(), need = replicas * perPod.GetValueOrDefault(resource);
                if (used + need > limit)
                {
                    return Fallback($"quota {quota.Metadata.Name} has room for {Quantity(resource, limit - used)} more {resource}, and a surge of all {replicas} pods needs {Quantity(resource, need)}");
                }
                room.Add($"{quota.Metadata.Name} {resource} {Quantity(resource, used)}+{Quantity(resource, need)} of {Quantity(resource, limit)}");
            }
        }

        var record = new FastRolloutRecord
        {
            Run = request.Run?.RunId ?? "(no incident)",
            Actor = request.Actor,
            At = plannedAt,
            Original = original.Where(o => raised.ContainsKey(o.Key)).ToDictionary(o => o.Key, o => o.Value, StringComparer.Ordinal),
            Raised = raised,
        };
        var ops = raised.Select(r => new JsonObject { ["op"] = "replace", ["path"] = PathOf(r.Key), ["value"] = r.Value?.DeepClone() }).ToList();
        ops.Add(new JsonObject { ["op"] = "add", ["path"] = AnnotationPath, ["value"] = JsonSerializer.Serialize(record, s_json) });
        string saw = $"a pod of the target was admitted (dryRun=All) and " +
            (room.Count == 0 ? "no ResourceQuota limits the namespace" : $"every quota has room for {replicas} more pods ({string.Join("; ", room)})");
        var check = new PreflightCheck { Environment = request.Environment.Name, Check = CheckName, Target = what, Verdict = PreflightVerdict.Passed, Saw = saw };
        var restore = new PlannedChange("rollout", $"deployment {ns}/{name}", "json-patch (strategy restore, once the rollout converged)",
            new JsonArray(RestoreOps(record, record.Raised.Keys).Append(new JsonObject { ["op"] = "remove", ["path"] = AnnotationPath }).Select(o => (JsonNode)o).ToArray()).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        string change = Describe(record.Original, record.Raised);
        return new FastRolloutPlan(ops, restore, check, $"raise {change} for the rollout, then restore") { Change = change };
    }

    /// <summary>
    /// After the rollout converged: puts back each field the module raised that still has the raised value,
    /// leaves any field someone changed since (and says so), and removes the record. Nothing when the
    /// Deployment carries no record. Returns the change sent, or null (nothing to restore, or it failed: warned and journaled).
    /// </summary>
    public async Task<PlannedChange?> RestoreAsync(RollbackRequest request, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        string ns = request.Environment.Cluster.Namespace, name = request.Environment.Cluster.Deployment;
        for (int attempt = 1; ; attempt++)
        {
            V1Deployment deployment = await client.AppsV1.ReadNamespacedDeploymentAsync(name, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (deployment.Metadata.Annotations?.TryGetValue(Annotation, out string? text) != true || text is null)
            {
                return null;
            }
            FastRolloutRecord? record = Parse(text);
            JsonObject strategy = JsonNode.Parse(KubernetesJson.Serialize(deployment.Spec.Strategy ?? new V1DeploymentStrategy()))!.AsObject();
            var ours = record is null ? new List<string>() : record.Raised.Keys.Where(f => Same(strategy["rollingUpdate"]?[f], record.Raised[f])).ToList();
            var theirs = record is null ? new List<string>() : record.Raised.Keys.Except(ours).ToList();
            var ops = new List<JsonObject> { new() { ["op"] = "test", ["path"] = AnnotationPath, ["value"] = text } };
            if (record is not null)
            {
                ops.AddRange(RestoreOps(record, ours));
            }
            ops.Add(new JsonObject { ["op"] = "remove", ["path"] = AnnotationPath });
            try
            {
                await client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch(new JsonArray(ops.Select(o => (JsonNode)o).ToArray()).ToJsonString(), V1Patch.PatchType.JsonPatch), name, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (attempt < 3 && (KubernetesErrors.IsInvalid(ex) || KubernetesErrors.IsConflict(ex)))
            {
                // The Deployment moved between the read and the patch (a test failed): read it again.
                reporter.Say($"Deployment {ns}/{name} changed while its -Fast strategy was being restored; reading it again.");
                continue;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                KfmException error = KubernetesErrors.Wrap(ex, $"Restoring the rollout strategy of deployment {ns}/{name} after -Fast", name);
                reporter.Warn($"{request.Environment.Name}: the rollback converged, but its raised strategy could not be restored: {error.Message} Run the same command again with -Wait to restore it.");
                reporter.Record("OPS", $"-Fast strategy of {ns}/{name} NOT restored ({error.ErrorId}); rerun with -Wait restores it");
                return null;
            }
            string by = record is null ? "an unreadable record" : $"run {record.Run}, raised by {record.Actor} at {record.At.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC";
            if (record is not null && ours.Count > 0)
            {
                reporter.Record("OPS", $"Restored the rollout strategy of {ns}/{name} after the -Fast rollback converged ({Describe(record.Raised.Where(r => ours.Contains(r.Key)).ToDictionary(), record.Original)}; {by}) by {request.Actor}: {request.Reason ?? "rollback finished"}");
            }
            if (record is null || theirs.Count > 0)
            {
                string left = record is null ? "the record of the raise could not be read, so nothing was put back" :
                    $"{string.Join(", ", theirs.Select(f => $"{f} is {Text(strategy["rollingUpdate"]?[f])}"))}, changed since the module set {string.Join(", ", theirs.Select(f => $"{f} {Text(record.Raised[f])}"))}; left as it is";
                reporter.Warn($"{request.Environment.Name}: -Fast strategy of {ns}/{name} not fully restored: {left}. Only what the module changed is put back.");
                reporter.Record("OPS", $"-Fast strategy of {ns}/{name}: {left} ({by})");
            }
            return new PlannedChange("rollout", $"deployment {ns}/{name}", "json-patch (strategy restore)", new JsonArray(ops.Select(o => (JsonNode)o.DeepClone()).ToArray()).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
    }

    private static IEnumerable<JsonObject> RestoreOps(FastRolloutRecord record, IEnumerable<string> fields)
    {
        foreach (string field in fields)
        {
            yield return new JsonObject { ["op"] = "test", ["path"] = PathOf(field), ["value"] = record.Raised[field]?.DeepClone() };
            yield return record.Original[field] is { } value
                ? new JsonObject { ["op"] = "replace", ["path"] = PathOf(field), ["value"] = value.DeepClone() }
                : new JsonObject { ["op"] = "remove", ["path"] = PathOf(field) };
        }
    }

    private static FastRolloutRecord? Parse(string text)
    {
        try
        {
            return JsonSerializer.Deserialize<FastRolloutRecord>(text, s_json);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static bool Same(JsonNode? a, JsonNode? b) => JsonNode.DeepEquals(a, b) || (a is not null && b is not null && a.ToString() == b.ToString());

    private static string Text(JsonNode? value) => value?.ToString() ?? "(unset)";

    private static string Describe(IReadOnlyDictionary<string, JsonNode?> from, IReadOnlyDictionary<string, JsonNode?> to) =>
        string.Join(", ", to.Keys.Select(f => $"{f} {Text(from.GetValueOrDefault(f))} → {Text(to[f])}"));

    /// <summary>An int-or-percent of <paramref name="total"/> as the deployment controller resolves it (maxSurge rounds up, maxUnavailable down).</summary>
    private static int Resolve(JsonNode? value, int total, bool roundUp, int defaultPercent)
    {
        string text = value?.ToString() ?? $"{defaultPercent}%";
        if (text.EndsWith('%') && decimal.TryParse(text[..^1], NumberStyles.Number, CultureInfo.InvariantCulture, out decimal percent))
        {
            decimal exact = total * percent / 100m;
            return (int)(roundUp ? Math.Ceiling(exact) : Math.Floor(exact));
        }
        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) ? n : 0;
    }

    /// <summary>What one pod takes of each quota resource (pkg/quota/v1/evaluator/core/pods.go, containers only).</summary>
    private static Dictionary<string, decimal> Usage(V1Pod pod)
    {
        var usage = new Dictionary<string, decimal>(StringComparer.Ordinal) { ["pods"] = 1, ["count/pods"] = 1 };
        foreach (V1Container container in pod.Spec?.Containers ?? new List<V1Container>())
        {
            foreach (string resource in new[] { "cpu", "memory" })
            {
                if (container.Resources?.Requests?.TryGetValue(resource, out ResourceQuantity? request) == true)
                {
                    usage[resource] = usage.GetValueOrDefault(resource) + request.ToDecimal();
                    usage["requests." + resource] = usage.GetValueOrDefault("requests." + resource) + request.ToDecimal();
                }
                if (container.Resources?.Limits?.TryGetValue(resource, out ResourceQuantity? limit) == true)
                {
                    usage["limits." + resource] = usage.GetValueOrDefault("limits." + resource) + limit.ToDecimal();
                }
            }
        }
        return usage;
    }

    private static string Quantity(string resource, decimal value) =>
        resource.EndsWith("memory", StringComparison.Ordinal) ? $"{value / (1024m * 1024m):0.##}Mi" : value.ToString("0.###", CultureInfo.InvariantCulture);
}
