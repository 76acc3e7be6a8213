using KfmRollback.Engine.Adapters.GitOpsControllers;
using KfmRollback.Engine.Adapters.Kubernetes;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Refs;

namespace KfmRollback.Engine.Rollback.Runs;

/// <summary>
/// Puts the quarantine where controllers and people see it (after the change went out; the
/// journal recorded it before): annotation <c>kfm.dev/quarantine</c> on the API Deployment and on
/// every Argo CD Application and Flux object the environment's freeze names. Best effort: a failed
/// annotation is said and recorded, never fails the rollback (the journal holds the quarantine).
/// </summary>
public static class QuarantineMarks
{
    public static Task AddAsync(IKubernetes client, EnvironmentConfig environment, QuarantineEntry entry, RollbackReporter reporter, CancellationToken cancellationToken) =>
        MarkAsync(client, environment, value => QuarantineAnnotation.Add(value, entry), reporter, cancellationToken,
            marked => $"Quarantined {ImageRefs.Short(entry.Digest)} for {environment.Name} (rolled back to {ImageRefs.Short(entry.MovedTo)}): recorded in the incident journal" +
                (marked.Count > 0 ? $" and on {string.Join(", ", marked)}" : ""));

    /// <summary>An operator forced a quarantined digest as the target: its entry leaves the annotations.</summary>
    public static Task RemoveAsync(IKubernetes client, EnvironmentConfig environment, string digest, RollbackReporter reporter, CancellationToken cancellationToken) =>
        MarkAsync(client, environment, value => QuarantineAnnotation.Without(value, digest), reporter, cancellationToken,
            marked => $"Released the quarantine of {ImageRefs.Short(digest)} for {environment.Name}" + (marked.Count > 0 ? $" on {string.Join(", ", marked)}" : ""));

    private static async Task MarkAsync(IKubernetes client, EnvironmentConfig environment, Func<string?, string> change, RollbackReporter reporter, CancellationToken cancellationToken, Func<IReadOnlyList<string>, string> summary)
    {
        var marked = new List<string>();
        var failed = new List<string>();
        string ns = environment.Cluster.Namespace, name = environment.Cluster.Deployment;
        try
        {
            V1Deployment deployment = await client.AppsV1.ReadNamespacedDeploymentAsync(name, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
            string? before = deployment.Metadata.Annotations is { } a && a.TryGetValue(QuarantineAnnotation.Key, out string? v) ? v : null;
            string after = change(before);
            if (after != before)
            {
                await client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch(Patch(after).ToJsonString(), V1Patch.PatchType.MergePatch), name, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            marked.Add($"deployment {ns}/{name}");
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            failed.Add($"deployment {ns}/{name} ({KubernetesErrors.Wrap(ex, "annotating", name).ErrorId})");
        }
        IReadOnlyList<IDeployingController> controllers = environment.FreezeSection is null ? Array.Empty<IDeployingController>()
            : GitOpsControllerKinds.Deploying(client, environment);
        foreach (IDeployingController controller in controllers)
        {
            try
            {
                JsonObject current = await controller.GetAsync(cancellationToken).ConfigureAwait(false);
                string? before = current["metadata"]?["annotations"]?[QuarantineAnnotation.Key]?.GetValue<string>();
                string after = change(before);
                if (after != before)
                {
                    await controller.PatchAsync(Patch(after), null, cancellationToken).ConfigureAwait(false);
                }
                marked.Add(controller.Object.Description);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                failed.Add($"{controller.Object} ({(ex as KfmException)?.ErrorId ?? ex.GetType().Name})");
            }
        }
        reporter.Record("OPS", summary(marked));
        if (failed.Count > 0)
        {
            reporter.Warn($"{environment.Name}: could not annotate {string.Join(", ", failed)} with the quarantine ({QuarantineAnnotation.Key}); the incident journal holds it. Check RBAC (docs/rbac.md).");
        }
    }

    private static JsonObject Patch(string value) => new() { ["metadata"] = new JsonObject { ["annotations"] = new JsonObject { [QuarantineAnnotation.Key] = value } } };
}
