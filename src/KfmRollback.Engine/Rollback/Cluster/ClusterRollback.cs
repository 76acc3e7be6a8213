using System.Net;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Cluster;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Freeze;
using KfmRollback.Engine.Rollback.Surfaces;
using System.Text.Json.Nodes;

namespace KfmRollback.Engine.Rollback.Cluster;

/// <summary>
/// The emergency cluster rollback (runbook step 3): `kubectl rollout undo` semantics, without
/// its hazards. It checks permissions first, refuses while a GitOps controller could revert it,
/// serialises operators with a Lease, patches with a resourceVersion precondition, and can wait
/// by watching until the rollout completes or fails.
/// </summary>
public sealed class ClusterRollback
{
    private const int ConflictRetries = 5;
    private readonly IKubernetes _client;
    private readonly IClock _clock;

    public ClusterRollback(IKubernetes client, IClock? clock = null)
    {
        _client = client;
        _clock = clock ?? SystemClock.Instance;
    }

    /// <summary>Permissions a cluster rollback needs in the Deployment's namespace.</summary>
    public static IReadOnlyList<AccessRequirement> Requirements(string @namespace, bool wait) =>
        new List<AccessRequirement>
        {
            new("get", "apps", "deployments", @namespace, "read the Deployment"),
            new("patch", "apps", "deployments", @namespace, "apply the rollback patch"),
            new("list", "apps", "replicasets", @namespace, "read the revision history"),
            new("list", "", "pods", @namespace, "see which digests run"),
            new("get", "coordination.k8s.io", "leases", @namespace, "read the rollback lock"),
            new("create", "coordination.k8s.io", "leases", @namespace, "take the rollback lock"),
            new("update", "coordination.k8s.io", "leases", @namespace, "renew and release the rollback lock"),
        }.Concat(wait
            ? new[] { new AccessRequirement("watch", "apps", "deployments", @namespace, "wait for the rollout"), new AccessRequirement("watch", "", "pods", @namespace, "see crash loops of the target") }
            : Array.Empty<AccessRequirement>()).ToList();

