using KfmRollback.Engine.Adapters.Kubernetes;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Freeze;
using KfmRollback.Engine.Rollback.Preflight;
using KfmRollback.Engine.Refs;
using KfmRollback.Engine.Rollback.Surfaces;

namespace KfmRollback.Engine.Rollback.Cluster;

/// <summary>What the cluster mechanism will send: restores of config objects, then one Deployment patch.</summary>
public sealed record ClusterMechanismPlan : MechanismPlan
{
    public required ClusterRollbackPlan Template { get; init; }
    public required IReadOnlyList<ConfigObjectState> ConfigRestores { get; init; }
    public JsonArray? Patch { get; init; }
    public string PatchSurface { get; init; } = "image";
    /// <summary>-Fast: the strategy raise sent in <see cref="Patch"/>, its restore, and the quota check that decided it.</summary>
    public FastRolloutPlan? Fast { get; init; }

    public override RollbackResult Decorate(RollbackResult result) => result with { RolloutTarget = result.RolloutTarget ?? Template.TargetReplicaSet };
}

/// <summary>
/// The emergency cluster rollback (runbook step 3, and steps 4-5 on the cluster side):
/// `kubectl rollout undo` semantics without its hazards. Plan checks permissions, refuses while a
/// GitOps controller could revert it, and computes the config restores and the one patch; Apply
/// holds a Lease, re-reads under it and sends exactly the planned changes with a resourceVersion
/// precondition; Await watches the rollout and stops on crash loops.
/// </summary>
public sealed class ClusterRollbackMechanism : IRollbackMechanism
{
    private const int ConflictRetries = 5;
    // Relaxed escaping for people (quotes as \" not \u0022); the same JSON as the compact text sent.
    private static readonly JsonSerializerOptions s_indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly IKubernetes _client;
    private readonly AccessReviews? _reviews;
    private readonly IReadOnlyList<IFreezeMechanism> _controllers;
    private readonly IClock _clock;

    /// <param name="controllers">The GitOps controllers that could revert a cluster change (Argo CD, Flux).</param>
    /// <param name="reviews">The operation's access review answers, shared by a fleet's environments; null: every plan asks.</param>
    public ClusterRollbackMechanism(IKubernetes client, IReadOnlyList<IFreezeMechanism> controllers, IClock? clock = null, AccessReviews? reviews = null)
    {
        _client = client;
        _reviews = reviews;
        _controllers = controllers;
        _clock = clock ?? SystemClock.Instance;
    }

    public RollbackMethod Method => RollbackMethod.Cluster;

    public IReadOnlyList<AccessRequirement> Requirements(RollbackRequest request)
    {
        string ns = request.Environment.Cluster.Namespace;
        var needs = new List<AccessRequirement>
        {
            new("get", "apps", "deployments", ns, "read the Deployment"),
            new("patch", "apps", "deployments", ns, "apply the rollback patch"),
            new("list", "apps", "replicasets", ns, "read the revision history"),
            new("list", "", "pods", ns, "see which digests run"),
            new("get", "coordination.k8s.io", "leases", ns, "read the rollback lock"),
            new("create", "coordination.k8s.io", "leases", ns, "take the rollback lock"),
            new("update", "coordination.k8s.io", "leases", ns, "renew and release the rollback lock"),
        };
        if (request.Fast)
        {
            needs.Add(new("list", "", "resourcequotas", ns, "check -Fast's surge against the quota"));
            needs.Add(new("create", "", "pods", ns, "dry-run one pod of the target for -Fast (dryRun=All, nothing is created)"));
        }
        if (request.Wait)
        {
            needs.Add(new("watch", "apps", "deployments", ns, "wait for the rollout"));
            needs.Add(new("watch", "", "pods", ns, "see crash loops of the target"));
        }
        return needs;
    }

