using KfmRollback.Engine.Adapters.Kubernetes;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Context;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Rollback.Surfaces;

/// <summary>What a rollback puts back: the API image (template), its runtime configuration, its policy bundle link.</summary>
[Flags]
public enum RollbackSurfaces
{
    Image = 1,
    Config = 2,
    Policy = 4,
}

/// <summary>
/// The runbook's steps 4 and 5 on the cluster side: put back the ConfigMaps/Secrets and the policy
/// bundle link that the target revision ran with. Everything is checked before anything changes;
/// what cannot be checked fails closed.
/// </summary>
public sealed class SurfaceRollback
{
    private readonly IKubernetes _client;
    private readonly EnvironmentConfig _environment;
    private readonly ConfigSnapshots _snapshots;

    public SurfaceRollback(IKubernetes client, EnvironmentConfig environment)
    {
        _client = client;
        _environment = environment;
        _snapshots = new ConfigSnapshots(client, environment.Cluster.Namespace);
    }

    /// <summary>The ConfigMaps and Secrets a template uses, plus those the configuration names.</summary>
    public IEnumerable<(ConfigObjectKind, string)> ConfigObjects(V1PodTemplateSpec template, bool includePolicyMap)
    {
        var objects = TemplateReferences.ConfigMaps(template).Select(n => (ConfigObjectKind.ConfigMap, n))
            .Concat(TemplateReferences.Secrets(template).Select(n => (ConfigObjectKind.Secret, n)))
            .Concat(_environment.ConfigSurface.Configmaps.Select(n => (ConfigObjectKind.ConfigMap, n)))
            .Concat(_environment.ConfigSurface.Secrets.Select(n => (ConfigObjectKind.Secret, n)));
        if (includePolicyMap && _environment.PolicySurface?.Configmap is { } policyMap)
        {
            objects = objects.Append((ConfigObjectKind.ConfigMap, policyMap));
        }
        return objects.Distinct().ToList();
    }

    /// <summary>Snapshots the configuration the running template uses (at freeze time and after a verified rollback).</summary>
    /// <summary>
    /// Snapshots the runtime configuration the running revision uses (at freeze time), so a later
    /// rollback can tell whether a reused ConfigMap or Secret name changed content. Hashes only.
    /// </summary>
    public static async Task<IReadOnlyList<ConfigObjectState>> SnapshotRunningAsync(EngineContext context, EnvironmentConfig environment, CancellationToken cancellationToken)
    {
        var client = context.Kubernetes(environment);
        var snapshot = await DeploymentSnapshot.ReadAsync(client, environment.Cluster.Namespace, environment.Cluster.Deployment, cancellationToken, includePods: false).ConfigureAwait(false);
        var current = snapshot.CurrentReplicaSet;
        if (current is null)
        {
            return Array.Empty<ConfigObjectState>();
        }
        return await new SurfaceRollback(client, environment).SnapshotAsync(current.Spec.Template, PodTemplateHash(current), cancellationToken).ConfigureAwait(false);
    }

    public Task<IReadOnlyList<ConfigObjectState>> SnapshotAsync(V1PodTemplateSpec template, string podTemplateHash, CancellationToken cancellationToken) =>
        _snapshots.TakeAsync(ConfigObjects(template, includePolicyMap: true), podTemplateHash, cancellationToken);

    /// <summary>
    /// What restoring the configuration of the target revision would do to each object. Throws
    /// (before any change) when an object is gone or its content for that revision is unknown.
    /// </summary>
    public async Task<IReadOnlyList<ConfigObjectState>> PlanConfigAsync(V1ReplicaSet target, RollbackSurfaces surfaces, bool force, CancellationToken cancellationToken)
    {
        string hash = PodTemplateHash(target);
        bool includePolicyMap = surfaces.HasFlag(RollbackSurfaces.Policy) && _environment.PolicySurface?.Configmap is not null;
        var objects = surfaces.HasFlag(RollbackSurfaces.Config)
            ? ConfigObjects(target.Spec.Template, includePolicyMap)
            : includePolicyMap ? new[] { (ConfigObjectKind.ConfigMap, _environment.PolicySurface!.Configmap!) } : Array.Empty<(ConfigObjectKind, string)>();
        IReadOnlyList<ConfigObjectState> plan = await _snapshots.PlanRestoreAsync(objects, hash, cancellationToken).ConfigureAwait(false);

        var missing = plan.Where(p => p.Action == "missing").ToList();
        if (missing.Count > 0)
        {
            throw new KfmException("ConfigSurfaceMissing", KfmErrorKind.ObjectNotFound,
                $"Revision {DeploymentRevisions.Revision(target.Metadata)} uses {Describe(missing)}, which no longer exist(s); its pods would not start. " +
                "Nothing was changed. Restore them from Git (-Method GitOps) first.", missing[0].Name);
        }
        var unknown = plan.Where(p => p.Action == "unknown").ToList();
        if (unknown.Count > 0 && !force)
        {
            throw new KfmException("ConfigSurfaceUnverifiable", KfmErrorKind.Ambiguous,
                $"No snapshot records what {Describe(unknown)} contained when revision {DeploymentRevisions.Revision(target.Metadata)} ran, so the module cannot tell whether the name was reused with other content. " +
                "Nothing was changed. Restore it from Git, or pass -Force with -ForceReason to leave it as it is.", unknown[0].Name);
        }
        return plan;
    }

    /// <summary>The surface a restored object serves: the policy ConfigMap is the policy surface, the rest config.</summary>
    public string SurfaceOf(ConfigObjectState state) =>
        state.Kind == ConfigObjectKind.ConfigMap && state.Name == _environment.PolicySurface?.Configmap ? "policy" : "config";

