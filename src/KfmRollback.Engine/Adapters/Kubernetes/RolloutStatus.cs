using k8s.Models;

namespace KfmRollback.Engine.Adapters.Kubernetes;

public enum RolloutPhase
{
    Waiting,
    Complete,
    Failed,
}

/// <summary>One evaluation of a rollout, in kubectl rollout status's words.</summary>
public sealed record RolloutStatus(RolloutPhase Phase, string Message, int PercentComplete)
{
    /// <summary>
    /// kubectl's DeploymentStatusViewer rules (pkg/polymorphichelpers/rollout_status.go), plus a
    /// paused deployment, which kubectl would wait on forever, reported as failed.
    /// </summary>
    public static RolloutStatus Evaluate(V1Deployment deployment)
    {
        string name = deployment.Metadata.Name;
        if ((deployment.Metadata.Generation ?? 0) > (deployment.Status?.ObservedGeneration ?? 0))
        {
            return new(RolloutPhase.Waiting, "Waiting for deployment spec update to be observed...", 0);
        }
        V1DeploymentCondition? progressing = deployment.Status?.Conditions?.FirstOrDefault(c => c.Type == "Progressing");
        if (progressing?.Reason == "ProgressDeadlineExceeded")
        {
            return new(RolloutPhase.Failed, $"deployment \"{name}\" exceeded its progress deadline", 0);
        }
        if (deployment.Spec.Paused == true)
        {
            return new(RolloutPhase.Failed, $"deployment \"{name}\" is paused: its rollout cannot finish until it is resumed ('kubectl rollout resume')", 0);
        }
        int desired = deployment.Spec.Replicas ?? 1;
        int updated = deployment.Status?.UpdatedReplicas ?? 0;
        int replicas = deployment.Status?.Replicas ?? 0;
        int available = deployment.Status?.AvailableReplicas ?? 0;
        int percent = desired == 0 ? 100 : (int)Math.Clamp(100.0 * (updated + Math.Min(available, updated)) / (2.0 * desired), 0, 99);
        if (updated < desired)
        {
            return new(RolloutPhase.Waiting, $"Waiting for deployment \"{name}\" rollout to finish: {updated} out of {desired} new replicas have been updated...", percent);
        }
        if (replicas > updated)
        {
            return new(RolloutPhase.Waiting, $"Waiting for deployment \"{name}\" rollout to finish: {replicas - updated} old replicas are pending termination...", percent);
        }
        if (available < updated)
        {
            return new(RolloutPhase.Waiting, $"Waiting for deployment \"{name}\" rollout to finish: {available} of {updated} updated replicas are available...", percent);
        }
        return new(RolloutPhase.Complete, $"deployment \"{name}\" successfully rolled out", 100);
    }

    /// <summary>
    /// A pod of the new revision that cannot start: kubectl would keep waiting until the progress
    /// deadline (10 minutes by default); a rollback should stop at once and say why.
    /// </summary>
    public static RolloutStatus? PodFailure(IEnumerable<V1Pod> targetPods)
    {
        foreach (V1Pod pod in targetPods)
        {
            foreach (V1ContainerStatus status in pod.Status?.ContainerStatuses ?? new List<V1ContainerStatus>())
            {
                string? reason = status.State?.Waiting?.Reason;
                if (reason is "CrashLoopBackOff" or "ImagePullBackOff" or "ErrImagePull" or "InvalidImageName" or "CreateContainerConfigError")
                {
                    return new(RolloutPhase.Failed,
                        $"pod {pod.Metadata.Name} of the rollback target is in {reason} (container {status.Name}, {status.RestartCount} restarts)", 0);
                }
            }
        }
        return null;
    }
}
