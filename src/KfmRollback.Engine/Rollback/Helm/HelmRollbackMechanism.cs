using KfmRollback.Engine.Adapters.Helm;
using KfmRollback.Engine.Adapters.Kubernetes;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Freeze;
using KfmRollback.Engine.Refs;
using KfmRollback.Engine.Rollback.Cluster;
using KfmRollback.Engine.Rollback.Preflight;

namespace KfmRollback.Engine.Rollback.Helm;

/// <summary>
/// <c>helm rollback &lt;release&gt; [N] [--wait]</c> (pkg/action/rollback.go), limited to what the module
/// knows how to change safely: the API Deployment's pod template. It writes the release Secrets as
/// helm does (a new revision copying the target, pending-rollback, then deployed or failed; the
/// previously deployed one superseded; history pruned to helm.history_max) and refuses when the
/// target differs from the current release in anything else, handing over to helm itself.
/// </summary>
public sealed class HelmRollbackMechanism : IRollbackMechanism
{
    private readonly IKubernetes _client;
    private readonly AccessReviews? _reviews;
    private readonly IReadOnlyList<IFreezeMechanism> _controllers;
    private readonly IClock _clock;
    private const int PatchAttempts = 5;
    private RollbackLease? _lease;

    /// <param name="controllers">The GitOps controllers that could revert the change (FreezeMechanisms.ClusterControllers).</param>
    /// <param name="reviews">The operation's access review answers, shared by a fleet's environments; null: every plan asks.</param>
    public HelmRollbackMechanism(IKubernetes client, IReadOnlyList<IFreezeMechanism> controllers, IClock? clock = null, AccessReviews? reviews = null)
    {
        _client = client;
        _reviews = reviews;
        _controllers = controllers;
        _clock = clock ?? SystemClock.Instance;
    }

    public RollbackMethod Method => RollbackMethod.Helm;

    public IReadOnlyList<AccessRequirement> Requirements(RollbackRequest request)
    {
        string releases = HelmReleaseRefs.Require(request.Environment).EffectiveNamespace(request.Environment.Cluster);
        string ns = request.Environment.Cluster.Namespace;
        var needs = new List<AccessRequirement>
        {
            new("list", "", "secrets", releases, "read the release history"),
            new("get", "", "secrets", releases, "read a release revision"),
            new("create", "", "secrets", releases, "write the rollback revision"),
            new("update", "", "secrets", releases, "mark revisions deployed, superseded or failed"),
            new("delete", "", "secrets", releases, "prune revisions beyond helm.history_max"),
            new("get", "apps", "deployments", ns, "read the Deployment"),
            new("patch", "apps", "deployments", ns, "apply the target pod template"),
            new("get", "coordination.k8s.io", "leases", ns, "read the rollback lock"),
            new("create", "coordination.k8s.io", "leases", ns, "take the rollback lock"),
            new("update", "coordination.k8s.io", "leases", ns, "renew and release the rollback lock"),
        };
        if (request.Wait)
        {
            needs.Add(new("watch", "apps", "deployments", ns, "wait for the rollout"));
            needs.Add(new("list", "apps", "replicasets", ns, "find the ReplicaSet rolled out"));
            needs.Add(new("list", "", "pods", ns, "see crash loops of the target"));
            needs.Add(new("watch", "", "pods", ns, "see crash loops of the target"));
        }
        return needs;
    }

