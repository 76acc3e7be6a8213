using KfmRollback.Engine.Receipts;
using KfmRollback.Engine.Adapters.Kubernetes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Refs;

namespace KfmRollback.Engine.Planning;

/// <summary>What Get-KfmRollbackPlan was asked, for one environment.</summary>
public sealed record RollbackPlanRequest
{
    public string? IncidentId { get; init; }
    /// <summary>When the incident began: -Since, else the incident journal's start time.</summary>
    public DateTimeOffset? IncidentStartedAt { get; init; }
    /// <summary>How long before the incident a deploy still counts as its likely cause.</summary>
    public TimeSpan DeployWindow { get; init; } = TimeSpan.FromHours(24);
    /// <summary>Compare against this revision instead of choosing the last-known-good.</summary>
    public long? ToRevision { get; init; }
    /// <summary>Compare against the newest revision that runs this digest.</summary>
    public string? ToRef { get; init; }
    public string? Container { get; init; }
    /// <summary>-Fast: preflight the proposed cluster rollback with its strategy raise (FastRollout) as Invoke-KfmRollback -Fast -Wait would send it.</summary>
    public bool Fast { get; init; }
}

/// <summary>Where the planner reads what is not in the cluster; each may be absent in tests.</summary>
public sealed class PlanSources
{
    /// <summary>What the last-known-good authority knows of the environment (quarantine, rollback targets, verified receipts).</summary>
    public EnvironmentTrust? Trust { get; init; }
    /// <summary>Reads the desired ref from the GitOps repository; throws when it cannot.</summary>
    public Func<CancellationToken, Task<ApiRef>>? GitOpsRef { get; init; }
    /// <summary>For OPA's status API.</summary>
    public HttpClient? Http { get; init; }
    public IClock Clock { get; init; } = SystemClock.Instance;
}

/// <summary>
/// The runbook's decision tree (rb-api-rollback.md, "Decision tree"): was the most recent deploy
/// before the incident, then what changed against the last-known-good — the API image, its runtime
/// configuration, its policy bundle — and so which rollback; nothing changed in the API means the
/// data/catalog runbooks apply. Anything it cannot determine stops it (default deny).
/// </summary>
public sealed class RollbackPlanner
{
    public const string DatasetRunbook = "docs/runbooks/data/rb-dataset-rollback.md";
    public const string CatalogRunbook = "docs/runbooks/catalog/rb-catalog-recover.md";

    private readonly IKubernetes _client;
    private readonly EnvironmentConfig _environment;
    private readonly PlanSources _sources;

    public RollbackPlanner(IKubernetes client, EnvironmentConfig environment, PlanSources? sources = null)
    {
        _client = client;
        _environment = environment;
        _sources = sources ?? new PlanSources();
    }

