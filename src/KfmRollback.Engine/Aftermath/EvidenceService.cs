using KfmRollback.Engine.Adapters.GitOpsControllers;
using KfmRollback.Engine.Adapters.Prometheus;
using KfmRollback.Engine.Adapters.Http;
using KfmRollback.Engine.Adapters.Kubernetes;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Context;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Freeze;
using KfmRollback.Engine.Incidents;
using KfmRollback.Engine.Receipts;
using KfmRollback.Engine.Refs;
using KfmRollback.Engine.Rollback.Surfaces;
using KfmRollback.Engine.Verification;

namespace KfmRollback.Engine.Aftermath;

/// <summary>What to capture, and for which incident.</summary>
public sealed record EvidenceRequest
{
    public required string IncidentId { get; init; }
    public required DateTimeOffset IncidentStart { get; init; }
    public string Stage { get; init; } = "manual";
    /// <summary>The incident's timeline so far, for the deploy/freeze/rollback/verification markers.</summary>
    public IReadOnlyList<TimelineEntry> Timeline { get; init; } = Array.Empty<TimelineEntry>();
    /// <summary>Checklist results to keep with the evidence (the aftermath bundle), if any.</summary>
    public VerificationSummary? Verification { get; init; }
    /// <summary>Run checklist B against the live API as part of the snapshot (what the incident looked like to callers).</summary>
    public bool ProbePolicy { get; init; } = true;
    /// <summary>What the last-known-good authority knows of the environment (quarantine, rollback targets), for the refs it records.</summary>
    public EnvironmentTrust? Trust { get; init; }
}

/// <summary>
/// Runbook step 0, "snapshot evidence": the Deployment, ReplicaSets, pods and events (redacted),
/// config and policy hashes, the GitOps controllers' status, Prometheus ranges of 5xx ratio, P95
/// and P99 over the baseline and the incident, audit_ref ids seen in probes and logs, the refs and
/// the markers the plots draw. Saved as a content-addressed bundle (<see cref="EvidenceStore"/>).
/// </summary>
public static partial class EvidenceService
{
    public static readonly string[] Metrics = { "error_ratio", "p95", "p99" };

    [GeneratedRegex(@"kfm://[A-Za-z0-9._~:/-]+", RegexOptions.CultureInvariant)]
    private static partial Regex AuditRef();

    public static EvidenceStore StoreFor(EnvironmentConfig environment, string? path = null) =>
        new(path ?? ReceiptStoreLocation.EvidenceDirectoryOf(environment) ?? throw new KfmException("EvidenceDirectoryUnknown", KfmErrorKind.InvalidArgument,
            $"Environment '{environment.Name}' has no evidence directory and no receipt store to put one in. Set evidence.directory or pass -Path.", environment.Name));