    public async Task<MechanismPlan> PlanAsync(RollbackRequest request, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        EnvironmentConfig environment = request.Environment;
        HelmConfig helm = HelmReleaseRefs.Require(environment);
        await ClusterGuards.EnsureAccessAsync(_client, request, Requirements(request), cancellationToken, _reviews).ConfigureAwait(false);
        await ClusterGuards.EnsureFrozenAsync(_controllers, request, reporter, cancellationToken).ConfigureAwait(false);

        IReadOnlyList<StoredRelease> history = await HelmReleaseRefs.Store(_client, environment).RequireHistoryAsync(helm.Release, cancellationToken).ConfigureAwait(false);
        V1Deployment deployment = await ReadDeploymentAsync(environment.Cluster, cancellationToken).ConfigureAwait(false);
        IReadOnlyList<QuarantineEntry> annotated = HelmReleaseRefs.Quarantine(deployment);
        if (ResumePlan(request, history, deployment, helm) is { } resumed)
        {
            return resumed with { Quarantine = annotated };
        }
        // A release stuck pending-* (not this run's own pending-rollback, resumed above) is refused before any target is chosen.
        HelmRollbackPlanner.RefusePending(environment, history, helm);
        if (request.Target.IsPrevious)
        {
            // helm rollback's "previous" is version-1, which after a rollback is the bad build: ask the one authority instead.
            StoredRelease current = history[^1];
            string? container = request.ContainerName.Length > 0 ? request.ContainerName : null;
            string? currentDigest = ImageRefs.DigestOf(HelmReleaseRefs.ImageOf(current.Release, environment.Cluster.Deployment, container)?.Image);
            EnvironmentTrust trust = (request.Trust ?? EnvironmentTrust.Empty(environment.Name)).With(annotated);
            // Whole revisions, as helm compares them (a revision that differs only outside the image counts),
            // except copies of the current one (a rollback's own revision): rolling back to those changes nothing.
            var candidates = HelmReleaseRefs.Candidates(history, current.Version, environment.Cluster.Deployment, container)
                .Where(c => history.First(r => r.Version == c.Revision).Release.ManifestHash != current.Release.ManifestHash);
            LastKnownGoodChoice choice = trust.Choose(currentDigest, candidates, LastKnownGoodSources.PreviousRelease, sameDigest: true);
            if (choice.IsCurrent && !HelmStatus.IsPending(current.Status))
            {
                return HelmRollbackPlanner.Unchanged(request, currentDigest, currentDigest, current.Version, current.Version,
                    $"skipped rollback (Helm release {helm.Release} revision {current.Version} already runs its last-known-good: {choice.Why})", _clock.UtcNow) with { Quarantine = annotated };
            }
            if (choice.Digest is null || choice.Revision is null)
            {
                throw new KfmException("RollbackNoHistory", KfmErrorKind.ObjectNotFound,
                    $"Helm release \"{helm.Release}\" has no earlier revision a rollback may target ({choice.Why}). " +
                    "Name one with -ToRevision (a quarantined one needs -Force -ForceReason); Get-KfmRolloutHistory -Source Helm lists them.", helm.Release);
            }
            request = request with { Target = new RollbackTarget(choice.Revision, null) };
        }
        return HelmRollbackPlanner.Plan(request, history, deployment, helm, _clock.UtcNow) with { Quarantine = annotated };
    }