    public async Task<RollbackDecision> PlanAsync(RollbackPlanRequest request, CancellationToken cancellationToken)
    {
        DateTimeOffset incidentStart = request.IncidentStartedAt ?? throw new KfmException(RollbackPlanErrorIds.IncidentStartUnknown, KfmErrorKind.Ambiguous,
            (request.IncidentId is null ? "No incident was named" : $"Incident {request.IncidentId} is not in the incident journal") +
            $", so when the problem began is unknown and whether the last deploy of {_environment.Name} can be its cause cannot be decided. " +
            "Pass -IncidentId of an incident opened with New-KfmIncident (its start time is used), or -Since <when the problem began>.", _environment.Name);

        var snapshot = await DeploymentSnapshot.ReadAsync(_client, _environment.Cluster.Namespace, _environment.Cluster.Deployment, cancellationToken).ConfigureAwait(false);
        string container = PodTemplates.ResolveContainerName(snapshot.Deployment.Spec.Template, request.Container ?? _environment.Cluster.Container, snapshot.Name);
        ApiRef running = ClusterRefReader.Read(snapshot, _environment.Name, container);
        string currentRef = running.CurrentRef ?? throw Undetermined(
            $"deployment {snapshot.Namespace}/{snapshot.Name} names the mutable tag '{running.CurrentImage}' and its pods run {running.RunningDigests.Count} digests, so the running image is unknown. " +
            "Wait for the rollout to settle (kubectl rollout status) and plan again, or pin the image by digest.");

        V1ReplicaSet currentSet = snapshot.CurrentReplicaSet is { Metadata.CreationTimestamp: not null } set ? set : throw new KfmException(RollbackPlanErrorIds.DeployTimeUnknown, KfmErrorKind.Ambiguous,
            $"The ReplicaSet of revision {snapshot.Revision} of deployment {snapshot.Namespace}/{snapshot.Name} {(snapshot.CurrentReplicaSet is null ? "does not exist" : "has no creation time")}, " +
            "so when the last deploy happened is unknown and whether it caused the incident cannot be decided. Nothing is planned. " +
            "Let the Deployment controller catch up (kubectl rollout status) and plan again.", _environment.Name);
        var lastDeploy = new DateTimeOffset(DateTime.SpecifyKind(currentSet.Metadata.CreationTimestamp!.Value, DateTimeKind.Utc));
        bool afterIncident = lastDeploy > incidentStart;
        bool suspect = !afterIncident && incidentStart - lastDeploy <= request.DeployWindow;

        var current = PlanTemplate.Of(currentSet);
        (PlanTemplate lastGood, string lastGoodSource) = ChooseLastKnownGood(snapshot, current, currentRef, container, request, suspect || afterIncident);
        string lastGoodRef = ImageRefs.DigestOf(PodTemplates.ContainerImage(lastGood.Template, container, snapshot.Name)) ?? throw Undetermined(
            $"revision {lastGood.Revision} names the image '{PodTemplates.ContainerImage(lastGood.Template, container, snapshot.Name)}' by tag, and its pods are gone, so the digest it ran is unknown. " +
            "Choose a revision pinned by digest with -ToRevision (Get-KfmRolloutHistory).");

        var comparison = new SurfaceComparison(_client, _environment);
        var evidence = new List<PlanEvidence>
        {
            new(SurfaceComparison.ImageSurface, $"image digest (container {container})", currentRef, lastGoodRef, currentRef != lastGoodRef,
                $"revision {current.Revision} ({(running.RunningDigests.Count > 0 ? "pods run " + string.Join(", ", running.RunningDigests.Select(Short)) : "no pods running")}) vs revision {lastGood.Revision} template"),
        };
        SurfaceComparisonResult config = await comparison.CompareConfigAsync(current, lastGood, cancellationToken).ConfigureAwait(false);
        SurfaceComparisonResult policy = await comparison.ComparePolicyAsync(current, lastGood, container, _sources.Http, cancellationToken).ConfigureAwait(false);
        var missing = config.MissingSnapshots.Concat(policy.MissingSnapshots).ToList();
        if (missing.Count > 0)
        {
            throw new KfmException(RollbackPlanErrorIds.SnapshotMissing, KfmErrorKind.Ambiguous,
                $"No snapshot records what {string.Join(", ", missing)} held when revision {lastGood.Revision} ran, so a reused name with other content cannot be ruled out. Nothing is planned. " +
                "Start-KfmFreeze takes these snapshots for the revision running at the time (so do verified rollbacks): " +
                "plan against a revision that has them with -ToRevision (Get-KfmRolloutHistory), or compare the configuration in Git.", missing[0]);
        }
        evidence.AddRange(config.Evidence);
        evidence.AddRange(policy.Evidence);

        string[] surfaces = new[] { SurfaceComparison.ImageSurface, SurfaceComparison.ConfigSurface, SurfaceComparison.PolicySurface }
            .Where(s => evidence.Any(e => e.Surface == s && e.Changed)).ToArray();
        if (surfaces.Length == 0)
        {
            if (policy.NotCompared is { } why)
            {
                throw Undetermined($"the image and the runtime configuration of {_environment.Name} match revision {lastGood.Revision}, but {why}. " +
                    "Configure policy_surface for this environment before concluding that the API did not change.");
            }
            throw new KfmException(RollbackPlanErrorIds.ApiUnchanged, KfmErrorKind.InvalidOperation,
                $"The API in {_environment.Name} did not change: it runs {Short(currentRef)} as revision {lastGood.Revision} did, with the same configuration hashes and policy bundle. " +
                $"This looks like a data/catalog problem, not an API one: a rollback of the API would not help. Stop and use {DatasetRunbook} or {CatalogRunbook}.", _environment.Name);
        }

        (string method, string methodReason, IReadOnlyList<MethodChoice> choices) = await ChooseMethodAsync(surfaces, cancellationToken).ConfigureAwait(false);
        bool imageChanged = surfaces.Contains(SurfaceComparison.ImageSurface);
        return new RollbackDecision
        {
            Environment = _environment.Name,
            IncidentId = request.IncidentId,
            Method = method,
            MethodReason = methodReason,
            Methods = choices,
            Surface = surfaces,
            // One target per method, so the plan binds into exactly one of Invoke-KfmRollback's target parameter sets.
            ToRef = method == "GitOps" && imageChanged ? lastGoodRef : null,
            ToRevision = method == "Cluster" ? lastGood.Revision : null,
            CurrentRef = currentRef,
            CurrentRevision = current.Revision,
            RollbackTargetRef = lastGoodRef,
            LastKnownGoodSource = lastGoodSource,
            IncidentStartedAt = incidentStart,
            LastDeployAt = lastDeploy,
            DeployAfterIncidentStart = afterIncident,
            MostRecentDeploySuspect = suspect,
            Evidence = evidence,
            Summary = Summarise(surfaces, lastGood, method, afterIncident, lastDeploy, incidentStart),
            PlannedAt = _sources.Clock.UtcNow,
        };
    }