    /// <summary>A restore as a planned change: names and content hashes only, never data.</summary>
    public PlannedChange Change(ConfigObjectState state) => new(SurfaceOf(state),
        $"{state.Kind.ToString().ToLowerInvariant()} {_environment.Cluster.Namespace}/{state.Name}", "replace-data",
        $"data {state.ContentSha256} -> {state.SnapshotSha256} (from snapshot {state.SnapshotName})");

    /// <summary>Restores one planned object from its snapshot and records it.</summary>
    public async Task RestoreAsync(ConfigObjectState state, long? targetRevision, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        await _snapshots.RestoreAsync(state, cancellationToken).ConfigureAwait(false);
        reporter.Record("OPS", $"Restored {state.Kind.ToString().ToLowerInvariant()} {_environment.Cluster.Namespace}/{state.Name} to its content for revision {targetRevision} (from {state.SnapshotName})");
    }

    /// <summary>The restore sent with dryRun=All (the preflight): admitted or refused, nothing stored.</summary>
    public Task DryRunRestoreAsync(ConfigObjectState state, CancellationToken cancellationToken) =>
        _snapshots.RestoreAsync(state, cancellationToken, dryRun: true);

    /// <summary>
    /// For a policy-only rollback where the bundle ref lives in the template (env var or
    /// annotation): the JSON patch that sets the current template's value to the target's.
    /// </summary>
    public JsonArray? PolicyTemplatePatch(V1Deployment deployment, V1ReplicaSet target, string container)
    {
        PolicySurfaceConfig? surface = _environment.PolicySurface;
        if (surface is null)
        {
            throw new KfmException("PolicySurfaceNotConfigured", KfmErrorKind.InvalidOperation,
                $"Environment '{_environment.Name}' has no policy_surface, so the module does not know where the policy bundle reference lives. Configure policy_surface, or roll back the image.", _environment.Name);
        }
        string? wanted = TemplateReferences.PolicyBundleRef(target.Spec.Template, container, surface) ?? surface.KnownGoodBundleDigest;
        string? current = TemplateReferences.PolicyBundleRef(deployment.Spec.Template, container, surface);
        if (surface.Configmap is not null || wanted == current)
        {
            return null;
        }
        if (wanted is null)
        {
            throw new KfmException("PolicyTargetUnknown", KfmErrorKind.Ambiguous,
                $"Revision {DeploymentRevisions.Revision(target.Metadata)} carries no policy bundle reference and policy_surface.known_good_bundle_digest is not set: the last-known-good bundle cannot be determined.", _environment.Name);
        }
        var ops = new JsonArray { new JsonObject { ["op"] = "test", ["path"] = "/metadata/resourceVersion", ["value"] = deployment.Metadata.ResourceVersion } };
        if (surface.Env is { } env)
        {
            int c = deployment.Spec.Template.Spec.Containers.ToList().FindIndex(x => x.Name == container);
            int e = deployment.Spec.Template.Spec.Containers[c].Env?.ToList().FindIndex(x => x.Name == env) ?? -1;
            ops.Add(e < 0
                ? new JsonObject { ["op"] = "add", ["path"] = $"/spec/template/spec/containers/{c}/env/-", ["value"] = new JsonObject { ["name"] = env, ["value"] = wanted } }
                : new JsonObject { ["op"] = "replace", ["path"] = $"/spec/template/spec/containers/{c}/env/{e}/value", ["value"] = wanted });
        }
        else
        {
            ops.Add(new JsonObject { ["op"] = "add", ["path"] = "/spec/template/metadata/annotations/" + surface.Annotation!.Replace("~", "~0").Replace("/", "~1"), ["value"] = wanted });
        }
        return ops;
    }

    /// <summary>`kubectl rollout restart`: a template annotation change, so pods pick up restored configuration.</summary>
    public static JsonArray RestartPatch(V1Deployment deployment, DateTimeOffset now)
    {
        var ops = new JsonArray { new JsonObject { ["op"] = "test", ["path"] = "/metadata/resourceVersion", ["value"] = deployment.Metadata.ResourceVersion } };
        if (deployment.Spec.Template.Metadata?.Annotations is null)
        {
            ops.Add(new JsonObject { ["op"] = "add", ["path"] = "/spec/template/metadata/annotations", ["value"] = new JsonObject() });
        }
        ops.Add(new JsonObject { ["op"] = "add", ["path"] = "/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt", ["value"] = now.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ssK", System.Globalization.CultureInfo.InvariantCulture) });
        return ops;
    }

    public static string PodTemplateHash(V1ReplicaSet set) =>
        set.Metadata.Labels?.TryGetValue(DeploymentRevisions.PodTemplateHashLabel, out string? hash) == true ? hash : set.Metadata.Name;

    private string Describe(IEnumerable<ConfigObjectState> states) =>
        string.Join(", ", states.Select(s => $"{s.Kind.ToString().ToLowerInvariant()} {_environment.Cluster.Namespace}/{s.Name}"));
}

/// <summary>How surfaces are named for people and in the receipt (runbook: changed_surfaces api/config/policy).</summary>
public static class SurfaceNames
{
    public static IReadOnlyList<string> ReceiptNames(RollbackSurfaces surfaces)
    {
        var names = new List<string>();
        if (surfaces.HasFlag(RollbackSurfaces.Image)) { names.Add("api"); }
        if (surfaces.HasFlag(RollbackSurfaces.Config)) { names.Add("config"); }
        if (surfaces.HasFlag(RollbackSurfaces.Policy)) { names.Add("policy"); }
        return names;
    }

    /// <summary>"image+config" for timeline lines.</summary>
    public static string Of(RollbackSurfaces surfaces) => surfaces.ToString().ToLowerInvariant().Replace(", ", "+");
}