    /// <summary>
    /// A rerun of a run whose attempt was killed after it stored its revision (pending-rollback): the
    /// revision is this run's, so it is finished rather than refused as "another operation is in
    /// progress". Null when there is nothing of this run's to finish.
    /// </summary>
    private MechanismPlan? ResumePlan(RollbackRequest request, IReadOnlyList<StoredRelease> history, V1Deployment deployment, HelmConfig helm)
    {
        if (request.Resume is not { Stage: Runs.RunStage.InFlight or Runs.RunStage.Applied } resume || HelmRolloutTarget.Parse(resume.RolloutTarget) is not { } target
            || target.Release != helm.Release || history.FirstOrDefault(r => r.Version == target.Version) is not { } own || own.Version != history[^1].Version)
        {
            return null;
        }
        string where = $"{target.Namespace}/{target.Release}";
        string? container = request.ContainerName.Length > 0 ? request.ContainerName : null;
        string? digest = ImageRefs.DigestOf(HelmReleaseRefs.ImageOf(own.Release, request.Environment.Cluster.Deployment, container)?.Image);
        if (own.Status != HelmStatus.PendingRollback)
        {
            return HelmRollbackPlanner.Unchanged(request, resume.CurrentRef, digest, own.Version - 1, own.Version,
                $"skipped rollback (this run's revision {own.Version} of Helm release {where} is already {own.Status})", _clock.UtcNow);
        }
        JsonObject template = HelmReleaseRefs.PodTemplate(own.Release, request.Environment.Cluster.Deployment)
            ?? throw new KfmException("HelmDeploymentNotInRelease", KfmErrorKind.ObjectNotFound,
                $"Revision {own.Version} of Helm release \"{helm.Release}\" renders no Deployment \"{request.Environment.Cluster.Deployment}\".", helm.Release);
        bool atTarget = ClusterRollbackPlanner.SemanticallyEqual(ClusterRollbackPlanner.TemplateWithoutHash(deployment.Spec.Template),
            StripHash((JsonObject)template.DeepClone()));
        var plan = new HelmRollbackPlan
        {
            Method = RollbackMethod.Helm,
            Environment = request.Environment.Name,
            Release = helm.Release,
            ReleaseNamespace = target.Namespace,
            DeploymentNamespace = request.Environment.Cluster.Namespace,
            Deployment = request.Environment.Cluster.Deployment,
            CurrentVersion = own.Version,
            TargetVersion = (int)(resume.Run.Records.LastOrDefault(r => r.ToRevision is not null)?.ToRevision ?? own.Version - 1),
            NewRelease = own.Release,
            Observed = history.ToDictionary(r => r.Version, r => r.ResourceVersion),
            Pruned = Array.Empty<int>(),
            Superseded = history.Where(r => r.Status == HelmStatus.Deployed).Select(r => r.Version).ToList(),
            DeploymentResourceVersion = deployment.Metadata.ResourceVersion,
            DeploymentGeneration = deployment.Metadata.Generation ?? 0,
            TargetTemplate = template,
            CurrentRef = resume.CurrentRef,
            TargetRef = digest,
            FromRevision = resume.Run.Records.LastOrDefault(r => r.FromRevision is not null)?.FromRevision ?? own.Version - 1,
            ToRevision = resume.Run.Records.LastOrDefault(r => r.ToRevision is not null)?.ToRevision,
            Changes = Array.Empty<PlannedChange>(),
            Summary = "",
            PlannedAt = _clock.UtcNow,
            Resumes = true,
            DeploymentAtTarget = atTarget,
        };
        var changes = new List<PlannedChange>();
        if (!atTarget)
        {
            changes.Add(HelmRollbackPlanner.PatchChange(plan, plan.Patch(plan.DeploymentResourceVersion)));
        }
        changes.AddRange(plan.Superseded.Select(v => HelmRollbackPlanner.StatusChange(target.Namespace, history.First(r => r.Version == v), HelmStatus.Superseded)));
        changes.Add(HelmRollbackPlanner.StatusChange(target.Namespace, helm.Release, own.Version, HelmStatus.PendingRollback, HelmStatus.Deployed + " (failed if the rollout fails)"));
        return plan with
        {
            Changes = changes,
            Summary = $"would finish this run's revision {own.Version} of Helm release {where} (pending-rollback, left by an attempt that stopped): " +
                (atTarget ? "deployment already has its pod template; " : $"give deployment {plan.DeploymentNamespace}/{plan.Deployment} its pod template; ") + "then mark it deployed",
        };
    }

    private static JsonObject StripHash(JsonObject template)
    {
        (template["metadata"]?["labels"] as JsonObject)?.Remove("pod-template-hash");
        return template;
    }