    /// <summary>
    /// -ToRevision, else -ToRef, else: when the last deploy is the likely cause (or came after the
    /// incident began), the revision before it; when it is older than the deploy window, the running
    /// revision itself (what changed since is configuration or policy, not the template).
    /// </summary>
    private (PlanTemplate, string) ChooseLastKnownGood(DeploymentSnapshot snapshot, PlanTemplate current, string currentRef, string container, RollbackPlanRequest request, bool deployIsSuspect)
    {
        var history = snapshot.ReplicaSets
            .Select(rs => (Set: rs, Revision: DeploymentRevisions.Revision(rs.Metadata)))
            .Where(x => x.Revision.HasValue)
            .OrderByDescending(x => x.Revision)
            .ToList();
        EnvironmentTrust trust = (_sources.Trust ?? EnvironmentTrust.Empty(_environment.Name)).With(ClusterRefReader.Quarantine(snapshot));
        if (request.ToRevision is { } wanted)
        {
            var match = history.FirstOrDefault(x => x.Revision == wanted).Set ?? throw new KfmException(RollbackPlanErrorIds.NoLastKnownGood, KfmErrorKind.ObjectNotFound,
                $"Revision {wanted} is not in the history of deployment {snapshot.Namespace}/{snapshot.Name} (it has {string.Join(", ", history.Select(h => h.Revision))}). See Get-KfmRolloutHistory.", wanted);
            RefuseQuarantined(trust, match, container, snapshot.Name, currentRef, $"-ToRevision {wanted}");
            return (PlanTemplate.Of(match), "to-revision");
        }
        if (request.ToRef is { } digest)
        {
            V1ReplicaSet match = RunningDigest(history, digest, container, snapshot.Name, "-ToRef");
            RefuseQuarantined(trust, match, container, snapshot.Name, currentRef, $"-ToRef {digest}");
            return (PlanTemplate.Of(match), "to-ref");
        }
        if (!deployIsSuspect)
        {
            return (current, "running-revision");
        }
        // The one authority: never a quarantined digest; the current build when a rollback already chose it.
        LastKnownGoodChoice choice = trust.Choose(currentRef, ClusterRefReader.History(snapshot, container), LastKnownGoodSources.PreviousRevision, sameDigest: true);
        if (choice.IsCurrent)
        {
            throw new KfmException(RollbackPlanErrorIds.AtLastKnownGood, KfmErrorKind.InvalidOperation,
                $"{_environment.Name} already runs its last-known-good: {choice.Why}. Rolling back would change nothing (and rolling further back would leave a verified build). " +
                "If this build is bad too, name an earlier one with -ToRevision or -ToRef (Get-KfmRolloutHistory).", _environment.Name);
        }
        if (choice.Digest is not null)
        {
            V1ReplicaSet target = choice.Revision is { } revision
                ? history.First(x => x.Revision == revision).Set
                : RunningDigest(history, choice.Digest, container, snapshot.Name, choice.Source == LastKnownGoodSources.ReceiptStore ? "the last verified rollback receipt" : "the last recorded rollback target");
            return (PlanTemplate.Of(target), choice.Source!);
        }
        throw new KfmException(RollbackPlanErrorIds.NoLastKnownGood, KfmErrorKind.Ambiguous,
            $"Deployment {snapshot.Namespace}/{snapshot.Name} has no usable revision before {current.Revision} ({choice.Why}; revisionHistoryLimit may have cleaned older ones up) and neither the journal nor a verified receipt names a rollback target, " +
            $"so there is no last-known-good to compare {_environment.Name} with. Nothing is planned. " +
            "Name one with -ToRevision or -ToRef <digest> (Get-KfmRolloutHistory, Get-KfmApiRef -Source GitOps), or, when the cluster no longer has it, roll back through Git: Invoke-KfmRollback -Method GitOps -ToRef <digest>.", _environment.Name);
    }