    public static async Task<EvidenceBundle> CaptureAsync(EngineContext context, EnvironmentConfig environment, EvidenceRequest request, EvidenceStore store, Action<string>? say, CancellationToken cancellationToken)
    {
        DateTimeOffset now = context.Clock.UtcNow;
        var redactor = Redactors.For(environment);
        var files = new SortedDictionary<string, JsonNode?>(StringComparer.Ordinal);
        IKubernetes client = context.Kubernetes(environment);

        say?.Invoke("evidence: reading the Deployment, its ReplicaSets, pods and events");
        DeploymentSnapshot snapshot = await DeploymentSnapshot.ReadAsync(client, environment.Cluster.Namespace, environment.Cluster.Deployment, cancellationToken).ConfigureAwait(false);
        files["cluster/deployment.json"] = ToNode(snapshot.Deployment);
        files["cluster/replicasets.json"] = new JsonArray(snapshot.ReplicaSets.Select(ToNode).ToArray());
        files["cluster/pods.json"] = new JsonArray(snapshot.Pods.Select(ToNode).ToArray());
        files["cluster/events.json"] = await EventsAsync(client, snapshot, cancellationToken).ConfigureAwait(false);

        say?.Invoke("evidence: hashing configuration and the policy bundle reference");
        files["config/config-and-policy.json"] = await ConfigAndPolicyAsync(client, environment, snapshot, cancellationToken).ConfigureAwait(false);
        files["gitops/controllers.json"] = await ControllersAsync(context, environment, cancellationToken).ConfigureAwait(false);

        say?.Invoke("evidence: Prometheus ranges (5xx ratio, P95, P99) over the baseline and the incident");
        files["metrics/ranges.json"] = await MetricsAsync(environment, request.IncidentStart, now, BaselineOf(request.Verification), cancellationToken).ConfigureAwait(false);

        ApiRef apiRef = ClusterRefReader.Read(snapshot, environment.Name, environment.Cluster.Container, request.Trust);
        files["refs.json"] = new JsonObject
        {
            ["current_ref"] = apiRef.CurrentRef,
            ["current_image"] = apiRef.CurrentImage,
            ["running_digests"] = new JsonArray(apiRef.RunningDigests.Select(d => (JsonNode)JsonValue.Create(d)!).ToArray()),
            ["revision"] = apiRef.Revision,
            ["last_known_good_ref"] = apiRef.LastKnownGoodRef,
        };
        files["markers.json"] = Markers(store, request, snapshot);

        say?.Invoke("evidence: audit_ref ids from probes and logs");
        (JsonNode audit, JsonNode? policy) = await ApiAsync(environment, client, snapshot, request.ProbePolicy, cancellationToken).ConfigureAwait(false);
        files["api/audit-refs.json"] = audit;
        if (policy is not null) files["api/policy-checks.json"] = policy;
        if (request.Verification is { } verification) files["verification.json"] = VerificationNode(verification);

        var bytes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var (path, node) in files)
        {
            string text = (redactor.Json(node) ?? new JsonObject()).ToJsonString(new() { WriteIndented = true });
            redactor.EnsureClean(text, "evidence file " + path);
            bytes[path] = EvidenceStore.Utf8(text);
        }
        return store.Save(request.IncidentId, environment.Name, request.Stage, now, bytes);
    }

    private static JsonNode ToNode(object value) => JsonNode.Parse(KubernetesJson.Serialize(value))!;

    private static async Task<JsonNode> EventsAsync(IKubernetes client, DeploymentSnapshot snapshot, CancellationToken cancellationToken)
    {
        var names = new HashSet<string>(StringComparer.Ordinal) { snapshot.Name };
        names.UnionWith(snapshot.ReplicaSets.Select(r => r.Metadata.Name));
        names.UnionWith(snapshot.Pods.Select(p => p.Metadata.Name));
        try
        {
            Corev1EventList events = await client.CoreV1.ListNamespacedEventAsync(snapshot.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
            return new JsonArray(events.Items.Where(e => e.InvolvedObject?.Name is { } n && names.Contains(n)).Select(ToNode).ToArray());
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return new JsonObject { ["problem"] = $"events could not be listed ({ex.GetType().Name})" };
        }
    }

    private static async Task<JsonNode> ConfigAndPolicyAsync(IKubernetes client, EnvironmentConfig environment, DeploymentSnapshot snapshot, CancellationToken cancellationToken)
    {
        var snapshots = new ConfigSnapshots(client, environment.Cluster.Namespace);
        V1PodTemplateSpec template = snapshot.Deployment.Spec.Template;
        var objects = new JsonArray();
        foreach (var (kind, name) in new SurfaceRollback(client, environment).ConfigObjects(template, includePolicyMap: true))
        {
            ConfigContent? live = await snapshots.ReadLiveAsync(kind, name, cancellationToken).ConfigureAwait(false);
            objects.Add(new JsonObject { ["kind"] = kind.ToString(), ["name"] = name, ["sha256"] = live?.Sha256, ["exists"] = live is not null });
        }
        var result = new JsonObject { ["objects"] = objects };
        if (environment.PolicySurface is { } surface)
        {
            string? bundle = TemplateReferences.PolicyBundleRef(template, environment.Cluster.Container ?? template.Spec.Containers[0].Name, surface);
            if (surface is { Configmap: { } map, Key: { } key })
            {
                bundle = (await snapshots.ReadLiveAsync(ConfigObjectKind.ConfigMap, map, cancellationToken).ConfigureAwait(false))?.ConfigMapData?.GetValueOrDefault(key);
            }
            var policy = new JsonObject { ["bundle_ref"] = bundle };
            if (surface.OpaStatusUrl is { } url)
            {
                try
                {
                    using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
                    var revisions = await KfmRollback.Engine.Adapters.Opa.OpaStatus.ReadActiveRevisionsAsync(http, url, cancellationToken).ConfigureAwait(false);
                    policy["opa_active_revisions"] = new JsonObject(revisions.Select(r => KeyValuePair.Create(r.Key, (JsonNode?)r.Value)));
                }
                catch (KfmException ex)
                {
                    policy["opa_problem"] = ex.Message;
                }
            }
            result["policy"] = policy;
        }
        return result;
    }

    private static async Task<JsonNode> ControllersAsync(EngineContext context, EnvironmentConfig environment, CancellationToken cancellationToken)
    {
        var controllers = new JsonArray();
        // The controllers that deploy from Git, read once each through their adapter: the freeze record and the status come from one read.
        IReadOnlyList<IDeployingController> deploying = environment.FreezeSection is null ? Array.Empty<IDeployingController>()
            : GitOpsControllerKinds.Deploying(context.Kubernetes(environment), environment);
        foreach (IDeployingController controller in deploying)
        {
            var entry = new JsonObject { ["kind"] = controller.Kind.ToString(), ["target"] = controller.Object.Description };
            try
            {
                JsonObject resource = await controller.GetAsync(cancellationToken).ConfigureAwait(false);
                FreezeState state = new ControllerFreeze(controller, environment.Name).StateOf(resource);
                entry["frozen"] = state.Frozen;
                entry["frozen_at"] = state.FrozenAt is { } at ? ReceiptFactory.Rfc3339Utc(at) : null;
                entry["status"] = resource["status"]?.DeepClone();
            }
            catch (KfmException ex)
            {
                entry["problem"] = ex.Message;
            }
            controllers.Add(entry);
        }
        return new JsonObject { ["controllers"] = controllers };
    }

    private static (DateTimeOffset From, DateTimeOffset To, string Reason)? BaselineOf(VerificationSummary? verification) =>
        verification?.Baseline is { } b ? (b.From, b.To, b.Reason) : null;

    private static async Task<JsonNode> MetricsAsync(EnvironmentConfig environment, DateTimeOffset incidentStart, DateTimeOffset now,
        (DateTimeOffset From, DateTimeOffset To, string Reason)? baseline, CancellationToken cancellationToken)
    {
        // A cluster-only environment still gets a bundle: what it cannot capture is said, not failed.
        if (environment.PrometheusSection is not { } prometheus)
        {
            return new JsonObject { ["problem"] = "no prometheus section is configured: no metrics were captured" };
        }
        // The plots show the window the verdict compared with: the verification's baseline when there is one
        // (it may lie before an earlier incident), else the window before this incident's start.
        (DateTimeOffset baselineFrom, DateTimeOffset baselineTo) = baseline is { } b ? (b.From, b.To) : (incidentStart - prometheus.BaselineWindow, incidentStart);
        DateTimeOffset start = baselineFrom < incidentStart - prometheus.BaselineWindow ? baselineFrom : incidentStart - prometheus.BaselineWindow;
        using var client = new PrometheusClient(prometheus);
        var templates = new[] { prometheus.Queries.ErrorRatio, prometheus.Queries.P95, prometheus.Queries.P99 };
        PromRange[] ranges = await Task.WhenAll(templates.Select(t =>
            client.QueryRangeAsync(prometheus.Render(t, prometheus.EvaluationWindow), start, now, environment.Evidence.Step, cancellationToken))).ConfigureAwait(false);
        var series = new JsonObject();
        for (int i = 0; i < Metrics.Length; i++)
        {
            series[Metrics[i]] = new JsonObject
            {
                ["query"] = prometheus.Render(templates[i], prometheus.EvaluationWindow),
                ["unit"] = i == 0 ? "ratio" : "seconds",
                ["problem"] = ranges[i].Problem,
                ["values"] = new JsonArray(ranges[i].Samples.Select(s => (JsonNode)new JsonArray(s.At.ToUnixTimeSeconds(), s.Value is { } v ? JsonValue.Create(v) : null)).ToArray()),
            };
        }
        return new JsonObject
        {
            ["start"] = ReceiptFactory.Rfc3339Utc(start),
            ["end"] = ReceiptFactory.Rfc3339Utc(now),
            ["step_seconds"] = environment.Evidence.Step.TotalSeconds,
            ["windows"] = new JsonObject
            {
                ["baseline"] = new JsonArray(ReceiptFactory.Rfc3339Utc(baselineFrom), ReceiptFactory.Rfc3339Utc(baselineTo)),
                ["incident"] = new JsonArray(ReceiptFactory.Rfc3339Utc(incidentStart), ReceiptFactory.Rfc3339Utc(now)),
            },
            ["baseline_reason"] = baseline?.Reason ?? "the window before the incident (no verification with a baseline in this bundle)",
            ["series"] = series,
        };
    }

    /// <summary>
    /// The plots' vertical markers. Deploy is when the ReplicaSet of the build running at the first
    /// capture was created (later bundles carry it forward: after a rollback the old ReplicaSet runs
    /// again); the others are the first matching timeline entries.
    /// </summary>
    private static JsonNode Markers(EvidenceStore store, EvidenceRequest request, DeploymentSnapshot snapshot)
    {
        DateTimeOffset? deploy = store.ForIncident(request.IncidentId)
            .Select(b => b.ReadJson("markers.json")?["deploy"]?.GetValue<string>())
            .Where(s => s is not null)
            .Select(s => (DateTimeOffset?)DateTimeOffset.Parse(s!, CultureInfo.InvariantCulture))
            .FirstOrDefault();
        deploy ??= snapshot.CurrentReplicaSet?.Metadata.CreationTimestamp is { } created ? new DateTimeOffset(DateTime.SpecifyKind(created, DateTimeKind.Utc)) : null;
        var markers = new JsonObject { ["deploy"] = deploy is { } d ? ReceiptFactory.Rfc3339Utc(d) : null };
        foreach (var (name, at) in TimelineMarkers.From(request.Timeline))
        {
            markers[name] = ReceiptFactory.Rfc3339Utc(at);
        }
        return markers;
    }

    private static async Task<(JsonNode Audit, JsonNode? Policy)> ApiAsync(EnvironmentConfig environment, IKubernetes client, DeploymentSnapshot snapshot, bool probePolicy, CancellationToken cancellationToken)
    {
        var fromProbes = new SortedSet<string>(StringComparer.Ordinal);
        var problems = new JsonArray();
        try
        {
            using var probes = new ProbeClient(environment.Api);
            string? token = environment.Api.Probe.Callers.Where(c => !c.Value.Anonymous).Select(c => probes.TokenOf(c.Key)).FirstOrDefault(t => t is not null);
            var requests = environment.Api.Probe.Endpoints.Where(e => !e.Path.Contains('{'))
                .Select(e => new ProbeRequest(HttpMethod.Get, e.Path, token))
                .Concat(environment.Api.HealthPaths.Select(p => new ProbeRequest(HttpMethod.Get, p, token))).ToArray();
            foreach (ProbeResponse response in await probes.SendManyAsync(requests, cancellationToken).ConfigureAwait(false))
            {
                CollectAuditRefs(response.Body, fromProbes);
            }
        }
        catch (KfmException ex)
        {
            problems.Add(JsonValue.Create("probes: " + ex.Message));
        }
        var fromLogs = new SortedSet<string>(StringComparer.Ordinal);
        foreach (V1Pod pod in snapshot.Pods)
        {
            try
            {
                using Stream stream = await client.CoreV1.ReadNamespacedPodLogAsync(pod.Metadata.Name, snapshot.Namespace,
                    sinceSeconds: (int)Math.Max(1, environment.Observability.LogWindow.TotalSeconds), cancellationToken: cancellationToken).ConfigureAwait(false);
                using var reader = new StreamReader(stream);
                foreach (Match m in AuditRef().Matches(await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false)))
                {
                    if (fromLogs.Count < 500) fromLogs.Add(m.Value.TrimEnd('.', ':', '/'));
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                problems.Add(JsonValue.Create($"logs of pod {pod.Metadata.Name}: {ex.GetType().Name}"));
            }
        }
        var audit = new JsonObject
        {
            ["from_probes"] = new JsonArray(fromProbes.Select(s => (JsonNode)JsonValue.Create(s)!).ToArray()),
            ["from_logs"] = new JsonArray(fromLogs.Select(s => (JsonNode)JsonValue.Create(s)!).ToArray()),
            ["problems"] = problems,
        };
        if (!probePolicy) return (audit, null);
        try
        {
            IReadOnlyList<CheckResult> results = await PolicyChecks.RunAsync(environment, cancellationToken).ConfigureAwait(false);
            return (audit, new JsonObject { ["results"] = ResultsNode(results) });
        }
        catch (KfmException ex) when (ex.Kind is KfmErrorKind.ConnectionError or KfmErrorKind.InvalidArgument)
        {
            return (audit, new JsonObject { ["problem"] = ex.Message, ["results"] = new JsonArray() });
        }
    }

    /// <summary>Only the ids: the value of every <c>audit_ref</c> property, wherever it sits in the body.</summary>
    private static void CollectAuditRefs(JsonNode? node, ISet<string> into)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (key, value) in obj)
                {
                    if (key == "audit_ref" && value is JsonValue v && v.TryGetValue(out string? id) && AuditRef().IsMatch(id)) into.Add(id);
                    else CollectAuditRefs(value, into);
                }
                break;
            case JsonArray array:
                foreach (JsonNode? item in array) CollectAuditRefs(item, into);
                break;
        }
    }

    private static JsonArray ResultsNode(IEnumerable<CheckResult> results) =>
        new(results.Select(r => (JsonNode)new JsonObject
        {
            ["check"] = r.Check,
            ["section"] = r.Section.ToString(),
            ["verdict"] = r.Verdict.ToString(),
            ["summary"] = r.Summary,
        }).ToArray());

    private static JsonNode VerificationNode(VerificationSummary summary) => new JsonObject
    {
        ["health"] = summary.HealthVerdict.ToString(),
        ["policy_invariants"] = summary.PolicyVerdict.ToString(),
        ["contract"] = summary.ContractVerdict.ToString(),
        ["observability"] = summary.ObservabilityVerdict.ToString(),
        ["current_ref"] = summary.CurrentRef,
        ["rollback_target_ref"] = summary.RollbackTargetRef,
        ["method"] = summary.Method,
        ["results"] = ResultsNode(summary.Results),
    };
}

