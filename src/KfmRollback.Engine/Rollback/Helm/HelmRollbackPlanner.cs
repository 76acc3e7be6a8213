using KfmRollback.Engine.Refs;
using KfmRollback.Engine.Adapters.Helm;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s.Models;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Rollback.Cluster;

namespace KfmRollback.Engine.Rollback.Helm;

/// <summary>
/// Computes a Helm rollback as helm's pkg/action/rollback.go prepareRollback and pkg/storage/storage.go
/// Create do, from data only, and refuses what the module does not apply itself.
/// </summary>
public static class HelmRollbackPlanner
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>
    /// helm/helm#9548: an interrupted helm operation leaves its revision pending-*, and every later
    /// upgrade fails with helm's "another operation (install/upgrade/rollback) is in progress". Checked
    /// before any target is chosen, so the operator learns the release is stuck, not that it has no history.
    /// </summary>
    public static void RefusePending(EnvironmentConfig environment, IReadOnlyList<StoredRelease> history, HelmConfig helm)
    {
        string release = helm.Release;
        StoredRelease current = history[^1];
        if (HelmStatus.IsPending(current.Status))
        {
            StoredRelease? deployed = history.LastOrDefault(r => r.Status == HelmStatus.Deployed);
            string fix = deployed is not null
                ? $"If no helm operation is still running (find who deploys), fix the stuck release as helm advises: 'helm rollback {release} {deployed.Version} --wait' (revision {deployed.Version} is the last deployed), then plan again."
                : $"No revision was ever deployed: if no helm operation is still running, remove the stuck release ('helm uninstall {release}') and install it again.";
            throw new KfmException("HelmReleasePending", KfmErrorKind.ResourceBusy,
                $"Preflight check helm-release-status failed for {environment.Name}: another operation (install/upgrade/rollback) is in progress: revision {current.Version} of Helm release \"{release}\" is {current.Status}. " +
                $"Nothing was changed. {fix} Meanwhile: {Preflight.PreflightErrorIds.WaysOut}", release);
        }
    }

    public static MechanismPlan Plan(RollbackRequest request, IReadOnlyList<StoredRelease> history, V1Deployment deployment, HelmConfig helm, DateTimeOffset now)
    {
        EnvironmentConfig environment = request.Environment;
        string release = helm.Release, releaseNamespace = helm.EffectiveNamespace(environment.Cluster);
        string deploymentName = environment.Cluster.Deployment;

        // storage.go Last: the highest revision, whatever its status, is helm's currentRelease.
        StoredRelease current = history[^1];
        RefusePending(environment, history, helm);
        StoredRelease target = Target(request.Target, history, current, release, deploymentName, request.ContainerName.Length > 0 ? request.ContainerName : null);
        if (current.Status == HelmStatus.Deployed && target.Release.ManifestHash == current.Release.ManifestHash)
        {
            // What helm's rollback would write is what runs (the target is this revision, or a copy of it): a revision
            // "Rollback to N" would change nothing but the history, and a rerun must not add one.
            string? digest = ImageRefs.DigestOf(HelmReleaseRefs.ImageOf(current.Release, deploymentName, request.ContainerName.Length > 0 ? request.ContainerName : null)?.Image);
            return Unchanged(request, digest, digest, current.Version, target.Version,
                $"skipped rollback (revision {current.Version} of Helm release {releaseNamespace}/{release} already renders what revision {target.Version} does)", now);
        }

        IReadOnlyList<ManifestObject> currentObjects = HelmManifest.Parse(current.Release.Manifest, release);
        IReadOnlyList<ManifestObject> targetObjects = HelmManifest.Parse(target.Release.Manifest, release);
        RefuseUnsupported(currentObjects, targetObjects, releaseNamespace, deploymentName, release, current.Version, target.Version);
        JsonObject template = (JsonObject)HelmManifest.Deployment(targetObjects, deploymentName)!.Body["spec"]!["template"]!.DeepClone();

        HelmRelease newRelease = HelmRelease.RollbackOf(current.Release, target.Release, now);
        IReadOnlyList<StoredRelease> pruned = Prune(history, helm.HistoryMax);
        IReadOnlyList<StoredRelease> superseded = history.Where(r => r.Status == HelmStatus.Deployed && !pruned.Contains(r)).ToList();
        string? container = request.ContainerName.Length > 0 ? request.ContainerName : null;

        var plan = new HelmRollbackPlan
        {
            Method = RollbackMethod.Helm,
            Environment = environment.Name,
            Release = release,
            ReleaseNamespace = releaseNamespace,
            DeploymentNamespace = environment.Cluster.Namespace,
            Deployment = deploymentName,
            CurrentVersion = current.Version,
            TargetVersion = target.Version,
            NewRelease = newRelease,
            Observed = history.ToDictionary(r => r.Version, r => r.ResourceVersion),
            Pruned = pruned.Select(r => r.Version).ToList(),
            Superseded = superseded.Select(r => r.Version).ToList(),
            DeploymentResourceVersion = deployment.Metadata.ResourceVersion,
            DeploymentGeneration = deployment.Metadata.Generation ?? 0,
            TargetTemplate = template,
            CurrentRef = ImageRefs.DigestOf(HelmReleaseRefs.ImageOf(current.Release, deploymentName, container)?.Image),
            TargetRef = ImageRefs.DigestOf(HelmReleaseRefs.ImageOf(target.Release, deploymentName, container)?.Image),
            TargetImage = HelmReleaseRefs.ImageOf(target.Release, deploymentName, container)?.Image,
            FromRevision = current.Version,
            ToRevision = target.Version,
            Changes = Array.Empty<PlannedChange>(),
            Summary = "",
            PlannedAt = now,
        };
        var changes = new List<PlannedChange>();
        changes.AddRange(pruned.Select(r => DeleteChange(releaseNamespace, r)));
        changes.Add(CreateChange(releaseNamespace, newRelease));
        changes.Add(PatchChange(plan, plan.Patch(plan.DeploymentResourceVersion), Configuration.Redactors.For(environment)));
        changes.AddRange(superseded.Select(r => StatusChange(releaseNamespace, r, HelmStatus.Superseded)));
        changes.Add(StatusChange(releaseNamespace, release, plan.NewVersion, HelmStatus.PendingRollback, HelmStatus.Deployed + " (failed if the rollout fails)"));
        return plan with
        {
            Changes = changes,
            Summary = $"would write revision {plan.NewVersion} of Helm release {releaseNamespace}/{release} (\"Rollback to {target.Version}\") and give deployment " +
                $"{plan.DeploymentNamespace}/{deploymentName} revision {target.Version}'s pod template" +
                (pruned.Count > 0 ? $"; prune revision(s) {string.Join(", ", plan.Pruned)} (history_max {helm.HistoryMax})" : "") +
                (superseded.Count > 0 ? $"; supersede revision(s) {string.Join(", ", plan.Superseded)}" : ""),
        };
    }

    /// <summary>A plan that sends nothing (the release already is where the rollback would take it), saying why.</summary>
    public static MechanismPlan Unchanged(RollbackRequest request, string? currentRef, string? targetRef, long fromRevision, long toRevision, string summary, DateTimeOffset now) => new()
    {
        Method = RollbackMethod.Helm,
        Environment = request.Environment.Name,
        CurrentRef = currentRef,
        TargetRef = targetRef,
        FromRevision = fromRevision,
        ToRevision = toRevision,
        Changes = Array.Empty<PlannedChange>(),
        Summary = summary,
        PlannedAt = now,
    };

    /// <summary>prepareRollback's choice of previousVersion, plus a digest target (the newest revision running it).</summary>
    private static StoredRelease Target(RollbackTarget target, IReadOnlyList<StoredRelease> history, StoredRelease current, string release, string deployment, string? container)
    {
        if (target.Digest is not null)
        {
            // A short digest copied from a table names the one release digest it starts.
            string digest = ImageRefs.ResolvePrefix(target.Digest, history.Select(r => ImageRefs.DigestOf(HelmReleaseRefs.ImageOf(r.Release, deployment, container)?.Image)),
                $"the history of Helm release \"{release}\"");
            target = target with { Digest = digest };
            var matches = history
                .Where(r => ImageRefs.DigestOf(HelmReleaseRefs.ImageOf(r.Release, deployment, container)?.Image) == target.Digest)
                .OrderByDescending(r => r.Version)
                .ToList();
            if (matches.Count == 0)
            {
                throw new KfmException("RollbackTargetNotInHistory", KfmErrorKind.ObjectNotFound,
                    $"No revision of Helm release \"{release}\" runs {target.Digest}; it may have been pruned by --history-max. " +
                    "Check Get-KfmRolloutHistory -Source Helm, or roll back through Git with -Method GitOps -ToRef.", target.Digest);
            }
            if (matches.Select(m => m.Release.ManifestHash).Distinct(StringComparer.Ordinal).Count() > 1)
            {
                throw new KfmException("RollbackTargetAmbiguous", KfmErrorKind.Ambiguous,
                    $"Revisions {string.Join(", ", matches.Select(m => m.Version))} of Helm release \"{release}\" all run {target.Digest} but their manifests differ. " +
                    "Choose one with -ToRevision.", target.Digest);
            }
            return matches[0];
        }
        long revision = target.Revision ?? 0;
        if (revision < 0)
        {
            throw new KfmException("RollbackRevisionNotFound", KfmErrorKind.InvalidArgument, "invalid release revision: -ToRevision must be 0 (the previous revision) or a revision number.", revision);
        }
        // rollback.go: "previousVersion = currentRelease.Version - 1" when no version is given.
        long wanted = revision == 0 ? current.Version - 1 : revision;
        return history.FirstOrDefault(r => r.Version == wanted) ?? throw new KfmException("RollbackRevisionNotFound", KfmErrorKind.ObjectNotFound,
            $"release has no {wanted} version (Helm release \"{release}\" has revisions {string.Join(", ", history.Select(r => r.Version))}). See Get-KfmRolloutHistory -Source Helm.", wanted);
    }

    /// <summary>
    /// Default-deny: the module sends one change to the cluster, the API Deployment's pod template.
    /// Any other difference between the current and target manifests is left to helm itself.
    /// </summary>
    private static void RefuseUnsupported(IReadOnlyList<ManifestObject> current, IReadOnlyList<ManifestObject> target, string releaseNamespace, string deployment, string release, int from, int to)
    {
        var now = current.ToDictionary(o => o.Key(releaseNamespace));
        var then = target.ToDictionary(o => o.Key(releaseNamespace));
        // What helm rollback would delete: objects of the current manifest the target does not render
        // (kube.Client.Update), unless annotated helm.sh/resource-policy: keep.
        var deleted = now.Where(o => !then.ContainsKey(o.Key) && !Kept(o.Value)).Select(o => o.Value).OrderBy(o => o.ToString(), StringComparer.Ordinal).ToList();
        var crds = deleted.Where(o => o.Kind == "CustomResourceDefinition" && o.ApiVersion.StartsWith("apiextensions.k8s.io/", StringComparison.Ordinal)).ToList();
        if (crds.Count > 0)
        {
            throw new KfmException("HelmRollbackDeletesCrd", KfmErrorKind.InvalidOperation,
                $"Preflight check helm-deletions failed: rolling Helm release \"{release}\" back from revision {from} to {to} would delete {string.Join(", ", crds)} " +
                $"(in revision {from}'s manifest, not in {to}'s), and deleting a CustomResourceDefinition deletes every custom resource of that kind with it; 'helm rollback' would do the same. " +
                $"Nothing was changed. Fail forward with a chart that keeps the CRD (annotation helm.sh/resource-policy: keep), fail closed (Enable-KfmFailClosed) while the API is unsafe, or choose a target that renders it (-ToRevision; Get-KfmRolloutHistory -Source Helm).", crds[0].Name);
        }
        var differences = new List<string>();
        foreach (string key in now.Keys.Union(then.Keys).Order(StringComparer.Ordinal))
        {
            now.TryGetValue(key, out ManifestObject? a);
            then.TryGetValue(key, out ManifestObject? b);
            if (a is null || b is null)
            {
                differences.Add($"{(a ?? b)!} ({(a is null ? $"only in revision {to}" : $"not in revision {to}: helm rollback deletes it")})");
            }
            else if (a.Kind == "Deployment" && a.Name == deployment)
            {
                if (!ClusterRollbackPlanner.SemanticallyEqual(WithoutTemplate(a.Body), WithoutTemplate(b.Body)))
                {
                    differences.Add($"{a} (outside its pod template)");
                }
            }
            else if (!ClusterRollbackPlanner.SemanticallyEqual(a.Body, b.Body))
            {
                differences.Add(a.ToString());
            }
        }
        if (HelmManifest.Deployment(target, deployment) is null || HelmManifest.Deployment(current, deployment) is null)
        {
            differences.Add($"Deployment {deployment} (not rendered by both revisions)");
        }
        if (differences.Count > 0)
        {
            throw new KfmException("HelmRollbackUnsupportedChange", KfmErrorKind.InvalidOperation,
                $"Rolling Helm release \"{release}\" back from revision {from} to {to} would also change {string.Join(", ", differences.Distinct())}; " +
                $"the module only rolls back the pod template of Deployment {deployment}. Nothing was changed. Run 'helm rollback {release} {to} --wait' " +
                "(GitOps controllers frozen) instead, and record it on the incident.", release);
        }
    }

    /// <summary>helm's resource policy: an object annotated helm.sh/resource-policy: keep survives a rollback that no longer renders it.</summary>
    private static bool Kept(ManifestObject o) =>
        o.Body["metadata"]?["annotations"]?["helm.sh/resource-policy"] is JsonValue value && value.TryGetValue(out string? policy) && policy == "keep";

    private static JsonObject WithoutTemplate(JsonObject body)
    {
        var copy = (JsonObject)body.DeepClone();
        (copy["spec"] as JsonObject)?.Remove("template");
        return copy;
    }

    /// <summary>
    /// storage.go removeLeastRecent(name, MaxHistory-1), run by Create before the new revision is
    /// written: oldest first, never the newest deployed one, until MaxHistory-1 remain.
    /// </summary>
    public static IReadOnlyList<StoredRelease> Prune(IReadOnlyList<StoredRelease> history, int historyMax)
    {
        int max = historyMax - 1;
        if (historyMax <= 0 || history.Count <= max)
        {
            return Array.Empty<StoredRelease>();
        }
        StoredRelease? lastDeployed = history.Where(r => r.Status == HelmStatus.Deployed).MaxBy(r => r.Version);
        var delete = new List<StoredRelease>();
        foreach (StoredRelease release in history.OrderBy(r => r.Version))
        {
            if (history.Count - delete.Count == max)
            {
                break;
            }
            if (lastDeployed is null || release.Version != lastDeployed.Version)
            {
                delete.Add(release);
            }
        }
        return delete;
    }

    public static PlannedChange DeleteChange(string @namespace, StoredRelease release) =>
        new("release", $"secret {@namespace}/{release.SecretName}", "delete", $"prune revision {release.Version} ({release.Status}) beyond helm.history_max");

    /// <summary>The new revision, described by hashes: its values are never shown.</summary>
    public static PlannedChange CreateChange(string @namespace, HelmRelease release) =>
        new("release", $"secret {@namespace}/{HelmReleaseStore.SecretName(release.Name, release.Version)}", "create", string.Join(System.Environment.NewLine,
            $"type: {HelmReleaseStore.SecretType}; labels owner=helm, name={release.Name}, status={release.Status}, version={release.Version}",
            $"revision: {release.Version}",
            $"chart: {release.Chart ?? "unknown"}{(release.AppVersion is null ? "" : $" (app version {release.AppVersion})")}",
            $"status: {release.Status}",
            $"description: {release.Description}",
            $"config: {release.ConfigHash} (values are never shown)",
            $"manifest: {release.ManifestHash}"));

    /// <summary>
    /// The Deployment patch as people see it: the template's env values redacted (the patch sent keeps
    /// them). Without the environment's redactor, every env value is redacted (redaction.show_env unknown).
    /// </summary>
    public static PlannedChange PatchChange(HelmRollbackPlan plan, JsonArray patch, Safety.Redactor? redactor = null) =>
        new("image", $"deployment {plan.DeploymentNamespace}/{plan.Deployment}", "json-patch", (redactor ?? Safety.Redactor.Default).Content(patch.ToJsonString(Indented)));

    public static PlannedChange StatusChange(string @namespace, StoredRelease release, string status) =>
        StatusChange(@namespace, release.Release.Name, release.Version, release.Status, status);

    public static PlannedChange StatusChange(string @namespace, string release, int version, string? from, string to) =>
        new("release", $"secret {@namespace}/{HelmReleaseStore.SecretName(release, version)}", "update", $"revision {version}: status {from} → {to}");
}