    /// <summary>An explicit target that is quarantined is refused here too: the plan must not lead Invoke-KfmRollback to it.</summary>
    private void RefuseQuarantined(EnvironmentTrust trust, V1ReplicaSet target, string container, string deployment, string currentRef, string named)
    {
        string? digest = ImageRefs.DigestOf(PodTemplates.ContainerImage(target.Spec.Template, container, deployment));
        if (digest != currentRef && trust.QuarantineOf(digest) is { } entry)
        {
            throw trust.Refusal(entry, $"Invoke-KfmRollback -Environment {_environment.Name} -Method Cluster {named} -Force -ForceReason '<why it is safe now>' (recorded on the incident).");
        }
    }

    private V1ReplicaSet RunningDigest(IEnumerable<(V1ReplicaSet Set, long? Revision)> history, string given, string container, string deployment, string from)
    {
        if (!ImageRefs.IsDigestOrPrefix(given))
        {
            throw new KfmException("RollbackPlanTargetNotDigest", KfmErrorKind.InvalidArgument,
                $"{from} must be an image digest (sha256: and 64 hex characters, or its first {ImageRefs.MinPrefixHex} hex or more); '{given}' is not. Get-KfmRolloutHistory shows the digest of each revision.", given);
        }
        // A short digest copied from a table names the one revision digest it starts.
        string digest = ImageRefs.ResolvePrefix(given, history.Select(x => ImageRefs.DigestOf(PodTemplates.ContainerImage(x.Set.Spec.Template, container, deployment))),
            $"the rollout history of deployment {_environment.Cluster.Namespace}/{deployment}", from);
        return history.FirstOrDefault(x => ImageRefs.DigestOf(PodTemplates.ContainerImage(x.Set.Spec.Template, container, deployment)) == digest).Set
            ?? throw Undetermined($"{Short(digest)} from {from} is in no revision of deployment {_environment.Cluster.Namespace}/{deployment}, so the configuration and policy bundle it ran with are unknown. " +
                "Choose a revision in the cluster's history with -ToRevision (Get-KfmRolloutHistory), or roll back through Git, where its configuration lives: Invoke-KfmRollback -Method GitOps -ToRef <digest>.");
    }

