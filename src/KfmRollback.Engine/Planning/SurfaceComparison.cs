using KfmRollback.Engine.Adapters.Opa;
using KfmRollback.Engine.Receipts;
using KfmRollback.Engine.Adapters.Kubernetes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Rollback.Surfaces;

namespace KfmRollback.Engine.Planning;

/// <summary>A template and the pod-template-hash its pods (and config snapshots) are labelled with.</summary>
public sealed record PlanTemplate(long Revision, V1PodTemplateSpec Template, string PodTemplateHash)
{
    public static PlanTemplate Of(V1ReplicaSet set) =>
        new(DeploymentRevisions.Revision(set.Metadata) ?? 0, set.Spec.Template, SurfaceRollback.PodTemplateHash(set));
}

/// <summary>The comparisons of one surface, and what they could not compare for want of a snapshot.</summary>
public sealed record SurfaceComparisonResult(IReadOnlyList<PlanEvidence> Evidence, IReadOnlyList<string> MissingSnapshots, string? NotCompared = null);

/// <summary>
/// The decision tree's "runtime config" and "policy pack / OPA wiring" questions: the running
/// configuration against the freeze-time snapshots of the last-known-good template. ConfigMaps and
/// Secrets are compared by content hash only; a Secret's data never leaves <see cref="ConfigSnapshots"/>.
/// </summary>
public sealed class SurfaceComparison
{
    public const string ImageSurface = "Image";
    public const string ConfigSurface = "Config";
    public const string PolicySurface = "Policy";

    private readonly EnvironmentConfig _environment;
    private readonly SurfaceRollback _surfaces;
    private readonly ConfigSnapshots _snapshots;

    public SurfaceComparison(IKubernetes client, EnvironmentConfig environment)
    {
        _environment = environment;
        _surfaces = new SurfaceRollback(client, environment);
        _snapshots = new ConfigSnapshots(client, environment.Cluster.Namespace);
    }

    private string Namespace => _environment.Cluster.Namespace;

    /// <summary>
    /// Every ConfigMap and Secret either template uses (plus config_surface): a name only the current
    /// template uses (such as a hash-suffixed kfm-api-config-7f8d9) or only the last-known-good used is a
    /// change; a name both use is compared live against the snapshot taken for the last-known-good.
    /// The policy ConfigMap's bundle key is left to <see cref="ComparePolicyAsync"/>.
    /// </summary>
    public async Task<SurfaceComparisonResult> CompareConfigAsync(PlanTemplate current, PlanTemplate lastGood, CancellationToken cancellationToken)
    {
        var now = _surfaces.ConfigObjects(current.Template, includePolicyMap: false).ToHashSet();
        var then = _surfaces.ConfigObjects(lastGood.Template, includePolicyMap: false).ToHashSet();
        var evidence = new List<PlanEvidence>();
        var missing = new List<string>();
        foreach (var (kind, name) in now.Union(then).OrderBy(o => o.Item1).ThenBy(o => o.Item2, StringComparer.Ordinal))
        {
            string item = $"{Describe(kind)} {Namespace}/{name}";
            string[] excluded = PolicyKeyIn(kind, name);
            string source = excluded.Length == 0 ? "" : $" (without key {excluded[0]}, compared as Policy)";
            ConfigContent? live = await _snapshots.ReadLiveAsync(kind, name, cancellationToken).ConfigureAwait(false);
            string liveHash = live?.Sha256Without(excluded) ?? "missing";
            if (!then.Contains((kind, name)))
            {
                evidence.Add(new PlanEvidence(ConfigSurface, item, liveHash, null, true, $"new reference: revision {current.Revision} uses it, revision {lastGood.Revision} did not"));
                continue;
            }
            if (!now.Contains((kind, name)))
            {
                evidence.Add(new PlanEvidence(ConfigSurface, item, null, liveHash, true, $"dropped reference: revision {lastGood.Revision} used it, revision {current.Revision} does not"));
                continue;
            }
            ConfigContent? snapshot = await _snapshots.FindSnapshotContentAsync(kind, name, lastGood.PodTemplateHash, cancellationToken).ConfigureAwait(false);
            if (snapshot is null)
            {
                missing.Add(item);
                continue;
            }
            string goodHash = snapshot.Sha256Without(excluded);
            evidence.Add(new PlanEvidence(ConfigSurface, item, liveHash, goodHash, liveHash != goodHash,
                $"live content vs snapshot {snapshot.Name} of revision {lastGood.Revision}{source}"));
        }
        return new SurfaceComparisonResult(evidence, missing);
    }