    public async Task<RollbackResult> RunAsync(ClusterRollbackRequest request, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        var cluster = request.Environment.Cluster;
        string ns = cluster.Namespace, name = cluster.Deployment;
        DateTimeOffset started = _clock.UtcNow;
        if (request.Force && string.IsNullOrWhiteSpace(request.ForceReason))
        {
            throw new KfmException("ForceReasonMissing", KfmErrorKind.InvalidArgument,
                "-Force overrides a safety refusal, so it needs -ForceReason saying why; the reason is recorded on the incident timeline.");
        }

        await PreflightAsync(request, ns, cancellationToken).ConfigureAwait(false);
        await EnsureFrozenAsync(request, reporter, cancellationToken).ConfigureAwait(false);

        if (request.DryRun)
        {
            DeploymentSnapshot preview = await DeploymentSnapshot.ReadAsync(_client, ns, name, cancellationToken, includePods: false).ConfigureAwait(false);
            ClusterRollbackPlan plan = Plan(preview, request);
            return Result(request, plan, started, plan.AlreadyAtTarget ? RollbackOutcome.NoOp : RollbackOutcome.Planned,
                plan.AlreadyAtTarget ? Skipped(plan) : $"would patch deployment {ns}/{name}: revision {plan.CurrentRevision} → template of revision {plan.TargetRevision}",
                before: preview);
        }

        // Unique per run: the same person in two terminals must not share the lock.
        string holder = $"{request.Actor} ({request.IncidentId ?? "no incident"}) [{Guid.NewGuid().ToString("N")[..8]}]";
        await using RollbackLease lease = await RollbackLease.AcquireAsync(_client, ns, cluster.EffectiveLeaseName, holder, cluster.LeaseDuration, _clock, cancellationToken).ConfigureAwait(false);
        reporter.Say($"Holding rollback lock {ns}/{cluster.EffectiveLeaseName} as {holder}.");

        var surfaces = new SurfaceRollback(_client, request.Environment);
        bool configRestored = false;
        for (int attempt = 1; ; attempt++)
        {
            DeploymentSnapshot snapshot = await DeploymentSnapshot.ReadAsync(_client, ns, name, cancellationToken).ConfigureAwait(false);
            ClusterRollbackPlan plan = Plan(snapshot, request);
            V1ReplicaSet target = snapshot.ReplicaSets.First(rs => rs.Metadata.Name == plan.TargetReplicaSet);

            // Runtime configuration and a policy ConfigMap first: every check happens before any
            // change, so a missing or unverifiable object leaves everything as it was.
            if (!configRestored && (request.Surfaces.HasFlag(RollbackSurfaces.Config) || request.Surfaces.HasFlag(RollbackSurfaces.Policy)))
            {
                IReadOnlyList<ConfigObjectState> restored = await surfaces.RestoreConfigAsync(target, request.Surfaces, request.Force, reporter, cancellationToken).ConfigureAwait(false);
                configRestored = restored.Any(r => r.Action == "restore");
            }

            JsonArray? patch = SelectPatch(request, snapshot, plan, target, surfaces, configRestored);
            if (patch is null)
            {
                reporter.Record("OPS", $"Cluster rollback of {ns}/{name} skipped: already at revision {plan.TargetRevision}'s template");
                return Result(request, plan, started, RollbackOutcome.NoOp, Skipped(plan), snapshot);
            }

            Exception? failure;
            try
            {
                reporter.Say($"Patching deployment {ns}/{name} (attempt {attempt}): {patch.ToJsonString()}");
                await _client.AppsV1.PatchNamespacedDeploymentAsync(
                    new V1Patch(patch.ToJsonString(), V1Patch.PatchType.JsonPatch), name, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
                failure = null;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                failure = ex;
            }

            if (failure is not null)
            {
                if (attempt < ConflictRetries && KubernetesErrors.IsConflict(failure))
                {
                    reporter.Say($"The apiserver answered 409 Conflict; reading deployment {ns}/{name} afresh and planning again.");
                    continue;
                }
                if (attempt < ConflictRetries && KubernetesErrors.IsInvalid(failure) && await SpecUnchangedAsync(snapshot, cancellationToken).ConfigureAwait(false))
                {
                    // The resourceVersion moved only because the controller wrote status: the spec
                    // planned against is intact, so plan again from a fresh read.
                    reporter.Say($"Deployment {ns}/{name} changed status between read and patch (spec unchanged); planning again.");
                    continue;
                }
                KfmException error = KubernetesErrors.IsInvalid(failure)
                    ? new KfmException("RollbackConcurrentChange", KfmErrorKind.ResourceBusy,
                        $"Deployment {ns}/{name} changed between reading and patching (resourceVersion precondition failed and its spec changed): someone else is changing it. Nothing was rolled back; find out who, then retry.", name, failure)
                    : KubernetesErrors.Wrap(failure, $"Patching deployment {ns}/{name}", name);
                reporter.Record("OPS", $"Cluster rollback of {ns}/{name} failed before the deployment changed: {error.ErrorId}");
                return Result(request, plan, started, RollbackOutcome.Failed, error.Message, snapshot) with { Error = error };
            }

            reporter.Record("OPS", $"Cluster rollback of {ns}/{name} ({Surfaces(request)}): revision {plan.CurrentRevision} → template of revision {plan.TargetRevision} " +
                $"({Short(CurrentDigest(snapshot, request))} → {Short(TargetDigest(snapshot, plan, request))})");
            if (!request.Wait)
            {
                return Result(request, plan, started, RollbackOutcome.Succeeded, "rollback applied; not waiting for the rollout (-Wait waits)", snapshot);
            }

            var watcher = new RolloutWatcher(_client, ns, name, status => reporter.Progress?.Invoke(status.Message, status.PercentComplete));
            RolloutStatus final = await watcher.WaitAsync(SurfaceRollback.PodTemplateHash(target), request.Timeout, cancellationToken).ConfigureAwait(false);
            bool ok = final.Phase == RolloutPhase.Complete;
            reporter.Record("OPS", ok ? $"Rollout of {ns}/{name} complete: {final.Message}" : $"Rollout of {ns}/{name} FAILED: {final.Message}");
            if (ok)
            {
                // What now runs is the known state to come back to: snapshot its configuration.
                await surfaces.SnapshotAsync(target.Spec.Template, SurfaceRollback.PodTemplateHash(target), cancellationToken).ConfigureAwait(false);
            }
            RollbackResult result = Result(request, plan, started, ok ? RollbackOutcome.Succeeded : RollbackOutcome.Failed, final.Message, snapshot);
            return ok ? result : result with
            {
                Error = new KfmException("RollbackRolloutFailed", KfmErrorKind.InvalidOperation,
                    $"The rollback of {ns}/{name} was applied but its rollout failed: {final.Message}. Fail closed (Enable-KfmFailClosed) if the API is unsafe, and escalate.", name),
            };
        }
    }

    /// <summary>The one patch this rollback sends, or null when nothing needs to change.</summary>
    private JsonArray? SelectPatch(ClusterRollbackRequest request, DeploymentSnapshot snapshot, ClusterRollbackPlan plan, V1ReplicaSet target, SurfaceRollback surfaces, bool configRestored)
    {
        if (request.Surfaces.HasFlag(RollbackSurfaces.Image) && !plan.AlreadyAtTarget)
        {
            return plan.Patch();
        }
        if (request.Surfaces.HasFlag(RollbackSurfaces.Policy))
        {
            string container = ClusterRefReader.ResolveContainerName(snapshot.Deployment.Spec.Template, request.Container ?? request.Environment.Cluster.Container, snapshot.Name);
            JsonArray? policy = surfaces.PolicyTemplatePatch(snapshot.Deployment, target, container);
            if (policy is not null)
            {
                return policy;
            }
        }
        // Restored configuration only takes effect in new pods.
        return configRestored ? SurfaceRollback.RestartPatch(snapshot.Deployment, _clock.UtcNow) : null;
    }

    private static string Surfaces(ClusterRollbackRequest request) => request.Surfaces.ToString().ToLowerInvariant().Replace(", ", "+");

    /// <summary>True when nobody changed the Deployment's spec since <paramref name="planned"/> was read.</summary>
    private async Task<bool> SpecUnchangedAsync(DeploymentSnapshot planned, CancellationToken cancellationToken)
    {
        V1Deployment now = await _client.AppsV1.ReadNamespacedDeploymentAsync(planned.Name, planned.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        return now.Metadata.Generation == planned.Deployment.Metadata.Generation;
    }

    private ClusterRollbackPlan Plan(DeploymentSnapshot snapshot, ClusterRollbackRequest request) =>
        ClusterRollbackPlanner.Plan(snapshot.Deployment, snapshot.ReplicaSets, request.Target, request.Container ?? request.Environment.Cluster.Container, allowPaused: request.Force);

    private async Task PreflightAsync(ClusterRollbackRequest request, string ns, CancellationToken cancellationToken)
    {
        IReadOnlyList<AccessCheck> checks = await AccessPreflight.CheckAsync(_client, request.Environment.Name, Requirements(ns, request.Wait && !request.DryRun), cancellationToken).ConfigureAwait(false);
        var denied = checks.Where(c => !c.Allowed).ToList();
        if (denied.Count > 0)
        {
            throw new KfmException("RollbackAccessDenied", KfmErrorKind.PermissionDenied,
                $"Missing permissions, so nothing was changed: {string.Join("; ", denied.Select(d => $"{d.Resource} (to {d.Why})"))}. docs/rbac.md has the Role the module needs.",
                request.Environment.Name);
        }
    }

    /// <summary>Default-deny: a GitOps controller left running would silently revert the rollback.</summary>
    private static async Task EnsureFrozenAsync(ClusterRollbackRequest request, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        var unfrozen = new List<string>();
        foreach (IFreezeMechanism mechanism in request.ClusterFreezes)
        {
            FreezeState state = await mechanism.GetAsync(cancellationToken).ConfigureAwait(false);
            if (!state.Frozen)
            {
                unfrozen.Add(mechanism.Target);
            }
        }
        if (unfrozen.Count == 0)
        {
            return;
        }
        if (!request.Force)
        {
            throw new KfmException("RollbackGitOpsNotFrozen", KfmErrorKind.Ambiguous,
                $"{string.Join(", ", unfrozen)} can still sync and would revert a cluster rollback within seconds (self-heal). " +
                "Freeze first with Start-KfmFreeze, or pass -Force with -ForceReason to roll back anyway.", unfrozen[0]);
        }
        reporter.Record("OPS", $"FORCED cluster rollback while {string.Join(", ", unfrozen)} not frozen: {request.ForceReason}");
    }

    private RollbackResult Result(ClusterRollbackRequest request, ClusterRollbackPlan plan, DateTimeOffset started, RollbackOutcome outcome, string detail, DeploymentSnapshot before) => new()
    {
        Environment = request.Environment.Name,
        IncidentId = request.IncidentId,
        Method = RollbackMethod.Cluster,
        ChangedSurfaces = ChangedSurfaces(request.Surfaces),
        Outcome = outcome,
        CurrentRef = CurrentDigest(before, request),
        RollbackTargetRef = TargetDigest(before, plan, request),
        FromRevision = plan.CurrentRevision,
        ToRevision = plan.TargetRevision,
        StartedAt = started,
        CompletedAt = _clock.UtcNow,
        Changes = new[] { new PlannedChange("image", $"deployment {plan.Namespace}/{plan.Deployment}", "json-patch", plan.Patch().ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true })) },
        Detail = detail,
        Reason = request.Reason,
    };