    /// <summary>
    /// GitOps when the repository is reachable and its desired ref readable (the runbook's preferred
    /// path), else the cluster; with why each method (GitOps, Cluster, Helm) was or was not chosen.
    /// </summary>
    private async Task<(string Method, string Reason, IReadOnlyList<MethodChoice> Choices)> ChooseMethodAsync(IReadOnlyCollection<string> surfaces, CancellationToken cancellationToken)
    {
        string? gitOpsProblem;
        string? gitOpsPin = null;
        if (_sources.GitOpsRef is null)
        {
            gitOpsProblem = "the environment has no gitops section";
        }
        else
        {
            try
            {
                ApiRef desired = await _sources.GitOpsRef(cancellationToken).ConfigureAwait(false);
                gitOpsPin = $"{_environment.Gitops.File} on {_environment.Gitops.Branch} pins {(desired.CurrentRef is { } d ? Short(d) : desired.CurrentImage)}";
                gitOpsProblem = null;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                gitOpsProblem = "GitOps not usable (" + (ex is KfmException k ? k.Message : ex.GetType().Name) + ")";
            }
        }

        string method, reason, gitOpsWhy, clusterWhy;
        if (surfaces.Any(s => s != SurfaceComparison.ImageSurface))
        {
            (method, reason) = ("Cluster", "configuration or policy changed: the cluster puts them back from the snapshots of the last-known-good; through Git they need the commit that changed them (Invoke-KfmRollback -Method GitOps -Revert <sha>)");
            clusterWhy = reason;
            gitOpsWhy = "configuration or policy changed, which a digest pin does not put back; revert the commit that changed them with -Method GitOps -Revert <sha>" +
                (gitOpsProblem is null ? "" : $"; besides, {gitOpsProblem}");
        }
        else if (gitOpsProblem is null)
        {
            (method, reason) = ("GitOps", $"GitOps repository readable: {gitOpsPin} (the runbook's preferred path)");
            gitOpsWhy = reason;
            clusterWhy = "the emergency path, for when GitOps is not usable; a cluster rollback must be followed by a GitOps change that re-aligns Git (Test-KfmDrift | Invoke-KfmRollback -Method GitOps)";
        }
        else
        {
            reason = gitOpsProblem.StartsWith("GitOps not usable", StringComparison.Ordinal)
                ? $"{gitOpsProblem}; the cluster's history is the emergency path"
                : $"{gitOpsProblem}, so the cluster is the only path";
            method = "Cluster";
            clusterWhy = gitOpsProblem.StartsWith("GitOps not usable", StringComparison.Ordinal)
                ? "the cluster's history is the emergency path, used because GitOps is not usable (above)"
                : "the only path without a gitops section";
            gitOpsWhy = gitOpsProblem;
        }
        string helmWhy = _environment.Helm is { } helm
            ? $"the decision tree chooses between Git and the Deployment's history; Helm release {helm.Release} has its own history (Get-KfmRolloutHistory -Source Helm): roll back through it with -Method Helm to keep helm's record in step"
            : "the environment has no helm section";
        var choices = new List<MethodChoice>
        {
            new("GitOps", method == "GitOps", gitOpsWhy),
            new("Cluster", method == "Cluster", clusterWhy),
            new("Helm", false, helmWhy),
        };
        return (method, reason, choices);
    }

    private string Summarise(string[] surfaces, PlanTemplate lastGood, string method, bool afterIncident, DateTimeOffset lastDeploy, DateTimeOffset incidentStart)
    {
        string text = $"{string.Join(" + ", surfaces)} changed since revision {lastGood.Revision}: roll back with -Method {method}.";
        return afterIncident
            ? text + $" Note: the last deploy ({lastDeploy.UtcDateTime:yyyy-MM-dd HH:mm} UTC) came after the incident began ({incidentStart.UtcDateTime:yyyy-MM-dd HH:mm} UTC), so it is not the cause; look further back (Get-KfmRolloutHistory)."
            : text;
    }

    /// <summary>sha256: and the first 12 hex characters, as people read digests.</summary>
    public static string Short(string digest) => digest.StartsWith("sha256:", StringComparison.Ordinal) && digest.Length > 19 ? digest[..19] : digest;

    private KfmException Undetermined(string what) =>
        new(RollbackPlanErrorIds.Undetermined, KfmErrorKind.Ambiguous, $"Cannot plan a rollback of {_environment.Name}: {what} Nothing is planned.", _environment.Name);
}