    /// <summary>
    /// The policy bundle ref where policy_surface says it lives (template env var or annotation, or a
    /// ConfigMap key compared with the last-known-good's snapshot), and OPA's active revision when
    /// policy_surface.opa_status_url is set.
    /// </summary>
    public async Task<SurfaceComparisonResult> ComparePolicyAsync(PlanTemplate current, PlanTemplate lastGood, string container, HttpClient? http, CancellationToken cancellationToken)
    {
        PolicySurfaceConfig? surface = _environment.PolicySurface;
        if (surface is null)
        {
            return new SurfaceComparisonResult(
                new[] { new PlanEvidence(PolicySurface, "policy bundle ref", null, null, false, "not compared: policy_surface is not configured") },
                Array.Empty<string>(), "policy_surface is not configured, so a policy bundle change cannot be ruled out");
        }
        var evidence = new List<PlanEvidence>();
        var missing = new List<string>();
        string? now, then;
        if (surface.Configmap is { } map)
        {
            string item = $"configmap {Namespace}/{map} key {surface.Key}";
            ConfigContent? live = await _snapshots.ReadLiveAsync(ConfigObjectKind.ConfigMap, map, cancellationToken).ConfigureAwait(false);
            ConfigContent? snapshot = await _snapshots.FindSnapshotContentAsync(ConfigObjectKind.ConfigMap, map, lastGood.PodTemplateHash, cancellationToken).ConfigureAwait(false);
            now = live?.ConfigMapData?.GetValueOrDefault(surface.Key!);
            then = snapshot?.ConfigMapData?.GetValueOrDefault(surface.Key!);
            if (snapshot is null)
            {
                missing.Add(item);
            }
            else
            {
                evidence.Add(new PlanEvidence(PolicySurface, "policy bundle ref", now, then, now != then, $"{item}: live vs snapshot {snapshot.Name} of revision {lastGood.Revision}"));
            }
        }
        else
        {
            now = TemplateReferences.PolicyBundleRef(current.Template, container, surface);
            then = TemplateReferences.PolicyBundleRef(lastGood.Template, container, surface);
            string where = surface.Env is not null ? $"env {surface.Env} of container {container}" : $"template annotation {surface.Annotation}";
            evidence.Add(new PlanEvidence(PolicySurface, "policy bundle ref", now, then, now != then, $"{where}: revision {current.Revision} vs revision {lastGood.Revision}"));
        }

        if (surface.OpaStatusUrl is { } url && missing.Count == 0)
        {
            IReadOnlyDictionary<string, string> revisions = await OpaStatus.ReadActiveRevisionsAsync(http ?? throw new ArgumentNullException(nameof(http)), url, cancellationToken).ConfigureAwait(false);
            string? bundle = OpaStatus.ChooseBundle(revisions, then ?? now);
            if (bundle is null)
            {
                throw new Core.KfmException(RollbackPlanErrorIds.Undetermined, Core.KfmErrorKind.Ambiguous,
                    $"OPA status {url.GetLeftPart(UriPartial.Path)} reports {(revisions.Count == 0 ? "no active bundle" : $"bundles {string.Join(", ", revisions.Keys)}")}, none of which the bundle ref '{then ?? now}' names, " +
                    "so whether OPA runs the last-known-good policy cannot be determined. Nothing is planned. Name the bundle in the ref as <bundle>@sha256-…, or check OPA's bundle configuration.", _environment.Name);
            }
            string active = revisions[bundle];
            evidence.Add(new PlanEvidence(PolicySurface, $"OPA bundle {bundle} active_revision", active, then, !OpaStatus.SameBundle(active, then),
                $"OPA status {url.GetLeftPart(UriPartial.Path)} vs the last-known-good bundle ref"));
        }
        return new SurfaceComparisonResult(evidence, missing);
    }

    private string[] PolicyKeyIn(ConfigObjectKind kind, string name) =>
        kind == ConfigObjectKind.ConfigMap && _environment.PolicySurface is { Configmap: { } map, Key: { } key } && map == name ? new[] { key } : Array.Empty<string>();

    private static string Describe(ConfigObjectKind kind) => kind == ConfigObjectKind.ConfigMap ? "configmap" : "secret";
}
