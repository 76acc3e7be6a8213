using KfmRollback.Engine.Adapters.Kubernetes;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Rollback.Cluster;

/// <summary>What a cluster rollback will write, computed exactly as <c>kubectl rollout undo</c> does.</summary>
public sealed class ClusterRollbackPlan
{
    public required string Namespace { get; init; }
    public required string Deployment { get; init; }
    public required string ResourceVersion { get; init; }
    /// <summary>The Deployment's metadata.generation when read: unchanged generation means unchanged spec.</summary>
    public long? Generation { get; init; }
    public required long CurrentRevision { get; init; }
    public required long TargetRevision { get; init; }
    public required string TargetReplicaSet { get; init; }
    /// <summary>True when the current template already equals the target: kubectl's "skipped rollback".</summary>
    public required bool AlreadyAtTarget { get; init; }
    public required JsonObject TargetTemplate { get; init; }
    public required IReadOnlyDictionary<string, string> Annotations { get; init; }

    /// <summary>
    /// kubectl's JSON patch plus a resourceVersion <c>test</c>, so a concurrent writer makes the
    /// apiserver answer 422 instead of the last writer silently winning.
    /// </summary>
    public JsonArray Patch()
    {
        var annotations = new JsonObject();
        foreach (var (key, value) in Annotations.OrderBy(a => a.Key, StringComparer.Ordinal))
        {
            annotations[key] = value;
        }
        return new JsonArray
        {
            new JsonObject { ["op"] = "test", ["path"] = "/metadata/resourceVersion", ["value"] = ResourceVersion },
            new JsonObject { ["op"] = "replace", ["path"] = "/spec/template", ["value"] = TargetTemplate.DeepClone() },
            new JsonObject { ["op"] = "replace", ["path"] = "/metadata/annotations", ["value"] = annotations },
        };
    }
}

/// <summary>
/// Computes a rollback the way kubectl's DeploymentRollbacker does (pkg/polymorphichelpers/rollback.go),
/// and refuses where kubectl would, with the same words, so an operator who knows kubectl recognises it.
/// </summary>
public static class ClusterRollbackPlanner
{
    /// <summary>
    /// The one annotation the module adds to kubectl's skip list: the quarantine (kfm.dev/quarantine)
    /// stays as the Deployment has it, never replaced by the stale copy a ReplicaSet carries.
    /// </summary>
    public const string KeptAnnotation = Refs.QuarantineAnnotation.Key;

    /// <summary>
    /// Annotations a rollback keeps as the Deployment has them and never copies back from a ReplicaSet
    /// (the deployment controller copies the Deployment's annotations onto its ReplicaSets, where they go stale):
    /// the quarantine, and the record of a -Fast raise (FastRollout), which restores only while it is current.
    /// </summary>
    public static readonly IReadOnlySet<string> KeptAnnotations = new HashSet<string>(StringComparer.Ordinal) { KeptAnnotation, FastRollout.Annotation };

    /// <param name="allowPaused">Plan even for a paused Deployment (the caller's -Force, with a recorded reason).</param>
    public static ClusterRollbackPlan Plan(V1Deployment deployment, IEnumerable<V1ReplicaSet> replicaSets, RollbackTarget target, string? container = null, bool allowPaused = false)
    {
        string name = deployment.Metadata.Name;
        IReadOnlyList<V1ReplicaSet> owned = DeploymentRevisions.Owned(deployment, replicaSets);
        V1ReplicaSet targetSet = target.Digest is not null
            ? FindByDigest(name, owned, target.Digest, container, target.ReplicaSet)
            : FindByRevision(name, owned, target.Revision ?? 0);

        if (deployment.Spec.Paused == true && !allowPaused)
        {
            throw new KfmException("RollbackDeploymentPaused", KfmErrorKind.InvalidOperation,
                $"you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again (deployment \"{name}\"). " +
                "A paused deployment may be paused on purpose: resume it, or pass -Force with a -ForceReason that is recorded.", name);
        }

        JsonObject targetTemplate = TemplateWithoutHash(targetSet.Spec.Template);
        JsonObject currentTemplate = TemplateWithoutHash(deployment.Spec.Template);

        var annotations = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string key in DeploymentRevisions.RollbackSkippedAnnotations.Concat(KeptAnnotations))
        {
            if (deployment.Metadata.Annotations?.TryGetValue(key, out string? value) == true)
            {
                annotations[key] = value;
            }
        }
        foreach (var (key, value) in targetSet.Metadata.Annotations ?? new Dictionary<string, string>())
        {
            if (!DeploymentRevisions.RollbackSkippedAnnotations.Contains(key) && !KeptAnnotations.Contains(key))
            {
                annotations[key] = value;
            }
        }