    /// <summary>
    /// Every write Apply sends before the rollout, with dryRun=All: the pruned revisions' deletes, the
    /// new revision's Secret, the Deployment patch (without its resourceVersion test) and the
    /// supersede updates. The final status update of the new revision cannot be dry-run: its Secret
    /// does not exist until Apply creates it.
    /// </summary>
    public async Task<IReadOnlyList<PreflightCheck>> DryRunAsync(RollbackRequest request, MechanismPlan plan, CancellationToken cancellationToken)
    {
        var helmPlan = (HelmRollbackPlan)plan;
        string environment = request.Environment.Name;
        var store = new HelmReleaseStore(_client, helmPlan.ReleaseNamespace, _clock);
        IReadOnlyDictionary<int, StoredRelease> byVersion;
        try
        {
            byVersion = (await store.HistoryAsync(helmPlan.Release, cancellationToken).ConfigureAwait(false)).ToDictionary(r => r.Version);
        }
        catch (KfmException ex)
        {
            return new[] { ServerDryRun.Unchecked(environment, $"secrets of Helm release {helmPlan.ReleaseNamespace}/{helmPlan.Release}", ex) };
        }
        var checks = new List<PreflightCheck>();
        async Task Check(PlannedChange change, Func<Task> dryRun) =>
            checks.Add(await ServerDryRun.CheckAsync(environment, $"{change.Action} {change.Object}", dryRun, cancellationToken).ConfigureAwait(false));
        foreach (int version in helmPlan.Pruned.Where(byVersion.ContainsKey))
        {
            await Check(HelmRollbackPlanner.DeleteChange(helmPlan.ReleaseNamespace, byVersion[version]), () => store.DeleteAsync(byVersion[version], cancellationToken, dryRun: true)).ConfigureAwait(false);
        }
        await Check(HelmRollbackPlanner.CreateChange(helmPlan.ReleaseNamespace, helmPlan.NewRelease), () => store.CreateAsync(helmPlan.NewRelease, cancellationToken, dryRun: true)).ConfigureAwait(false);
        JsonArray patch = new(helmPlan.Patch(helmPlan.DeploymentResourceVersion).Skip(1).Select(op => op!.DeepClone()).ToArray());
        await Check(HelmRollbackPlanner.PatchChange(helmPlan, patch), () => _client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch(patch.ToJsonString(), V1Patch.PatchType.JsonPatch),
            helmPlan.Deployment, helmPlan.DeploymentNamespace, dryRun: ServerDryRun.All, cancellationToken: cancellationToken)).ConfigureAwait(false);
        foreach (int version in helmPlan.Superseded.Where(byVersion.ContainsKey))
        {
            StoredRelease deployed = byVersion[version];
            await Check(HelmRollbackPlanner.StatusChange(helmPlan.ReleaseNamespace, deployed, HelmStatus.Superseded),
                () => store.UpdateAsync(deployed, deployed.Release.WithStatus(HelmStatus.Superseded), cancellationToken, dryRun: true)).ConfigureAwait(false);
        }
        return checks;
    }

    /// <summary>
    /// Takes the environment's rollback Lease (the one cluster rollbacks take) for Apply and Await.
    /// When nobody called this, Apply and Await each take it for their own duration.
    /// </summary>
    public async Task<IRollbackLock> LockAsync(RollbackRequest request, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        RollbackLease lease = await ClusterGuards.LockAsync(_client, request, reporter, _clock, cancellationToken).ConfigureAwait(false);
        _lease = lease;
        return new LeaseLock(lease, () => Interlocked.CompareExchange(ref _lease, null, lease));
    }

    public async Task<string?> CurrentRefAsync(RollbackRequest request, CancellationToken cancellationToken)
    {
        IReadOnlyList<StoredRelease> history = await HelmReleaseRefs.Store(_client, request.Environment).RequireHistoryAsync(request.Environment.Helm!.Release, cancellationToken).ConfigureAwait(false);
        return HelmReleaseRefs.Ref(history, request.Environment, request.Container).CurrentRef;
    }

    public async Task<RollbackResult> ApplyAsync(RollbackRequest request, MechanismPlan plan, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        if (plan is not HelmRollbackPlan helmPlan)
        {
            throw new ArgumentException($"A {plan.Method} plan cannot be applied by the Helm mechanism.", nameof(plan));
        }
        return await LockedAsync(request, reporter, () => ApplyLockedAsync(request, helmPlan, reporter, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    public async Task<RollbackResult> AwaitAsync(RollbackRequest request, RollbackResult applied, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        var target = HelmRolloutTarget.Parse(applied.RolloutTarget)
            ?? throw new ArgumentException($"This result ({applied.Method}) names no Helm release revision to wait for.", nameof(applied));
        return await LockedAsync(request, reporter, () => AwaitLockedAsync(request, applied, target.Namespace, target.Release, target.Version, reporter, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs <paramref name="work"/> under the Lease: the one LockAsync took, else one held just for it.</summary>
    private async Task<RollbackResult> LockedAsync(RollbackRequest request, RollbackReporter reporter, Func<Task<RollbackResult>> work, CancellationToken cancellationToken)
    {
        IAsyncDisposable? own = _lease is null ? await LockAsync(request, reporter, cancellationToken).ConfigureAwait(false) : null;
        try
        {
            return await work().ConfigureAwait(false);
        }
        finally
        {
            if (own is not null)
            {
                await own.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task<RollbackResult> ApplyLockedAsync(RollbackRequest request, HelmRollbackPlan plan, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        var store = new HelmReleaseStore(_client, plan.ReleaseNamespace, _clock);
        string where = $"{plan.ReleaseNamespace}/{plan.Release}";

        // The plan was made outside the lock: if any revision or the Deployment's spec moved since,
        // the writes would differ from what was shown, so nothing is sent.
        IReadOnlyList<StoredRelease> history = await store.HistoryAsync(plan.Release, cancellationToken).ConfigureAwait(false);
        V1Deployment deployment = await ReadDeploymentAsync(request.Environment.Cluster, cancellationToken).ConfigureAwait(false);
        string? moved = Moved(plan, history, deployment);
        if (moved is not null)
        {
            var error = new KfmException("RollbackPlanChanged", KfmErrorKind.ResourceBusy,
                $"Helm release {where} changed since the rollback was planned ({moved}); nothing was sent. Plan again (Invoke-KfmRollback -WhatIf) and check who else is deploying.", plan.Release);
            reporter.Record("OPS", $"Helm rollback of {where} refused: {error.ErrorId}");
            return Result(request, plan, RollbackOutcome.Failed, error.Message, Array.Empty<PlannedChange>()) with { Error = error };
        }

        var sent = new List<PlannedChange>();
        IReadOnlyDictionary<int, StoredRelease> byVersion = history.ToDictionary(r => r.Version);
        try
        {
            // storage.go Create prunes before it writes the new revision; a resumed run stored it already.
            StoredRelease created;
            if (plan.Resumes)
            {
                created = byVersion[plan.NewVersion];
            }
            else
            {
                foreach (int version in plan.Pruned)
                {
                    await store.DeleteAsync(byVersion[version], cancellationToken).ConfigureAwait(false);
                    sent.Add(HelmRollbackPlanner.DeleteChange(plan.ReleaseNamespace, byVersion[version]));
                }
                created = await store.CreateAsync(plan.NewRelease, cancellationToken).ConfigureAwait(false);
                sent.Add(HelmRollbackPlanner.CreateChange(plan.ReleaseNamespace, plan.NewRelease));
            }

            JsonArray patch = plan.Patch(deployment.Metadata.ResourceVersion);
            try
            {
                for (int attempt = 1; !plan.DeploymentAtTarget; attempt++)
                {
                    try
                    {
                        reporter.Say($"Patching deployment {plan.DeploymentNamespace}/{plan.Deployment} with the pod template of revision {plan.TargetVersion} (attempt {attempt}).");
                        await _client.AppsV1.PatchNamespacedDeploymentAsync(new V1Patch(patch.ToJsonString(), V1Patch.PatchType.JsonPatch),
                            plan.Deployment, plan.DeploymentNamespace, cancellationToken: cancellationToken).ConfigureAwait(false);
                        break;
                    }
                    catch (Exception ex) when (attempt < PatchAttempts && (KubernetesErrors.IsInvalid(ex) || KubernetesErrors.IsConflict(ex)))
                    {
                        // The resourceVersion moved: only a status write (same generation) lets the same patch go again.
                        V1Deployment now = await ReadDeploymentAsync(request.Environment.Cluster, cancellationToken).ConfigureAwait(false);
                        if (now.Metadata.Generation != plan.DeploymentGeneration)
                        {
                            throw;
                        }
                        reporter.Say($"Deployment {plan.DeploymentNamespace}/{plan.Deployment} changed status between read and patch (spec unchanged); sending the same patch again.");
                        patch = plan.Patch(now.Metadata.ResourceVersion);
                    }
                }
                if (!plan.DeploymentAtTarget)
                {
                    sent.Add(HelmRollbackPlanner.PatchChange(plan, patch, Configuration.Redactors.For(request.Environment)));
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // helm marks the new revision failed with "Rollback <name> failed: <err>". A JSON patch is
                // atomic, so a refused one changed nothing and the current revision stays deployed.
                KfmException error = KubernetesErrors.IsInvalid(ex)
                    ? new KfmException("RollbackPlanChanged", KfmErrorKind.ResourceBusy,
                        $"Deployment {plan.DeploymentNamespace}/{plan.Deployment} changed between reading and patching; it was not changed, and revision {plan.NewVersion} of {where} is marked failed. Plan again and find out who else is deploying.", plan.Deployment, ex)
                    : KubernetesErrors.Wrap(ex, $"Patching deployment {plan.DeploymentNamespace}/{plan.Deployment}", plan.Deployment);
                await store.UpdateAsync(created, created.Release.WithStatus(HelmStatus.Failed, $"Rollback \"{plan.Release}\" failed: {error.Message}"), cancellationToken).ConfigureAwait(false);
                sent.Add(HelmRollbackPlanner.StatusChange(plan.ReleaseNamespace, created, HelmStatus.Failed));
                reporter.Record("OPS", $"Helm rollback of {where} failed before the Deployment changed: {error.ErrorId}; revision {plan.NewVersion} marked failed");
                return Result(request, plan, RollbackOutcome.Failed, error.Message, sent) with { Error = error };
            }

            reporter.Record("OPS", $"Helm rollback of {where}: revision {plan.CurrentVersion} → {plan.NewVersion} (\"Rollback to {plan.TargetVersion}\", {ImageRefs.Short(plan.CurrentRef)} → {ImageRefs.Short(plan.TargetRef)})");
            if (request.Wait)
            {
                return Result(request, plan, RollbackOutcome.Succeeded, $"rollback applied; revision {plan.NewVersion} is pending-rollback until the rollout completes", sent);
            }
            // helm rollback without --wait: supersede and mark deployed at once.
            sent.AddRange(await FinishAsync(store, plan.Release, plan.NewVersion, succeeded: true, null, cancellationToken).ConfigureAwait(false));
            return Result(request, plan, RollbackOutcome.Succeeded, "rollback applied; not waiting for the rollout (-Wait waits)", sent);
        }
        catch (Exception ex) when (ex is not KfmException && (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested))
        {
            KfmException error = KubernetesErrors.IsConflict(ex) || KubernetesErrors.Status(ex) == System.Net.HttpStatusCode.Conflict
                ? new KfmException("RollbackPlanChanged", KfmErrorKind.ResourceBusy,
                    $"A Secret of Helm release {where} changed while the rollback wrote it (409 Conflict); someone else is deploying. Sent so far: {Sent(sent)}. Check Get-KfmRolloutHistory -Source Helm, then plan again.", plan.Release, ex)
                : KubernetesErrors.Wrap(ex, $"Writing the release Secrets of {where} (sent so far: {Sent(sent)})", plan.Release);
            reporter.Record("OPS", $"Helm rollback of {where} failed: {error.ErrorId}; sent: {Sent(sent)}");
            return Result(request, plan, RollbackOutcome.Failed, error.Message, sent) with { Error = error };
        }
    }

    private async Task<RollbackResult> AwaitLockedAsync(RollbackRequest request, RollbackResult applied, string releaseNamespace, string release, int version, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        ClusterConfig cluster = request.Environment.Cluster;
        var store = new HelmReleaseStore(_client, releaseNamespace, _clock);
        string? hash = await TargetPodTemplateHashAsync(cluster, cancellationToken).ConfigureAwait(false);
        var watcher = new RolloutWatcher(_client, cluster.Namespace, cluster.Deployment, status => reporter.Progress?.Invoke(status.Message, status.PercentComplete));
        RolloutStatus final;
        try
        {
            final = await watcher.WaitAsync(hash, request.Timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (KfmException ex) when (ex.ErrorId == "RolloutWaitTimeout")
        {
            final = new RolloutStatus(RolloutPhase.Failed, "timed out waiting for the condition", 0);
        }
        bool ok = final.Phase == RolloutPhase.Complete;
        IReadOnlyList<PlannedChange> finished = await FinishAsync(store, release, version, ok, $"Release \"{release}\" failed: {final.Message}", cancellationToken).ConfigureAwait(false);
        reporter.Record("OPS", ok
            ? $"Rollout of {cluster.Namespace}/{cluster.Deployment} complete; Helm release {releaseNamespace}/{release} revision {version} deployed"
            : $"Rollout of {cluster.Namespace}/{cluster.Deployment} FAILED: {final.Message}; Helm release {releaseNamespace}/{release} revision {version} marked failed");
        RollbackResult result = applied with
        {
            Outcome = ok ? RollbackOutcome.Succeeded : RollbackOutcome.Failed,
            CompletedAt = _clock.UtcNow,
            Detail = final.Message,
            Changes = applied.Changes.Concat(finished).ToList(),
        };
        return ok ? result : result with
        {
            Error = new KfmException("RollbackRolloutFailed", KfmErrorKind.InvalidOperation,
                $"The Helm rollback of {releaseNamespace}/{release} was applied but its rollout failed: {final.Message}. Revision {version} is marked failed, as helm does. Fail closed (Enable-KfmFailClosed) if the API is unsafe, and escalate.", release),
        };
    }

    /// <summary>
    /// The end of helm's performRollback: on success every other deployed revision is superseded and
    /// the new one deployed; on failure the new one is failed (the current one stays deployed).
    /// </summary>
    private static async Task<IReadOnlyList<PlannedChange>> FinishAsync(HelmReleaseStore store, string release, int version, bool succeeded, string? failure, CancellationToken cancellationToken)
    {
        IReadOnlyList<StoredRelease> history = await store.HistoryAsync(release, cancellationToken).ConfigureAwait(false);
        if (history.Any(r => r.Version == version && r.Status == (succeeded ? HelmStatus.Deployed : HelmStatus.Failed)))
        {
            return Array.Empty<PlannedChange>(); // an earlier attempt of this run finished it already
        }
        StoredRelease rolledBack = history.FirstOrDefault(r => r.Version == version && r.Status == HelmStatus.PendingRollback)
            ?? throw new KfmException("RollbackPlanChanged", KfmErrorKind.ResourceBusy,
                $"Revision {version} of Helm release {store.Namespace}/{release} is no longer pending-rollback ({history.FirstOrDefault(r => r.Version == version)?.Status ?? "deleted"}); someone else changed the release. Check Get-KfmRolloutHistory -Source Helm.", release);
        var sent = new List<PlannedChange>();
        if (succeeded)
        {
            foreach (StoredRelease deployed in history.Where(r => r.Status == HelmStatus.Deployed && r.Version != version))
            {
                await store.UpdateAsync(deployed, deployed.Release.WithStatus(HelmStatus.Superseded), cancellationToken).ConfigureAwait(false);
                sent.Add(HelmRollbackPlanner.StatusChange(store.Namespace, deployed, HelmStatus.Superseded));
            }
        }
        // The rolled-back revision keeps the labels helm gave it (its custom ones), not createdAt.
        HelmRelease final = new HelmRelease(rolledBack.Release.Json, rolledBack.Release.CustomLabels)
            .WithStatus(succeeded ? HelmStatus.Deployed : HelmStatus.Failed, succeeded ? null : failure);
        await store.UpdateAsync(rolledBack, final, cancellationToken).ConfigureAwait(false);
        sent.Add(HelmRollbackPlanner.StatusChange(store.Namespace, rolledBack, final.Status!));
        return sent;
    }

    /// <summary>Why the state no longer matches the plan, or null when it does.</summary>
    private static string? Moved(HelmRollbackPlan plan, IReadOnlyList<StoredRelease> history, V1Deployment deployment)
    {
        var now = history.ToDictionary(r => r.Version, r => r.ResourceVersion);
        foreach (var (version, resourceVersion) in plan.Observed)
        {
            if (!now.TryGetValue(version, out string? current))
            {
                return $"revision {version} was deleted";
            }
            if (current != resourceVersion)
            {
                return $"revision {version} was rewritten";
            }
        }
        int? added = now.Keys.Except(plan.Observed.Keys).Cast<int?>().FirstOrDefault();
        if (added is not null)
        {
            return $"revision {added} appeared";
        }
        // A status-only write (the controller reporting progress) leaves the generation alone.
        return (deployment.Metadata.Generation ?? 0) != plan.DeploymentGeneration
            ? $"deployment {plan.DeploymentNamespace}/{plan.Deployment} was changed (generation {plan.DeploymentGeneration} → {deployment.Metadata.Generation})"
            : null;
    }

    /// <summary>The ReplicaSet the Deployment's current template runs in, whose pods are checked for crash loops.</summary>
    private async Task<string?> TargetPodTemplateHashAsync(ClusterConfig cluster, CancellationToken cancellationToken)
    {
        for (int attempt = 0; attempt < 20; attempt++)
        {
            DeploymentSnapshot snapshot = await DeploymentSnapshot.ReadAsync(_client, cluster.Namespace, cluster.Deployment, cancellationToken, includePods: false).ConfigureAwait(false);
            JsonObject wanted = ClusterRollbackPlanner.TemplateWithoutHash(snapshot.Deployment.Spec.Template);
            V1ReplicaSet? set = snapshot.ReplicaSets.FirstOrDefault(rs => ClusterRollbackPlanner.SemanticallyEqual(ClusterRollbackPlanner.TemplateWithoutHash(rs.Spec.Template), wanted));
            if (set is not null)
            {
                return Surfaces.SurfaceRollback.PodTemplateHash(set);
            }
            await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken).ConfigureAwait(false);
        }
        return null; // the deployment controller has not made it yet; the watch still judges progress
    }

    private async Task<V1Deployment> ReadDeploymentAsync(ClusterConfig cluster, CancellationToken cancellationToken)
    {
        try
        {
            return await _client.AppsV1.ReadNamespacedDeploymentAsync(cluster.Deployment, cluster.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw KubernetesErrors.Wrap(ex, $"Reading deployment {cluster.Namespace}/{cluster.Deployment}", cluster.Deployment);
        }
    }

    private RollbackResult Result(RollbackRequest request, HelmRollbackPlan plan, RollbackOutcome outcome, string detail, IReadOnlyList<PlannedChange> sent) =>
        plan.ToResult(request, outcome, _clock.UtcNow, detail, sent);

    private static string Sent(IReadOnlyList<PlannedChange> sent) => sent.Count == 0 ? "nothing" : string.Join("; ", sent.Select(c => $"{c.Action} {c.Object}"));
}