    public async Task<MechanismPlan> PlanAsync(RollbackRequest request, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        await ClusterGuards.EnsureAccessAsync(_client, request, Requirements(request), cancellationToken, _reviews).ConfigureAwait(false);
        await ClusterGuards.EnsureFrozenAsync(_controllers, request, reporter, cancellationToken).ConfigureAwait(false);
        DeploymentSnapshot snapshot = await ReadAsync(request, cancellationToken).ConfigureAwait(false);
        ClusterMechanismPlan plan = await BuildAsync(request, snapshot, _clock.UtcNow, configRestored: null, cancellationToken).ConfigureAwait(false);
        if (plan.Fast is { Raises: false } fallback)
        {
            reporter.Warn($"{request.Environment.Name}: -Fast falls back to the Deployment's own rollout strategy: {fallback.Why}.");
        }
        return plan;
    }

    /// <summary>
    /// Each config restore and the Deployment patch with dryRun=All. The patch goes without its
    /// resourceVersion test, which only guards the real send against a concurrent writer (status
    /// writes move it all the time); what the dry run asks is whether the apiserver admits the change.
    /// </summary>
    public async Task<IReadOnlyList<PreflightCheck>> DryRunAsync(RollbackRequest request, MechanismPlan plan, CancellationToken cancellationToken)
    {
        var approved = (ClusterMechanismPlan)plan;
        string environment = request.Environment.Name;
        var surfaces = new SurfaceRollback(_client, request.Environment);
        var checks = new List<PreflightCheck>();
        foreach (ConfigObjectState restore in approved.ConfigRestores)
        {
            PlannedChange change = surfaces.Change(restore);
            checks.Add(await ServerDryRun.CheckAsync(environment, $"{change.Action} {change.Object}",
                () => surfaces.DryRunRestoreAsync(restore, cancellationToken), cancellationToken).ConfigureAwait(false));
        }
        if (approved.Patch is { } patch)
        {
            checks.Add(await ServerDryRun.CheckAsync(environment, $"json-patch deployment {approved.Template.Namespace}/{approved.Template.Deployment}",
                () => _client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch(WithoutPrecondition(patch).ToJsonString(), V1Patch.PatchType.JsonPatch),
                    approved.Template.Deployment, approved.Template.Namespace, dryRun: ServerDryRun.All, cancellationToken: cancellationToken), cancellationToken).ConfigureAwait(false));
        }
        if (approved.Fast is { } fast)
        {
            checks.Add(fast.Check);
        }
        return checks;
    }

    public async Task<IRollbackLock> LockAsync(RollbackRequest request, RollbackReporter reporter, CancellationToken cancellationToken) =>
        new LeaseLock(await ClusterGuards.LockAsync(_client, request, reporter, _clock, cancellationToken).ConfigureAwait(false));

    public async Task<string?> CurrentRefAsync(RollbackRequest request, CancellationToken cancellationToken)
    {
        DeploymentSnapshot snapshot = await ReadAsync(request, cancellationToken).ConfigureAwait(false);
        return ClusterRefReader.Read(snapshot, request.Environment.Name, request.Container ?? request.Environment.Cluster.Container).CurrentRef;
    }

    public async Task<RollbackResult> ApplyAsync(RollbackRequest request, MechanismPlan plan, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        var approved = (ClusterMechanismPlan)plan;
        string ns = request.Environment.Cluster.Namespace, name = request.Environment.Cluster.Deployment;

        // Under the lock (LockAsync), the world must still be as planned: otherwise the approved changes are not the ones to send.
        var sent = new List<PlannedChange>();
        ClusterMechanismPlan current = await BuildAsync(request, await ReadAsync(request, cancellationToken).ConfigureAwait(false), approved.PlannedAt, null, cancellationToken).ConfigureAwait(false);
        if (!SamePlan(current, approved))
        {
            return PlanChanged(request, approved, sent);
        }

        var surfaces = new SurfaceRollback(_client, request.Environment);
        foreach (ConfigObjectState restore in current.ConfigRestores)
        {
            await surfaces.RestoreAsync(restore, current.ToRevision, reporter, cancellationToken).ConfigureAwait(false);
            sent.Add(surfaces.Change(restore));
        }

        for (int attempt = 1; ; attempt++)
        {
            Exception? failure = await TryPatchAsync(current, reporter, attempt, cancellationToken).ConfigureAwait(false);
            if (failure is null)
            {
                sent.Add(PatchChange(current, Configuration.Redactors.For(request.Environment)));
                break;
            }
            bool conflict = attempt < ConflictRetries && KubernetesErrors.IsConflict(failure);
            bool statusOnly = !conflict && attempt < ConflictRetries && KubernetesErrors.IsInvalid(failure) && await SpecUnchangedAsync(current, cancellationToken).ConfigureAwait(false);
            if (conflict || statusOnly)
            {
                // The resourceVersion moved (status writes): plan the patch again from a fresh read; it must still be the approved one.
                reporter.Say(conflict
                    ? $"The apiserver answered 409 Conflict; reading deployment {ns}/{name} afresh and planning again."
                    : $"Deployment {ns}/{name} changed status between read and patch (spec unchanged); planning again.");
                current = await BuildAsync(request, await ReadAsync(request, cancellationToken).ConfigureAwait(false), approved.PlannedAt, approved.ConfigRestores.Count > 0, cancellationToken).ConfigureAwait(false);
                if (!SamePatch(current.Patch, approved.Patch))
                {
                    return PlanChanged(request, approved, sent);
                }
                continue;
            }
            KfmException error = KubernetesErrors.IsInvalid(failure)
                ? new KfmException("RollbackConcurrentChange", KfmErrorKind.ResourceBusy,
                    $"Deployment {ns}/{name} changed between reading and patching (resourceVersion precondition failed and its spec changed): someone else is changing it. Nothing was rolled back; find out who, then retry.", name, failure)
                : KubernetesErrors.Wrap(failure, $"Patching deployment {ns}/{name}", name);
            reporter.Record("OPS", $"Cluster rollback of {ns}/{name} failed before the deployment changed: {error.ErrorId}");
            return Result(request, current, RollbackOutcome.Failed, error.Message, sent) with { Error = error };
        }

        reporter.Record("OPS", $"Cluster rollback of {ns}/{name} ({SurfaceNames.Of(request.Surfaces)}): revision {current.FromRevision} → template of revision {current.ToRevision} " +
            $"({ImageRefs.Short(current.CurrentRef)} → {ImageRefs.Short(current.TargetRef)})");
        if (current.Fast is { Raises: true } fast)
        {
            reporter.Record("OPS", fast.Journal(request));
        }
        return Result(request, current, RollbackOutcome.Succeeded, request.Wait ? "rollback applied; waiting for the rollout" : "rollback applied; not waiting for the rollout (-Wait waits)", sent);
    }

    public async Task<RollbackResult> AwaitAsync(RollbackRequest request, RollbackResult applied, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        string ns = request.Environment.Cluster.Namespace, name = request.Environment.Cluster.Deployment;
        V1ReplicaSet target = await _client.AppsV1.ReadNamespacedReplicaSetAsync(applied.RolloutTarget, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
        string hash = SurfaceRollback.PodTemplateHash(target);
        var watcher = new RolloutWatcher(_client, ns, name, status => reporter.Progress?.Invoke(status.Message, status.PercentComplete));
        RolloutStatus final = await watcher.WaitAsync(hash, request.Timeout, cancellationToken).ConfigureAwait(false);
        bool ok = final.Phase == RolloutPhase.Complete;
        reporter.Record("OPS", ok ? $"Rollout of {ns}/{name} complete: {final.Message}" : $"Rollout of {ns}/{name} FAILED: {final.Message}");
        // A -Fast raise (this run's, or one a killed run left on the Deployment) is restored once the rollout converged, never before.
        PlannedChange? restored = ok ? await new FastRollout(_client).RestoreAsync(request, reporter, cancellationToken).ConfigureAwait(false) : null;
        if (!ok)
        {
            return applied with
            {
                Outcome = RollbackOutcome.Failed,
                Detail = final.Message,
                CompletedAt = _clock.UtcNow,
                Error = new KfmException("RollbackRolloutFailed", KfmErrorKind.InvalidOperation,
                    $"The rollback of {ns}/{name} was applied but its rollout failed: {final.Message}. Fail closed (Enable-KfmFailClosed) if the API is unsafe, and escalate." +
                    (request.Fast ? " The -Fast strategy (maxUnavailable 0 keeps the old pods serving) stays until a rerun with -Wait sees the rollout converge and restores it." : ""), name),
            };
        }
        // What now runs is the known state to come back to: snapshot its configuration.
        await new SurfaceRollback(_client, request.Environment).SnapshotAsync(target.Spec.Template, hash, cancellationToken).ConfigureAwait(false);
        return applied with { Detail = final.Message, CompletedAt = _clock.UtcNow, Changes = restored is null ? applied.Changes : applied.Changes.Append(restored).ToList() };
    }

    private Task<DeploymentSnapshot> ReadAsync(RollbackRequest request, CancellationToken cancellationToken) =>
        DeploymentSnapshot.ReadAsync(_client, request.Environment.Cluster.Namespace, request.Environment.Cluster.Deployment, cancellationToken);

    /// <param name="configRestored">Null to plan the config restores; true/false when they were already done (a retry plans only the patch).</param>
    private async Task<ClusterMechanismPlan> BuildAsync(RollbackRequest request, DeploymentSnapshot snapshot, DateTimeOffset plannedAt, bool? configRestored, CancellationToken cancellationToken)
    {
        string? container = request.Container ?? request.Environment.Cluster.Container;
        (RollbackTarget resolved, LastKnownGoodChoice? choice) = ResolveTarget(request, snapshot, container);
        ClusterRollbackPlan template = ClusterRollbackPlanner.Plan(snapshot.Deployment, snapshot.ReplicaSets, resolved, container, allowPaused: request.Force);
        V1ReplicaSet target = snapshot.ReplicaSets.First(rs => rs.Metadata.Name == template.TargetReplicaSet);
        var surfaces = new SurfaceRollback(_client, request.Environment);

        IReadOnlyList<ConfigObjectState> restores = Array.Empty<ConfigObjectState>();
        if (configRestored is null && (request.Surfaces.HasFlag(RollbackSurfaces.Config) || request.Surfaces.HasFlag(RollbackSurfaces.Policy)))
        {
            restores = (await surfaces.PlanConfigAsync(target, request.Surfaces, request.Force, cancellationToken).ConfigureAwait(false))
                .Where(s => s.Action == "restore").ToList();
        }
        (JsonArray? patch, string patchSurface) = SelectPatch(request, snapshot, template, target, surfaces, configRestored ?? restores.Count > 0, plannedAt);
        FastRolloutPlan? fast = request.Fast && patch is not null
            ? await new FastRollout(_client).PlanAsync(request, snapshot.Deployment, target.Spec.Template, plannedAt, cancellationToken).ConfigureAwait(false)
            : null;
        if (fast is { Raises: true })
        {
            // In the rollback's own patch: the raise and the rollback go out together, or neither does.
            fast.Ops.ToList().ForEach(op => patch!.Add(op.DeepClone()));
        }

        var plan = new ClusterMechanismPlan
        {
            Method = RollbackMethod.Cluster,
            Environment = request.Environment.Name,
            CurrentRef = ClusterRefReader.Read(snapshot, request.Environment.Name, container).CurrentRef,
            TargetRef = ImageRefs.DigestOf(PodTemplates.ContainerImage(target.Spec.Template, container, snapshot.Name)),
            TargetImage = PodTemplates.ContainerImage(target.Spec.Template, container, snapshot.Name),
            FromRevision = template.CurrentRevision,
            ToRevision = template.TargetRevision,
            PlannedAt = plannedAt,
            Template = template,
            ConfigRestores = restores,
            Patch = patch,
            PatchSurface = patchSurface,
            Fast = fast,
            Changes = Array.Empty<PlannedChange>(),
            Summary = patch is null && restores.Count == 0
                ? choice is { IsCurrent: true }
                    ? $"skipped rollback ({snapshot.Namespace}/{snapshot.Name} already runs its last-known-good: {choice.Why})"
                    : $"skipped rollback (current template already matches revision {template.TargetRevision})"
                : $"would {(restores.Count > 0 ? $"restore {restores.Count} config object(s) and " : "")}patch deployment {snapshot.Namespace}/{snapshot.Name}: revision {template.CurrentRevision} → template of revision {template.TargetRevision}" +
                    (choice is null ? "" : $" ({choice.Why})"),
            Quarantine = ClusterRefReader.Quarantine(snapshot),
        };
        var changes = restores.Select(surfaces.Change).ToList();
        if (patch is not null)
        {
            changes.Add(PatchChange(plan, Configuration.Redactors.For(request.Environment)));
        }
        if (fast?.Restore is { } restore)
        {
            changes.Add(restore);
        }
        return plan with { Changes = changes, Summary = fast is null ? plan.Summary : fast.Raises ? $"{plan.Summary}; -Fast: {fast.Why}" : $"{plan.Summary}; -Fast falls back to the Deployment's own strategy ({fast.Why})" };
    }

    /// <summary>
    /// The target to plan: what the request names, or, for "the previous revision" of an image
    /// rollback, the one last-known-good authority's choice (kubectl would take the second-highest
    /// revision, which after a rollback is the bad build: its undo hazard). A rollback already made
    /// leaves the current revision as its own target, so the plan is a no-op.
    /// </summary>
    private static (RollbackTarget, LastKnownGoodChoice?) ResolveTarget(RollbackRequest request, DeploymentSnapshot snapshot, string? container)
    {
        if (!request.Target.IsPrevious || !request.Surfaces.HasFlag(RollbackSurfaces.Image))
        {
            return (request.Target, null);
        }
        string containerName = PodTemplates.ResolveContainerName(snapshot.Deployment.Spec.Template, container, snapshot.Name);
        string? current = ClusterRefReader.Read(snapshot, request.Environment.Name, containerName).CurrentRef;
        EnvironmentTrust trust = (request.Trust ?? EnvironmentTrust.Empty(request.Environment.Name)).With(ClusterRefReader.Quarantine(snapshot));
        // Whole revisions, as kubectl compares them: the one before a configuration-only deploy runs the same image.
        LastKnownGoodChoice choice = trust.Choose(current, ClusterRefReader.History(snapshot, containerName), LastKnownGoodSources.PreviousRevision, sameDigest: true);
        if (choice.IsCurrent)
        {
            return (new RollbackTarget(snapshot.Revision, null), choice);
        }
        if (choice.Digest is null)
        {
            throw new KfmException("RollbackNoHistory", KfmErrorKind.ObjectNotFound,
                $"no rollout history found for deployment \"{snapshot.Name}\" that a rollback may target ({choice.Why}). " +
                "Name a target with -ToRevision or -ToRef (a quarantined one needs -Force -ForceReason), or use -Method GitOps with -ToRef <last-known-good digest> to deploy it anew.", snapshot.Name);
        }
        return (choice.Revision is { } revision ? new RollbackTarget(revision, null) : new RollbackTarget(null, choice.Digest), choice);
    }

    /// <summary>The one patch this rollback sends (and the surface it serves), or null when the template needs no change.</summary>
    private static (JsonArray?, string) SelectPatch(RollbackRequest request, DeploymentSnapshot snapshot, ClusterRollbackPlan plan, V1ReplicaSet target, SurfaceRollback surfaces, bool configRestored, DateTimeOffset at)
    {
        if (request.Surfaces.HasFlag(RollbackSurfaces.Image) && !plan.AlreadyAtTarget)
        {
            return (plan.Patch(), "image");
        }
        if (request.Surfaces.HasFlag(RollbackSurfaces.Policy))
        {
            string container = PodTemplates.ResolveContainerName(snapshot.Deployment.Spec.Template, request.Container ?? request.Environment.Cluster.Container, snapshot.Name);
            if (surfaces.PolicyTemplatePatch(snapshot.Deployment, target, container) is { } policy)
            {
                return (policy, "policy");
            }
        }
        // Restored configuration only takes effect in new pods.
        return configRestored ? (SurfaceRollback.RestartPatch(snapshot.Deployment, at), "config") : (null, "image");
    }

    /// <summary>The patch as people see it (plans, -WhatIf, results, receipts): env values redacted; the patch sent keeps them.</summary>
    private static PlannedChange PatchChange(ClusterMechanismPlan plan, Safety.Redactor redactor) =>
        new(plan.PatchSurface, $"deployment {plan.Template.Namespace}/{plan.Template.Deployment}", "json-patch", redactor.Content(plan.Patch!.ToJsonString(s_indented)));

    private async Task<Exception?> TryPatchAsync(ClusterMechanismPlan plan, RollbackReporter reporter, int attempt, CancellationToken cancellationToken)
    {
        if (plan.Patch is null)
        {
            return null;
        }
        try
        {
            // The patch itself is in the plan (redacted); the text sent carries the template's real env values.
            reporter.Say($"Patching deployment {plan.Template.Namespace}/{plan.Template.Deployment} (attempt {attempt}).");
            await _client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch(plan.Patch.ToJsonString(), V1Patch.PatchType.JsonPatch),
                plan.Template.Deployment, plan.Template.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return ex;
        }
    }

    /// <summary>True when nobody changed the Deployment's spec since <paramref name="plan"/> was read.</summary>
    private async Task<bool> SpecUnchangedAsync(ClusterMechanismPlan plan, CancellationToken cancellationToken)
    {
        V1Deployment now = await _client.AppsV1.ReadNamespacedDeploymentAsync(plan.Template.Deployment, plan.Template.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        return now.Metadata.Generation == plan.Template.Generation;
    }

    private static bool SamePlan(ClusterMechanismPlan a, ClusterMechanismPlan b) =>
        a.Template.TargetReplicaSet == b.Template.TargetReplicaSet && SamePatch(a.Patch, b.Patch) &&
        a.ConfigRestores.Select(r => (r.Kind, r.Name, r.ContentSha256, r.SnapshotName)).SequenceEqual(b.ConfigRestores.Select(r => (r.Kind, r.Name, r.ContentSha256, r.SnapshotName)));

    /// <summary>Equal but for the resourceVersion precondition, which only guards the send.</summary>
    private static bool SamePatch(JsonArray? a, JsonArray? b) =>
        a is null || b is null ? a is null && b is null : JsonNode.DeepEquals(WithoutPrecondition(a), WithoutPrecondition(b));

    private static JsonArray WithoutPrecondition(JsonArray patch) =>
        new(patch.Where(op => !(op?["op"]?.GetValue<string>() == "test" && op["path"]?.GetValue<string>() == "/metadata/resourceVersion")).Select(op => op!.DeepClone()).ToArray());

    private RollbackResult PlanChanged(RollbackRequest request, ClusterMechanismPlan plan, IReadOnlyList<PlannedChange> sent)
    {
        var error = new KfmException("RollbackPlanChanged", KfmErrorKind.ResourceBusy,
            $"Deployment {plan.Template.Namespace}/{plan.Template.Deployment} or its configuration changed after the rollback was planned, so the approved changes are no longer the ones to send. " +
            $"{(sent.Count == 0 ? "Nothing was changed." : $"{sent.Count} change(s) were sent before it moved.")} Look at the new plan with -WhatIf, then run again.", plan.Template.Deployment);
        return Result(request, plan, RollbackOutcome.Failed, error.Message, sent) with { Error = error };
    }

    private RollbackResult Result(RollbackRequest request, ClusterMechanismPlan plan, RollbackOutcome outcome, string detail, IReadOnlyList<PlannedChange> sent) =>
        plan.ToResult(request, outcome, _clock.UtcNow, detail, sent) with { RolloutTarget = plan.Template.TargetReplicaSet };
}
