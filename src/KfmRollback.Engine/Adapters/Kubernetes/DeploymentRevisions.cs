using System.Globalization;
using k8s.Models;

namespace KfmRollback.Engine.Adapters.Kubernetes;

/// <summary>
/// The deployment-controller facts kubectl relies on: which ReplicaSets belong to a Deployment and
/// what revision each carries (kubectl pkg/util/deployment).
/// </summary>
public static class DeploymentRevisions
{
    public const string RevisionAnnotation = "deployment.kubernetes.io/revision";
    public const string RevisionHistoryAnnotation = "deployment.kubernetes.io/revision-history";
    public const string DesiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas";
    public const string MaxReplicasAnnotation = "deployment.kubernetes.io/max-replicas";
    public const string LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration";
    public const string RollbackToAnnotation = "deprecated.deployment.rollback.to";
    public const string ChangeCauseAnnotation = "kubernetes.io/change-cause";
    public const string PodTemplateHashLabel = "pod-template-hash";

    /// <summary>Annotations a rollback never copies from the ReplicaSet (kubectl's skip list).</summary>
    public static readonly IReadOnlySet<string> RollbackSkippedAnnotations = new HashSet<string>(StringComparer.Ordinal)
    {
        LastAppliedAnnotation,
        RevisionAnnotation,
        RevisionHistoryAnnotation,
        DesiredReplicasAnnotation,
        MaxReplicasAnnotation,
        RollbackToAnnotation,
    };

    /// <summary>ReplicaSets whose controller ownerReference is this Deployment's uid.</summary>
    public static IReadOnlyList<V1ReplicaSet> Owned(V1Deployment deployment, IEnumerable<V1ReplicaSet> replicaSets)
    {
        string? uid = deployment.Metadata?.Uid;
        return replicaSets
            .Where(rs => rs.Metadata?.OwnerReferences?.Any(o => o.Controller == true && o.Uid == uid) == true)
            .ToList();
    }

    /// <summary>
    /// The revision of a ReplicaSet: missing counts as 0, unparsable is null (kubectl skips those).
    /// </summary>
    public static long? Revision(V1ObjectMeta? metadata)
    {
        if (metadata?.Annotations is null || !metadata.Annotations.TryGetValue(RevisionAnnotation, out string? text))
        {
            return 0;
        }
        return long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long revision) ? revision : null;
    }
}