    private static string? CurrentDigest(DeploymentSnapshot snapshot, ClusterRollbackRequest request) =>
        ClusterRefReader.Read(snapshot, request.Environment.Name, request.Container ?? request.Environment.Cluster.Container).CurrentRef;

    private static string? TargetDigest(DeploymentSnapshot snapshot, ClusterRollbackPlan plan, ClusterRollbackRequest request)
    {
        V1ReplicaSet? target = snapshot.ReplicaSets.FirstOrDefault(rs => rs.Metadata.Name == plan.TargetReplicaSet);
        return target is null ? null : ImageRefs.DigestOf(PodTemplates.ContainerImage(target.Spec.Template, request.Container ?? request.Environment.Cluster.Container, plan.Deployment));
    }

    private static IReadOnlyList<string> ChangedSurfaces(RollbackSurfaces surfaces)
    {
        var names = new List<string>();
        if (surfaces.HasFlag(RollbackSurfaces.Image)) { names.Add("api"); }
        if (surfaces.HasFlag(RollbackSurfaces.Config)) { names.Add("config"); }
        if (surfaces.HasFlag(RollbackSurfaces.Policy)) { names.Add("policy"); }
        return names;
    }

    private static string Skipped(ClusterRollbackPlan plan) => $"skipped rollback (current template already matches revision {plan.TargetRevision})";

    private static string Short(string? digest) => digest is null ? "unknown" : digest.Length > 19 ? digest[..19] : digest;
}
