using System.Text.Json.Nodes;
using KfmRollback.Lab.Api;

namespace KfmRollback.Lab.Controllers;

public sealed class WorkloadOptions
{
    /// <summary>Simulated seconds from pod creation to Ready.</summary>
    public double PodStartSeconds { get; set; } = 2;
    /// <summary>Simulated seconds a deleted pod stays Terminating (capped by its grace period).</summary>
    public double PodTerminationSeconds { get; set; } = 2;
    /// <summary>Simulated seconds between restarts of a crash-looping container.</summary>
    public double CrashRestartSeconds { get; set; } = 10;
    /// <summary>
    /// Workers syncing keys at once: kube-controller-manager's --concurrent-deployment-syncs (5), but no more than
    /// the machine's cores, as the syncs share one store lock (more workers than cores measured slower at 1,000 Deployments).
    /// </summary>
    public int Workers { get; set; } = Math.Min(5, Environment.ProcessorCount);
    /// <summary>Real time between full resyncs (every object queued again), the safety net under the events.</summary>
    public TimeSpan ResyncPeriod { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>What a key of the workload controllers' queue syncs: one object, or one namespace's HPAs or quotas, or the garbage collector.</summary>
public enum WorkKind { Deployment, ReplicaSet, Pod, Autoscalers, Quotas, Garbage }

/// <summary>A key of the work queue: kind, namespace, name (namespace-wide kinds have no name).</summary>
public readonly record struct WorkKey(WorkKind Kind, string Ns, string Name)
{
    public override string ToString() => $"{Kind}/{Ns}/{Name}";
}

/// <summary>
/// Deployment, ReplicaSet, pod-lifecycle and garbage-collection controllers, following
/// kubernetes pkg/controller/deployment (rolling update, revisions, conditions, cleanup).
/// Event-driven like kube-controller-manager: every committed store change queues the keys it concerns
/// (a Deployment; a ReplicaSet and its Deployment; a pod, its ReplicaSet and its namespace's quotas),
/// syncs that must wait for the simulated clock (pod start, termination, crash restarts, minReadySeconds,
/// progress deadlines) queue their key for that time, a failed sync is retried with a doubling delay, and
/// a slow full resync queues every key as a safety net. <see cref="Start"/> runs the workers;
/// <see cref="Tick"/> is one full synchronous pass (tests, /lab/tick, /lab/advance).
/// </summary>
public sealed class Workloads
{
    readonly Store store;
    readonly ImageCatalogue images;
    readonly WorkloadOptions opts;
    /// <summary>The keys to sync; deduplicated while queued, never handed to two workers at once.</summary>
    public WorkQueue<WorkKey> Queue { get; }
    long _synced;
    /// <summary>Syncs run so far (by workers, <see cref="RunQueued"/> and <see cref="Tick"/>).</summary>
    public long Synced => Interlocked.Read(ref _synced);
    /// <summary>Raised after each sync of a key (tests observe which keys a change made the controllers sync).</summary>
    public event Action<WorkKey>? SyncedKey;

    public Workloads(Store store, ImageCatalogue images, WorkloadOptions opts)
    {
        this.store = store; this.images = images; this.opts = opts;
        Queue = new WorkQueue<WorkKey>(() => store.Clock.Now);
        store.Written += OnWritten;
    }

    static readonly ResourceType D = Resources.Deployments, RS = Resources.ReplicaSets, P = Resources.Pods;
    const string RevisionAnn = "deployment.kubernetes.io/revision";
    const string RevisionHistoryAnn = "deployment.kubernetes.io/revision-history";
    const string DesiredAnn = "deployment.kubernetes.io/desired-replicas";
    const string MaxAnn = "deployment.kubernetes.io/max-replicas";
    const string HashLabel = "pod-template-hash";
    static readonly string[] SkipAnnotations =
    [
        "kubectl.kubernetes.io/last-applied-configuration", RevisionAnn, RevisionHistoryAnn, DesiredAnn, MaxAnn, "deprecated.deployment.rollback.to",
    ];

    DateTimeOffset Now => store.Clock.Now;
    /// <summary>Per ReplicaSet uid, the last refusal of a pod create already reported as an event.</summary>
    readonly Dictionary<string, string> _failedCreate = new();

    // ------------------------------------------------------------ informers and work queue
    static string? ControllerName(JsonObject o, string kind) =>
        (o.At("metadata.ownerReferences") as JsonArray)?.FirstOrDefault(r => r.Bool("controller") && r.Str("kind") == kind).Str("name");

    /// <summary>The informers' event handlers: the keys a committed change concerns (runs under the store lock).</summary>
    void OnWritten(string type, ResourceType rt, JsonObject o)
    {
        var ns = o.Ns();
        if (rt == D) { Queue.Add(new(WorkKind.Deployment, ns, o.Name())); Queue.Add(new(WorkKind.Autoscalers, ns, "")); }
        else if (rt == RS)
        {
            Queue.Add(new(WorkKind.ReplicaSet, ns, o.Name()));
            if (ControllerName(o, "Deployment") is { } d) Queue.Add(new(WorkKind.Deployment, ns, d));
        }
        else if (rt == P)
        {
            Queue.Add(new(WorkKind.Pod, ns, o.Name()));
            if (ControllerName(o, "ReplicaSet") is { } rs) Queue.Add(new(WorkKind.ReplicaSet, ns, rs));
            Queue.Add(new(WorkKind.Quotas, ns, ""));
        }
        else if (rt == Resources.HorizontalPodAutoscalers) Queue.Add(new(WorkKind.Autoscalers, ns, ""));
        else if (rt == Resources.ResourceQuotas) Queue.Add(new(WorkKind.Quotas, ns, ""));
        // The garbage collector: an owner deleted, or a dependent created whose owner does not exist.
        if (type == "DELETED" || (type == "ADDED" && o.At("metadata.ownerReferences") is JsonArray { Count: > 0 }
            && o.At("metadata.ownerReferences")!.AsArray().All(r => !store.UidExists(r.Str("uid") ?? ""))))
            Queue.Add(new(WorkKind.Garbage, "", ""));
    }

    /// <summary>Every key there is (a full resync).</summary>
    IEnumerable<WorkKey> AllKeys()
    {
        yield return new(WorkKind.Garbage, "", "");
        foreach (var ns in store.List(Resources.HorizontalPodAutoscalers).Select(h => h.Ns()).Distinct()) yield return new(WorkKind.Autoscalers, ns, "");
        foreach (var d in store.List(D)) yield return new(WorkKind.Deployment, d.Ns(), d.Name());
        foreach (var rs in store.List(RS)) yield return new(WorkKind.ReplicaSet, rs.Ns(), rs.Name());
        foreach (var p in store.List(P)) yield return new(WorkKind.Pod, p.Ns(), p.Name());
        foreach (var ns in store.List(Resources.ResourceQuotas).Select(q => q.Ns()).Distinct()) yield return new(WorkKind.Quotas, ns, "");
    }

    /// <summary>
    /// One full pass, synchronously: every key synced once, in the order GC, HPAs, Deployments, ReplicaSets, pods,
    /// quotas, each kind listed when its turn comes (so a ReplicaSet the Deployments' syncs created gets its pods in
    /// the same pass); a key a worker is syncing is left to it and queued again.
    /// </summary>
    public void Tick()
    {
        foreach (var key in AllKeys())
        {
            if (!Queue.TryClaim(key)) continue;
            try { Sync(key); }
            finally { Queue.Done(key); }
        }
    }

    /// <summary>Syncs queued keys (and those whose simulated time has come) on the calling thread until none is left or <paramref name="max"/> syncs ran; returns how many ran.</summary>
    public int RunQueued(int max = int.MaxValue)
    {
        var n = 0;
        Queue.PromoteDue();
        while (n < max && Queue.TryGet(out var key))
        {
            try { Sync(key); }
            finally { Queue.Done(key); }
            n++;
            if (Queue.Count == 0) Queue.PromoteDue();
        }
        return n;
    }

    /// <summary>Runs <see cref="WorkloadOptions.Workers"/> workers, the simulated-time delays and the periodic resync until <paramref name="ct"/> is cancelled.</summary>
    public Task Start(CancellationToken ct)
    {
        foreach (var key in AllKeys()) Queue.Add(key);
        var tasks = new List<Task>();
        for (var i = 0; i < Math.Max(1, opts.Workers); i++) tasks.Add(Task.Run(() => Worker(ct), CancellationToken.None));
        tasks.Add(Task.Run(() => Timers(ct), CancellationToken.None));
        return Task.WhenAll(tasks);
    }

    async Task Worker(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            while (!ct.IsCancellationRequested && Queue.TryGet(out var key))
            {
                try { Sync(key); }
                finally { Queue.Done(key); }
            }
            await Queue.WaitAsync(TimeSpan.FromMilliseconds(50), ct);
        }
    }

    async Task Timers(CancellationToken ct)
    {
        var resync = System.Diagnostics.Stopwatch.StartNew();
        while (!ct.IsCancellationRequested)
        {
            try { await Task.Delay(10, ct); } catch (OperationCanceledException) { break; }
            Queue.PromoteDue();
            if (resync.Elapsed >= opts.ResyncPeriod)
            {
                resync.Restart();
                try { foreach (var key in AllKeys()) Queue.Add(key); }
                catch (Exception e) { lock (Errors) { if (Errors.Count < 50) Errors.Add(e.ToString()); } }
            }
        }
    }

    /// <summary>
    /// Syncs one key from the object as stored now. A sync that fails is queued again after a doubling delay
    /// (an apiserver refusal such as a conflict or an exceeded quota is expected; anything else is also kept for /lab/state).
    /// </summary>
    void Sync(WorkKey key)
    {
        try
        {
            switch (key.Kind)
            {
                case WorkKind.Garbage: CollectGarbage(); break;
                case WorkKind.Autoscalers: foreach (var h in store.List(Resources.HorizontalPodAutoscalers, key.Ns)) SyncHpa(h); break;
                case WorkKind.Quotas: foreach (var q in store.List(Resources.ResourceQuotas, key.Ns)) SyncQuota(q); break;
                case WorkKind.Deployment: if (store.Get(D, key.Ns, key.Name) is { } d) SyncDeployment(d); break;
                case WorkKind.ReplicaSet: if (store.Get(RS, key.Ns, key.Name) is { } rs) SyncReplicaSet(rs); break;
                case WorkKind.Pod: if (store.Get(P, key.Ns, key.Name) is { } p) SyncPod(p); break;
            }
            Queue.Forget(key);
        }
        catch (ApiException) { Queue.AddRateLimited(key); }
        catch (Exception e)
        {
            lock (Errors) { if (Errors.Count < 50) Errors.Add(e.ToString()); }
            Queue.AddRateLimited(key);
        }
        Interlocked.Increment(ref _synced);
        SyncedKey?.Invoke(key);
    }

    /// <summary>The resource quota controller: status.hard follows spec.hard, status.used the namespace's pods.</summary>
    void SyncQuota(JsonObject q)
    {
        var status = QuotaAdmission.Status(q, store.List(P, q.Ns()));
        if (J.Same(status, q["status"])) return;
        store.Mutate(Resources.ResourceQuotas, q.Ns(), q.Name(), cur => { cur["status"] = status.DeepClone(); return true; }, statusOnly: true);
    }

    /// <summary>Errors reconciling one object must not stop the others; they are kept for /lab/state.</summary>
    public List<string> Errors { get; } = new();


    // ------------------------------------------------------------ helpers
    public static long Rev(JsonObject rs) => RevFromAnn(rs);
    static long RevFromAnn(JsonObject rs)
    {
        var a = rs.At("metadata.annotations") as JsonObject;
        var s = a?[RevisionAnn]?.GetValue<string>();
        return long.TryParse(s, out var v) ? v : 0;
    }

    static string? Ann(JsonObject o, string key) => (o.At("metadata.annotations") as JsonObject)?[key]?.GetValue<string>();
    static JsonObject Anns(JsonObject o) => o.Meta().Obj("annotations");

    public static bool IsControlledBy(JsonObject o, string uid) =>
        o.At("metadata.ownerReferences") is JsonArray refs && refs.Any(r => r.Bool("controller") && r.Str("uid") == uid);

    static JsonObject OwnerRef(JsonObject owner) => new()
    {
        ["apiVersion"] = owner.Str("apiVersion"), ["kind"] = owner.Str("kind"), ["name"] = owner.Name(), ["uid"] = owner.Uid(),
        ["controller"] = true, ["blockOwnerDeletion"] = true,
    };

    static JsonNode? WithoutHash(JsonNode? template)
    {
        var t = template?.DeepClone() as JsonObject;
        if (t?.At("metadata.labels") is JsonObject l) l.Remove(HashLabel);
        return t;
    }

    public static bool EqualIgnoreHash(JsonNode? a, JsonNode? b) => J.Same(WithoutHash(a), WithoutHash(b));

    public static string TemplateHash(JsonNode? template, long collisionCount = 0)
    {
        var h = J.Fnv32a(J.Canonical(WithoutHash(template)) + (collisionCount > 0 ? collisionCount.ToString() : ""));
        return J.SafeEncode(h.ToString());
    }

    static int ResolveIntOrPercent(JsonNode? v, long total, bool roundUp, int dflt)
    {
        if (v == null) return dflt;
        if (v is JsonValue jv && jv.TryGetValue<int>(out var i)) return i;
        var s = v.ToString();
        if (s.EndsWith('%') && int.TryParse(s[..^1], out var pct))
            return (int)(roundUp ? Math.Ceiling(total * pct / 100.0) : Math.Floor(total * pct / 100.0));
        return int.TryParse(s, out var n) ? n : dflt;
    }

    static (int surge, int unavailable) Limits(JsonObject d, long replicas)
    {
        if (d.Str("spec.strategy.type") == "Recreate") return (0, 0);
        var surge = ResolveIntOrPercent(d.At("spec.strategy.rollingUpdate.maxSurge"), replicas, true, (int)Math.Ceiling(replicas * 0.25));
        var unav = ResolveIntOrPercent(d.At("spec.strategy.rollingUpdate.maxUnavailable"), replicas, false, (int)Math.Floor(replicas * 0.25));
        if (surge == 0 && unav == 0) unav = 1;
        return (surge, unav);
    }

    static long Spec(JsonObject rs) => rs.Long("spec.replicas") ?? 0;
    static long StatusOf(JsonObject rs, string f) => rs.Long("status." + f) ?? 0;

    void Event(JsonObject involved, string type, string reason, string message, string component)
    {
        var ns = involved.Ns();
        var now = J.Time(Now);
        var ev = new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = $"{involved.Name()}.{Guid.NewGuid().ToString("N")[..16]}", ["namespace"] = ns },
            ["involvedObject"] = new JsonObject
            {
                ["kind"] = involved.Str("kind"), ["namespace"] = ns, ["name"] = involved.Name(), ["uid"] = involved.Uid(),
                ["apiVersion"] = involved.Str("apiVersion"), ["resourceVersion"] = involved.Str("metadata.resourceVersion"),
            },
            ["reason"] = reason, ["message"] = message, ["type"] = type,
            ["source"] = new JsonObject { ["component"] = component },
            ["firstTimestamp"] = now, ["lastTimestamp"] = now, ["count"] = 1,
            ["reportingComponent"] = component, ["reportingInstance"] = "",
        };
        try { store.Create(Resources.Events, ev); } catch (ApiException) { }
    }

    /// <summary>Deletes a pod gracefully (Terminating first), like the kubelet path of a real cluster.</summary>
    public void DeletePod(JsonObject pod, double? graceSeconds = null)
    {
        var grace = graceSeconds ?? Math.Min(opts.PodTerminationSeconds, pod.Long("spec.terminationGracePeriodSeconds") ?? 30);
        if (grace <= 0) store.Delete(P, pod.Ns(), pod.Name());
        else store.MarkDeleting(P, pod.Ns(), pod.Name(), grace);
    }

    // ------------------------------------------------------------ HPA stand-in
    /// <summary>
    /// The HPA owns spec.replicas of its target Deployment: it keeps it at the recommendation, which is
    /// annotation <c>lab.kfm.local/recommended-replicas</c> (default minReplicas) clamped to [min, max].
    /// A target scaled to 0 is left alone (scaling disabled), as a real HPA does.
    /// </summary>
    void SyncHpa(JsonObject h)
    {
        if (h.Str("spec.scaleTargetRef.kind") != "Deployment") return;
        var d = store.Get(D, h.Ns(), h.Str("spec.scaleTargetRef.name") ?? "");
        var min = h.Long("spec.minReplicas") ?? 1;
        var max = h.Long("spec.maxReplicas") ?? min;
        var rec = long.TryParse((h.At("metadata.annotations") as JsonObject)?["lab.kfm.local/recommended-replicas"]?.GetValue<string>(), out var r) ? r : min;
        var desired = Math.Clamp(rec, min, Math.Max(min, max));
        var current = d?.Long("spec.replicas") ?? 0;
        var active = d != null && current > 0;
        if (active && current != desired)
        {
            store.Mutate(D, d!.Ns(), d.Name(), x => { x.Obj("spec")["replicas"] = desired; return true; });
            Event(h, "Normal", "SuccessfulRescale", $"New size: {desired}; reason: recommendation", "horizontal-pod-autoscaler");
        }
        store.Mutate(Resources.HorizontalPodAutoscalers, h.Ns(), h.Name(), x =>
        {
            var st = new JsonObject
            {
                ["currentReplicas"] = d?.Long("status.replicas") ?? 0,
                ["desiredReplicas"] = active ? desired : 0,
                ["conditions"] = new JsonArray(new JsonObject
                {
                    ["type"] = "ScalingActive", ["status"] = active ? "True" : "False",
                    ["reason"] = d == null ? "FailedGetScale" : active ? "ValidMetricFound" : "ScalingDisabled",
                    ["message"] = d == null ? "the HPA controller was unable to get the target's current scale" : active ? "the HPA was able to successfully calculate a replica count" : "scaling is disabled since the replica count of the target is zero",
                }),
            };
            var old = x["status"] as JsonObject;
            if (old?["conditions"] is JsonArray oc && oc.FirstOrDefault() is JsonObject c0 && c0.Str("reason") == st.At("conditions")!.AsArray()[0].Str("reason"))
                st["conditions"]![0]!["lastTransitionTime"] = c0.Str("lastTransitionTime");
            else st["conditions"]![0]!["lastTransitionTime"] = J.Time(Now);
            if (J.Same(st, old)) return false;
            x["status"] = st;
            return true;
        }, statusOnly: true);
    }

    // ------------------------------------------------------------ garbage collector
    void CollectGarbage()
    {
        foreach (var (rt, o) in store.Orphans())
            try
            {
                if (rt == P) { if (o.At("metadata.deletionTimestamp") == null) DeletePod(o); }
                else store.Delete(rt, o.Ns(), o.Name());
            }
            catch (ApiException) { }
    }

    // ------------------------------------------------------------ deployment controller
    /// <summary>One deployment controller pass over <paramref name="d"/> as it was read (public for tests of a pass from a stale read).</summary>
    public void SyncDeployment(JsonObject d)
    {
        var ns = d.Ns(); var uid = d.Uid();
        var replicas = d.Long("spec.replicas") ?? 1;
        var paused = d.Bool("spec.paused");
        var template = d.At("spec.template") as JsonObject ?? new JsonObject();
        var all = store.List(RS, ns, rs => IsControlledBy(rs, uid));
        var newRs = all.FirstOrDefault(rs => EqualIgnoreHash(rs.At("spec.template"), template));
        var olds = all.Where(rs => !ReferenceEquals(rs, newRs)).ToList();
        var (surge, unavailable) = Limits(d, replicas);
        var maxOldRev = olds.Select(RevFromAnn).DefaultIfEmpty(0).Max();
        string? createdName = null;
        var recreate = d.Str("spec.strategy.type") == "Recreate";

        if (!paused)
        {
            if (newRs == null)
            {
                var collision = d.Long("status.collisionCount") ?? 0;
                var hash = TemplateHash(template, collision);
                var rsTemplate = (JsonObject)template.DeepClone();
                rsTemplate.Obj("metadata").Obj("labels")[HashLabel] = hash;
                var selector = (JsonObject)(d.At("spec.selector")?.DeepClone() ?? new JsonObject());
                selector.Obj("matchLabels")[HashLabel] = hash;
                var labels = template.At("metadata.labels").StrMap();
                labels[HashLabel] = hash;
                long initial;
                var current = all.Sum(Spec);
                if (recreate) initial = olds.Any(o => Spec(o) > 0 || StatusOf(o, "replicas") > 0) ? 0 : replicas;
                else initial = Math.Max(0, Math.Min(replicas + surge - current, replicas));
                var annotations = new JsonObject();
                foreach (var (k, v) in d.At("metadata.annotations").StrMap())
                    if (!SkipAnnotations.Contains(k)) annotations[k] = v;
                annotations[RevisionAnn] = (maxOldRev + 1).ToString();
                annotations[DesiredAnn] = replicas.ToString();
                annotations[MaxAnn] = (replicas + surge).ToString();
                var rs = new JsonObject
                {
                    ["apiVersion"] = "apps/v1", ["kind"] = "ReplicaSet",
                    ["metadata"] = new JsonObject
                    {
                        ["name"] = $"{d.Name()}-{hash}", ["namespace"] = ns, ["labels"] = labels.ToJson(), ["annotations"] = annotations,
                        ["ownerReferences"] = new JsonArray(OwnerRef(d)),
                    },
                    ["spec"] = new JsonObject
                    {
                        ["replicas"] = initial, ["minReadySeconds"] = d.Long("spec.minReadySeconds") ?? 0, ["selector"] = selector, ["template"] = rsTemplate,
                    },
                    ["status"] = new JsonObject { ["replicas"] = 0 },
                };
                try
                {
                    newRs = store.Create(RS, rs);
                    createdName = newRs.Name();
                    if (initial > 0) Event(d, "Normal", "ScalingReplicaSet", $"Scaled up replica set {newRs.Name()} from 0 to {initial}", "deployment-controller");
                }
                catch (ApiException e) when (e.Code == 409)
                {
                    // Hash collision with a ReplicaSet we do not own or whose template differs: bump collisionCount.
                    store.Mutate(D, ns, d.Name(), x => { x.Obj("status")["collisionCount"] = collision + 1; return true; }, statusOnly: true);
                    return;
                }
            }
            else
            {
                // Existing template (e.g. after an undo): raise its revision and copy annotations.
                var newRevision = maxOldRev + 1;
                var oldRevision = RevFromAnn(newRs);
                var copy = newRs.Clone();
                var anns = Anns(copy);
                foreach (var (k, v) in d.At("metadata.annotations").StrMap())
                    if (!SkipAnnotations.Contains(k)) anns[k] = v;
                if (oldRevision < newRevision)
                {
                    anns[RevisionAnn] = newRevision.ToString();
                    if (oldRevision > 0)
                    {
                        var hist = Ann(newRs, RevisionHistoryAnn);
                        anns[RevisionHistoryAnn] = string.IsNullOrEmpty(hist) ? oldRevision.ToString() : $"{hist},{oldRevision}";
                    }
                }
                anns[DesiredAnn] = replicas.ToString();
                anns[MaxAnn] = (replicas + surge).ToString();
                copy.Obj("spec")["minReadySeconds"] = d.Long("spec.minReadySeconds") ?? 0;
                if (!J.Same(copy, newRs)) newRs = store.Update(RS, copy);
            }
        }

        // Deployment revision annotation follows its new ReplicaSet.
        if (newRs != null)
        {
            var rev = Ann(newRs, RevisionAnn);
            if (rev != null && Ann(d, RevisionAnn) != rev)
            {
                // Only on the spec this pass read: a newer template has its own new ReplicaSet and revision.
                var synced = d.Long("metadata.generation") ?? 1;
                var updated = store.Mutate(D, ns, d.Name(), x => { if ((x.Long("metadata.generation") ?? 1) != synced) return false; Anns(x)[RevisionAnn] = rev; return true; });
                if (updated != null && (updated.Long("metadata.generation") ?? 1) == synced) d = updated;
            }
        }

        // Scaling.
        if (paused)
        {
            var active = all.Where(r => Spec(r) > 0).ToList();
            if (active.Count == 1 && Spec(active[0]) != replicas) Scale(d, active[0], replicas, replicas + surge);
            else if (active.Count == 0 && newRs != null && Spec(newRs) != replicas) Scale(d, newRs, replicas, replicas + surge);
        }
        else if (newRs != null)
        {
            if (recreate)
            {
                if (olds.Any(o => Spec(o) > 0)) { foreach (var o in olds.Where(o => Spec(o) > 0)) Scale(d, o, 0, replicas); }
                else if (olds.All(o => StatusOf(o, "replicas") == 0) && Spec(newRs) != replicas) Scale(d, newRs, replicas, replicas);
            }
            else if (!ReconcileNew(d, newRs, olds, replicas, surge)) ReconcileOld(d, newRs, olds, replicas, surge, unavailable);
        }

        // Re-read what we changed, then status.
        all = store.List(RS, ns, rs => IsControlledBy(rs, uid));
        newRs = newRs == null ? null : all.FirstOrDefault(r => r.Name() == newRs.Name());
        olds = all.Where(rs => newRs == null || rs.Name() != newRs.Name()).ToList();
        UpdateStatus(d, newRs, all, replicas, unavailable, createdName, paused);

        // History cleanup, only once the rollout is complete.
        var cur = store.Get(D, ns, d.Name());
        // A rollout that has not progressed is checked again when its progressDeadlineSeconds runs out.
        if (cur != null && !paused && cur.Long("spec.progressDeadlineSeconds") is > 0 and < int.MaxValue and var deadline
            && (cur.At("status.conditions") as JsonArray)?.FirstOrDefault(c => c.Str("type") == "Progressing") is JsonObject pc
            && pc.Str("reason") is not ("NewReplicaSetAvailable" or "ProgressDeadlineExceeded" or "DeploymentPaused")
            && J.ParseTime(pc.Str("lastUpdateTime")) is { } last)
            Queue.AddAt(new(WorkKind.Deployment, ns, d.Name()), last.AddSeconds(deadline).AddMilliseconds(1));
        if (cur != null && !paused && Complete(cur))
        {
            var limit = cur.Long("spec.revisionHistoryLimit") ?? 10;
            var dead = olds.Where(o => Spec(o) == 0 && StatusOf(o, "replicas") == 0 && o.At("metadata.deletionTimestamp") == null)
                .OrderBy(RevFromAnn).ThenBy(o => o.Str("metadata.creationTimestamp")).ToList();
            for (int i = 0; i < dead.Count - limit; i++)
                try { store.Delete(RS, ns, dead[i].Name()); } catch (ApiException) { }
        }
    }

    void Scale(JsonObject d, JsonObject rs, long to, long max)
    {
        var from = Spec(rs);
        var desired = d.Long("spec.replicas") ?? 1;
        var updated = store.Mutate(RS, rs.Ns(), rs.Name(), x =>
        {
            x.Obj("spec")["replicas"] = to;
            var a = Anns(x);
            a[DesiredAnn] = desired.ToString();
            a[MaxAnn] = max.ToString();
            return true;
        });
        if (updated != null)
        {
            rs.Obj("spec")["replicas"] = to;
            if (from != to)
                Event(d, "Normal", "ScalingReplicaSet", $"Scaled {(to > from ? "up" : "down")} replica set {rs.Name()} from {from} to {to}", "deployment-controller");
        }
    }

    bool ReconcileNew(JsonObject d, JsonObject newRs, List<JsonObject> olds, long replicas, int surge)
    {
        var cur = Spec(newRs);
        if (cur == replicas) return false;
        if (cur > replicas) { Scale(d, newRs, replicas, replicas + surge); return true; }
        var total = cur + olds.Sum(Spec);
        var maxTotal = replicas + surge;
        if (total >= maxTotal) return false;
        var up = Math.Min(maxTotal - total, replicas - cur);
        if (up <= 0) return false;
        Scale(d, newRs, cur + up, replicas + surge);
        return true;
    }

    void ReconcileOld(JsonObject d, JsonObject newRs, List<JsonObject> olds, long replicas, int surge, int maxUnavailable)
    {
        var oldPods = olds.Sum(Spec);
        if (oldPods == 0) return;
        var allPods = Spec(newRs) + oldPods;
        var minAvailable = replicas - maxUnavailable;
        var newUnavailable = Spec(newRs) - StatusOf(newRs, "availableReplicas");
        var maxScaledDown = allPods - minAvailable - newUnavailable;
        if (maxScaledDown <= 0) return;

        // 1. Old replicas that are not available can go first.
        long cleaned = 0;
        foreach (var o in olds.OrderBy(o => o.Str("metadata.creationTimestamp")))
        {
            if (cleaned >= maxScaledDown) break;
            var spec = Spec(o);
            var avail = StatusOf(o, "availableReplicas");
            if (spec == 0 || spec <= avail) continue;
            var n = Math.Min(maxScaledDown - cleaned, spec - avail);
            Scale(d, o, spec - n, replicas + surge);
            cleaned += n;
        }
        // 2. Then available old replicas, keeping minAvailable.
        var available = StatusOf(newRs, "availableReplicas") + olds.Sum(o => Math.Min(StatusOf(o, "availableReplicas"), Spec(o)));
        if (available <= minAvailable) return;
        var budget = Math.Min(available - minAvailable, maxScaledDown - cleaned);
        foreach (var o in olds.OrderBy(o => o.Str("metadata.creationTimestamp")))
        {
            if (budget <= 0) break;
            var spec = Spec(o);
            if (spec == 0) continue;
            var n = Math.Min(spec, budget);
            Scale(d, o, spec - n, replicas + surge);
            budget -= n;
        }
    }

    static bool Complete(JsonObject d)
    {
        var r = d.Long("spec.replicas") ?? 1;
        return (d.Long("status.updatedReplicas") ?? 0) == r && (d.Long("status.replicas") ?? 0) == r
            && (d.Long("status.availableReplicas") ?? 0) == r && (d.Long("status.observedGeneration") ?? 0) >= (d.Long("metadata.generation") ?? 0);
    }

    void UpdateStatus(JsonObject d, JsonObject? newRs, List<JsonObject> all, long replicas, int maxUnavailable, string? createdName, bool paused)
    {
        store.Mutate(D, d.Ns(), d.Name(), cur =>
        {
            // The status of the spec this pass synced, as the deployment controller's UpdateStatus with the
            // object's resourceVersion: a new spec since the read (a patch mid-pass) conflicts, and the next
            // pass syncs it. Never observedGeneration = the new generation with the old template's counts.
            if ((cur.Long("metadata.generation") ?? 1) != (d.Long("metadata.generation") ?? 1)) return false;
            var old = cur["status"] as JsonObject ?? new JsonObject();
            var st = (JsonObject)old.DeepClone();
            var total = all.Sum(r => StatusOf(r, "replicas"));
            var updated = newRs == null ? 0 : StatusOf(newRs, "replicas");
            var ready = all.Sum(r => StatusOf(r, "readyReplicas"));
            var available = all.Sum(r => StatusOf(r, "availableReplicas"));
            var specTotal = all.Sum(Spec);
            st["observedGeneration"] = cur.Long("metadata.generation") ?? 1;
            st["replicas"] = total;
            st["updatedReplicas"] = updated;
            st["readyReplicas"] = ready;
            st["availableReplicas"] = available;
            var unav = Math.Max(0, specTotal - available);
            if (unav > 0) st["unavailableReplicas"] = unav; else st.Remove("unavailableReplicas");
            foreach (var f in new[] { "replicas", "updatedReplicas", "readyReplicas", "availableReplicas" })
                if ((st.Long(f) ?? 0) == 0) st.Remove(f);

            var conds = st["conditions"] as JsonArray ?? new JsonArray();
            JsonObject? Cond(string type) => conds.OfType<JsonObject>().FirstOrDefault(c => c.Str("type") == type);
            var now = J.Time(Now);
            void Set(string type, string status, string reason, string message, bool touchUpdate = false)
            {
                var c = Cond(type);
                if (c != null && c.Str("status") == status && c.Str("reason") == reason)
                {
                    if (touchUpdate) { c["lastUpdateTime"] = now; c["message"] = message; }
                    return;
                }
                var transition = c != null && c.Str("status") == status ? c.Str("lastTransitionTime") : now;
                if (c != null) conds.Remove(c);
                conds.Add(new JsonObject
                {
                    ["type"] = type, ["status"] = status, ["lastUpdateTime"] = now, ["lastTransitionTime"] = transition,
                    ["reason"] = reason, ["message"] = message,
                });
            }

            // Available.
            if (available >= replicas - maxUnavailable) Set("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.");
            else Set("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.");

            // Progressing.
            var pc = Cond("Progressing");
            var rsName = newRs?.Name() ?? "";
            var gen = cur.Long("metadata.generation") ?? 1;
            var complete = updated == replicas && total == replicas && available == replicas;
            if (paused)
            {
                if (pc?.Str("reason") != "DeploymentPaused") Set("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused");
            }
            else if (pc?.Str("reason") == "DeploymentPaused")
                Set("Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed");
            else if (createdName != null)
                Set("Progressing", "True", "NewReplicaSetCreated", $"Created new replica set \"{createdName}\"", true);
            else if (complete)
            {
                if (newRs != null) Set("Progressing", "True", "NewReplicaSetAvailable", $"ReplicaSet \"{rsName}\" has successfully progressed.");
            }
            else if (pc == null && newRs != null)
                Set("Progressing", "True", "FoundNewReplicaSet", $"Found new replica set \"{rsName}\"");
            else if (newRs != null && Progressed(old, st))
                Set("Progressing", "True", "ReplicaSetUpdated", $"ReplicaSet \"{rsName}\" is progressing.", true);
            else if (newRs != null && pc != null && pc.Str("reason") is not ("NewReplicaSetAvailable" or "ProgressDeadlineExceeded"))
            {
                var deadline = cur.Long("spec.progressDeadlineSeconds");
                var last = J.ParseTime(pc.Str("lastUpdateTime"));
                if (deadline is > 0 && deadline < int.MaxValue && last != null && last.Value.AddSeconds(deadline.Value) < Now)
                    Set("Progressing", "False", "ProgressDeadlineExceeded", $"ReplicaSet \"{rsName}\" has timed out progressing.");
            }
            // Keep Available first, Progressing second, like a real cluster.
            var ordered = conds.OfType<JsonObject>().OrderBy(c => c.Str("type") == "Available" ? 0 : c.Str("type") == "Progressing" ? 1 : 2).Select(c => c.DeepClone()).ToArray();
            st["conditions"] = new JsonArray(ordered);
            if (J.Same(st, old)) return false;
            cur["status"] = st;
            return true;
        }, statusOnly: true);
    }

    static bool Progressed(JsonObject old, JsonObject now) =>
        (now.Long("updatedReplicas") ?? 0) > (old.Long("updatedReplicas") ?? 0)
        || (now.Long("readyReplicas") ?? 0) > (old.Long("readyReplicas") ?? 0)
        || (now.Long("availableReplicas") ?? 0) > (old.Long("availableReplicas") ?? 0)
        || ((now.Long("replicas") ?? 0) - (now.Long("updatedReplicas") ?? 0)) < ((old.Long("replicas") ?? 0) - (old.Long("updatedReplicas") ?? 0));

    // ------------------------------------------------------------ replicaset controller
    void SyncReplicaSet(JsonObject rs)
    {
        var ns = rs.Ns(); var uid = rs.Uid();
        var pods = store.List(P, ns, p => IsControlledBy(p, uid) && p.At("metadata.deletionTimestamp") == null);
        var want = Spec(rs);
        ApiException? refused = null;
        if (pods.Count < want)
        {
            var template = rs.At("spec.template") as JsonObject ?? new JsonObject();
            var created = 0;
            for (var i = pods.Count; i < want; i++)
            {
                var pod = new JsonObject
                {
                    ["apiVersion"] = "v1", ["kind"] = "Pod",
                    ["metadata"] = new JsonObject
                    {
                        ["name"] = $"{rs.Name()}-{J.RandomSuffix(5)}", ["generateName"] = rs.Name() + "-", ["namespace"] = ns,
                        ["labels"] = template.At("metadata.labels")?.DeepClone() ?? new JsonObject(),
                        ["ownerReferences"] = new JsonArray(OwnerRef(rs)),
                    },
                    ["spec"] = template["spec"]?.DeepClone() ?? new JsonObject(),
                    ["status"] = new JsonObject { ["phase"] = "Pending", ["qosClass"] = "BestEffort" },
                };
                if (template.At("metadata.annotations") is JsonObject pa) pod.Meta()["annotations"] = pa.DeepClone();
                pod.Obj("spec")["nodeName"] = "lab-node-1";
                try { pods.Add(store.Create(P, pod)); created++; lock (_failedCreate) _failedCreate.Remove(uid); }
                catch (ApiException e)
                {
                    // As the replicaset controller: "Error creating: <the apiserver's refusal>" (a quota, a webhook), once per distinct refusal.
                    bool report;
                    lock (_failedCreate) { report = _failedCreate.GetValueOrDefault(uid) != e.Message; if (report) _failedCreate[uid] = e.Message; }
                    if (report) Event(rs, "Warning", "FailedCreate", $"Error creating: {e.Message}", "replicaset-controller");
                    refused = e;
                    break;
                }
            }
            if (created > 0) Event(rs, "Normal", "SuccessfulCreate", $"Created pod(s) for {rs.Name()}", "replicaset-controller");
        }
        else if (pods.Count > want)
        {
            var victims = pods.OrderBy(p => PodReady(p) ? 1 : 0).ThenByDescending(p => p.Str("metadata.creationTimestamp")).Take(pods.Count - (int)want).ToList();
            foreach (var v in victims) { try { DeletePod(v); pods.Remove(v); } catch (ApiException) { } }
            Event(rs, "Normal", "SuccessfulDelete", $"Deleted {victims.Count} pod(s) of {rs.Name()}", "replicaset-controller");
        }
        var ready = pods.Count(PodReady);
        var minReady = rs.Long("spec.minReadySeconds") ?? 0;
        var available = pods.Count(p => PodReady(p) && (minReady == 0 || ReadySince(p) is { } t && t.AddSeconds(minReady) <= Now));
        // A ready pod becomes available minReadySeconds after it turned ready: sync again then.
        if (minReady > 0 && pods.Where(PodReady).Select(ReadySince).Where(t => t != null && t.Value.AddSeconds(minReady) > Now).Min() is { } first)
            Queue.AddAt(new(WorkKind.ReplicaSet, ns, rs.Name()), first.AddSeconds(minReady));
        store.Mutate(RS, ns, rs.Name(), cur =>
        {
            var st = new JsonObject
            {
                ["replicas"] = pods.Count, ["fullyLabeledReplicas"] = pods.Count, ["readyReplicas"] = ready, ["availableReplicas"] = available,
                ["observedGeneration"] = cur.Long("metadata.generation") ?? 1,
            };
            foreach (var f in new[] { "fullyLabeledReplicas", "readyReplicas", "availableReplicas" }) if ((st.Long(f) ?? 0) == 0) st.Remove(f);
            if (J.Same(st, cur["status"])) return false;
            cur["status"] = st;
            return true;
        }, statusOnly: true);
        // A refused pod create is the sync's error, as the replicaset controller's: the key is retried with a doubling delay.
        if (refused != null) throw refused;
    }

    static DateTimeOffset? ReadySince(JsonObject p) =>
        J.ParseTime((p.At("status.conditions") as JsonArray)?.FirstOrDefault(c => c.Str("type") == "Ready").Str("lastTransitionTime"));

    public static bool PodReady(JsonObject p) =>
        (p.At("status.conditions") as JsonArray)?.Any(c => c.Str("type") == "Ready" && c.Str("status") == "True") == true;

    // ------------------------------------------------------------ kubelet stand-in
    void SyncPod(JsonObject p)
    {
        var key = new WorkKey(WorkKind.Pod, p.Ns(), p.Name());
        if (J.ParseTime(p.Str("metadata.deletionTimestamp")) is { } gone)
        {
            if (Now >= gone) store.Delete(P, p.Ns(), p.Name());
            else Queue.AddAt(key, gone);
            return;   // a terminating pod keeps its last status
        }
        var created = J.ParseTime(p.Str("metadata.creationTimestamp")) ?? Now;
        var startedAt = created.AddSeconds(opts.PodStartSeconds);
        var now = Now;
        var started = now >= startedAt;
        if (!started) Queue.AddAt(key, startedAt);
        var containers = (p.At("spec.containers") as JsonArray)?.OfType<JsonObject>().ToList() ?? [];
        var statuses = new JsonArray();
        var allReady = started && containers.Count > 0;
        var anyRunning = false;
        foreach (var c in containers)
        {
            var image = c.Str("image") ?? "";
            var (imageId, _, failure) = images.Resolve(image);
            var cs = new JsonObject { ["name"] = c.Str("name"), ["image"] = image, ["imageID"] = "", ["ready"] = false, ["restartCount"] = 0, ["started"] = false };
            if (!started)
                cs["state"] = new JsonObject { ["waiting"] = new JsonObject { ["reason"] = "ContainerCreating" } };
            else if (failure == PodFailure.ImagePullBackOff)
            {
                cs["state"] = new JsonObject
                {
                    ["waiting"] = new JsonObject
                    {
                        ["reason"] = "ImagePullBackOff",
                        ["message"] = $"Back-off pulling image \"{image}\": ErrImagePull: rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": not found",
                    }
                };
                allReady = false;
            }
            else if (failure == PodFailure.CrashLoopBackOff)
            {
                var restarts = (long)Math.Floor((now - startedAt).TotalSeconds / Math.Max(0.1, opts.CrashRestartSeconds)) + 1;
                var lastStart = startedAt.AddSeconds((restarts - 1) * opts.CrashRestartSeconds);
                Queue.AddAt(key, startedAt.AddSeconds(restarts * Math.Max(0.1, opts.CrashRestartSeconds)));
                cs["imageID"] = imageId;
                cs["restartCount"] = restarts;
                cs["state"] = new JsonObject
                {
                    ["waiting"] = new JsonObject
                    {
                        ["reason"] = "CrashLoopBackOff",
                        ["message"] = $"back-off 10s restarting failed container={c.Str("name")} pod={p.Name()}_{p.Ns()}({p.Uid()})",
                    }
                };
                cs["lastState"] = new JsonObject
                {
                    ["terminated"] = new JsonObject
                    {
                        ["exitCode"] = 1, ["reason"] = "Error", ["startedAt"] = J.Time(lastStart), ["finishedAt"] = J.Time(lastStart.AddSeconds(1)),
                        ["containerID"] = "containerd://" + J.Fnv32a(p.Uid() + restarts).ToString("x8"),
                    }
                };
                allReady = false;
                anyRunning = true;
            }
            else
            {
                cs["imageID"] = imageId;
                cs["ready"] = true;
                cs["started"] = true;
                cs["containerID"] = "containerd://" + J.Fnv32a(p.Uid() + c.Str("name")).ToString("x8");
                cs["state"] = new JsonObject { ["running"] = new JsonObject { ["startedAt"] = J.Time(startedAt) } };
                anyRunning = true;
            }
            statuses.Add(cs);
        }
        var phase = anyRunning ? "Running" : "Pending";
        var t0 = J.Time(created);
        var t1 = J.Time(startedAt);
        JsonObject Cond(string type, bool ok, string t) => new() { ["type"] = type, ["status"] = ok ? "True" : "False", ["lastProbeTime"] = null, ["lastTransitionTime"] = t };
        var ip = J.Fnv32a(p.Uid());
        var status = new JsonObject
        {
            ["phase"] = phase,
            ["conditions"] = new JsonArray(Cond("Initialized", true, t0), Cond("Ready", allReady, started ? t1 : t0), Cond("ContainersReady", allReady, started ? t1 : t0), Cond("PodScheduled", true, t0)),
            ["hostIP"] = "10.0.0.10",
            ["podIP"] = started ? $"10.244.{(ip >> 8) % 250}.{ip % 250 + 2}" : null,
            ["startTime"] = t0,
            ["containerStatuses"] = statuses,
            ["qosClass"] = "BestEffort",
        };
        if (status["podIP"] == null) status.Remove("podIP");
        if (J.Same(status, p["status"])) return;
        store.Mutate(P, p.Ns(), p.Name(), cur => { cur["status"] = status.DeepClone(); return true; }, statusOnly: true);
    }
}