/// <summary>Which timeline entries mark the freeze, the rollback and the verification.</summary>
public static class TimelineMarkers
{
    /// <summary>The event Test-KfmRollback records, and the marker's anchor.</summary>
    public const string VerifiedPrefix = TimelineFacts.VerifiedPrefix;

    public static IEnumerable<(string Name, DateTimeOffset At)> From(IEnumerable<TimelineEntry> timeline)
    {
        var facts = TimelineFacts.Read(timeline);
        if (facts.FirstFreeze is { } freeze) yield return ("freeze", freeze.At);
        if (facts.FirstRollbackApplied is { } rollback) yield return ("rollback", rollback.At);
        if (facts.LastVerification is { } verified) yield return ("verification", verified.Entry.At);
    }

    /// <summary>The line Test-KfmRollback appends: section verdicts and the checks that did not pass (ids only).</summary>
    public static string VerifiedLine(VerificationSummary summary)
    {
        var notPassed = summary.Results.Where(r => r.Verdict != Verdict.Pass).Select(r => $"{r.Check} {r.Verdict.ToString().ToLowerInvariant()}").ToList();
        return $"{VerifiedPrefix}{summary.Environment}: A {Word(summary.HealthVerdict)}, B {Word(summary.PolicyVerdict)}, C {Word(summary.ContractVerdict)}, D {Word(summary.ObservabilityVerdict)}"
            + (notPassed.Count == 0 ? "" : $" (not passing: {string.Join(", ", notPassed.Take(8))})");
    }

    private static string Word(Verdict verdict) => verdict.ToString().ToLowerInvariant();
}