        return new ClusterRollbackPlan
        {
            Namespace = deployment.Metadata.NamespaceProperty,
            Deployment = name,
            ResourceVersion = deployment.Metadata.ResourceVersion,
            Generation = deployment.Metadata.Generation,
            CurrentRevision = DeploymentRevisions.Revision(deployment.Metadata) ?? 0,
            TargetRevision = DeploymentRevisions.Revision(targetSet.Metadata) ?? 0,
            TargetReplicaSet = targetSet.Metadata.Name,
            AlreadyAtTarget = SemanticallyEqual(currentTemplate, targetTemplate),
            TargetTemplate = targetTemplate,
            Annotations = annotations,
        };
    }

    private static V1ReplicaSet FindByRevision(string name, IReadOnlyList<V1ReplicaSet> owned, long toRevision)
    {
        if (toRevision < 0)
        {
            throw RevisionNotFound(name, toRevision);
        }

        var withRevision = owned
            .Select(rs => (Set: rs, Revision: DeploymentRevisions.Revision(rs.Metadata)))
            .Where(x => x.Revision.HasValue)
            .Select(x => (x.Set, Revision: x.Revision!.Value))
            .ToList();

        if (toRevision > 0)
        {
            return withRevision.FirstOrDefault(x => x.Revision == toRevision).Set ?? throw RevisionNotFound(name, toRevision);
        }

        // The previous revision is the second-highest; the highest is what runs now.
        var ordered = withRevision.OrderByDescending(x => x.Revision).ToList();
        if (ordered.Count < 2)
        {
            throw new KfmException("RollbackNoHistory", KfmErrorKind.ObjectNotFound,
                $"no rollout history found for deployment \"{name}\": there is no previous revision to roll back to. " +
                "Use -Method GitOps with -ToRef <last-known-good digest> to deploy it anew.", name);
        }
        return ordered[1].Set;
    }

    private static V1ReplicaSet FindByDigest(string name, IReadOnlyList<V1ReplicaSet> owned, string given, string? container, string? recordedReplicaSet)
    {
        // A short digest copied from a table names the one revision digest it starts.
        string digest = ImageRefs.ResolvePrefix(given, owned.Select(rs => ImageRefs.DigestOf(PodTemplates.ContainerImage(rs.Spec.Template, container, name))),
            $"the rollout history of deployment \"{name}\"");
        var matches = owned
            .Where(rs => ImageRefs.DigestOf(PodTemplates.ContainerImage(rs.Spec.Template, container, name)) == digest)
            .Select(rs => (Set: rs, Revision: DeploymentRevisions.Revision(rs.Metadata) ?? 0))
            .OrderByDescending(x => x.Revision)
            .ToList();

        if (matches.Count == 0)
        {
            throw new KfmException("RollbackTargetNotInHistory", KfmErrorKind.ObjectNotFound,
                $"No revision of deployment \"{name}\" runs {digest}; it may have been cleaned up by revisionHistoryLimit. " +
                "Check Get-KfmRolloutHistory, or roll back through Git with -Method GitOps -ToRef.", digest);
        }
        if (matches.Count > 1 && recordedReplicaSet is not null && matches.FirstOrDefault(m => m.Set.Metadata.Name == recordedReplicaSet).Set is { } recorded)
        {
            // A resumed run's own target: the ReplicaSet it recorded, whatever its revision number is now.
            return recorded;
        }
        if (matches.Count > 1 && !TemplatesAllEqual(matches.Select(m => m.Set)))
        {
            throw new KfmException("RollbackTargetAmbiguous", KfmErrorKind.Ambiguous,
                $"Revisions {string.Join(", ", matches.Select(m => m.Revision))} of deployment \"{name}\" all run {digest} but differ in other settings. " +
                "Choose one with -ToRevision.", digest);
        }
        return matches[0].Set;
    }

    private static bool TemplatesAllEqual(IEnumerable<V1ReplicaSet> sets)
    {
        var templates = sets.Select(s => TemplateWithoutHash(s.Spec.Template)).ToList();
        return templates.All(t => SemanticallyEqual(t, templates[0]));
    }

    private static KfmException RevisionNotFound(string name, long revision) =>
        new("RollbackRevisionNotFound", KfmErrorKind.ObjectNotFound,
            $"unable to find specified revision {revision} in history of deployment \"{name}\". See Get-KfmRolloutHistory for the revisions that exist.", revision);

    /// <summary>The template as JSON with the pod-template-hash label removed (kubectl does the same).</summary>
    internal static JsonObject TemplateWithoutHash(V1PodTemplateSpec template)
    {
        var node = (JsonObject)JsonNode.Parse(KubernetesJson.Serialize(template))!;
        if (node["metadata"]?["labels"] is JsonObject labels)
        {
            labels.Remove(DeploymentRevisions.PodTemplateHashLabel);
        }
        return node;
    }

    /// <summary>
    /// apimachinery's semantic equality treats nil and empty maps/slices alike, so both sides are
    /// pruned of empties before comparing.
    /// </summary>
    internal static bool SemanticallyEqual(JsonNode a, JsonNode b) => JsonNode.DeepEquals(Prune(a.DeepClone()), Prune(b.DeepClone()));

    private static JsonNode? Prune(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (string key in obj.Select(p => p.Key).ToList())
                {
                    JsonNode? pruned = Prune(obj[key]);
                    if (pruned is null || pruned is JsonObject { Count: 0 } || pruned is JsonArray { Count: 0 })
                    {
                        obj.Remove(key);
                    }
                    else if (!ReferenceEquals(pruned, obj[key]))
                    {
                        obj[key] = pruned;
                    }
                }
                return obj;
            case JsonArray array:
                for (int i = 0; i < array.Count; i++)
                {
                    Prune(array[i]);
                }
                return array;
            default:
                return node;
        }
    }
}
