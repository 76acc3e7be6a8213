using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Lab.Api;

namespace KfmRollback.Lab.Controllers;

/// <summary>
/// Argo CD Application and Flux Kustomization/HelmRelease (and GitRepository) stand-ins. "Git" is a
/// real repository when the object points at a lab source (<see cref="GitSource.IsLabSource"/>: Argo
/// <c>spec.source.repoURL</c>/<c>targetRevision</c>/<c>path</c>; Flux <c>spec.sourceRef</c> to a
/// GitRepository's <c>spec.url</c>/<c>spec.ref.branch</c> and <c>spec.path</c>): the files there decide
/// the image (<see cref="GitDesired"/>) and revisions are commit ids. Otherwise it is the desired image
/// recorded in the GitOps object, as before. Drift of the target Deployment's container image is
/// reverted after <c>selfHealSeconds</c> simulated seconds unless auto-sync is off / the object is
/// suspended. An Argo <c>operation: {sync: {revision}}</c> runs one sync even with auto-sync off.
/// Lab conventions: annotation <c>lab.kfm.local/deployment</c> names the target Deployment (default: the
/// object's name), <c>lab.kfm.local/container</c> the container (default: the first one),
/// <c>lab.kfm.local/change-cause</c> the change-cause Git carries, <c>lab.kfm.local/image-name</c> the
/// kustomize images[].name to follow (default: the container image's repository).
/// </summary>
public sealed class GitOps(Store store, double selfHealSeconds, GitSource? git = null)
{
    public const string ImageNameAnn = "lab.kfm.local/image-name";
    public const string DeploymentAnn = "lab.kfm.local/deployment";
    public const string ContainerAnn = "lab.kfm.local/container";
    public const string ChangeCauseAnn = "lab.kfm.local/change-cause";
    public const string DesiredImageAnn = "lab.kfm.local/desired-image";
    readonly Dictionary<string, DateTimeOffset> _driftSince = new();
    readonly Dictionary<string, JsonNode?> _appSetPolicy = new();

    DateTimeOffset Now => store.Clock.Now;

    public void Tick()
    {
        if (git != null)
            foreach (var gr in store.List(Resources.GitRepositories)) { try { SourceController(gr); } catch (ApiException) { } }
        foreach (var app in store.List(Resources.Applications)) { try { Argo(app); } catch (ApiException) { } }
        foreach (var ks in store.List(Resources.Kustomizations)) { try { Flux(Resources.Kustomizations, ks, () => FluxFromGit(ks, ks.Str("spec.sourceRef.kind"), ks.Str("spec.sourceRef.name"), ks.Str("spec.sourceRef.namespace"), ks.Str("spec.path"), []) ?? (KustomizeImage(ks.At("spec.images")), null, null)); } catch (ApiException) { } }
        foreach (var hr in store.List(Resources.HelmReleases)) { try { Flux(Resources.HelmReleases, hr, () => HelmRelease(hr)); } catch (ApiException) { } }
    }

    /// <summary>Flux source-controller: the branch tip of a GitRepository as <c>status.artifact.revision</c> (<c>branch@sha1:…</c>).</summary>
    void SourceController(JsonObject gr)
    {
        var url = gr.Str("spec.url");
        if (!GitSource.IsLabSource(url) || gr.Bool("spec.suspend")) return;
        var branch = gr.Str("spec.ref.branch") ?? "main";
        string? sha = null, error = null;
        try { sha = git!.Snapshot(url!, branch, "").Sha; } catch (GitSourceException e) { error = e.Message; }
        store.Mutate(Resources.GitRepositories, gr.Ns(), gr.Name(), o =>
        {
            var old = o["status"] as JsonObject ?? new JsonObject();
            var st = (JsonObject)old.DeepClone();
            var rev = sha == null ? null : $"{branch}@sha1:{sha}";
            if (rev != null) st["artifact"] = new JsonObject { ["revision"] = rev, ["lastUpdateTime"] = old.Str("artifact.revision") == rev ? old.Str("artifact.lastUpdateTime") : J.Time(Now) };
            st["conditions"] = new JsonArray(ReadyCondition(old, error == null, error == null ? "Succeeded" : "GitOperationFailed",
                error == null ? $"stored artifact for revision '{rev}'" : error, o.Long("metadata.generation") ?? 1));
            st["observedGeneration"] = o.Long("metadata.generation") ?? 1;
            if (J.Same(st, old)) return false;
            o["status"] = st;
            return true;
        }, statusOnly: true);
    }

    JsonObject ReadyCondition(JsonObject oldStatus, bool ok, string reason, string message, long gen) => new()
    {
        ["type"] = "Ready", ["status"] = ok ? "True" : "False", ["reason"] = reason, ["message"] = message, ["observedGeneration"] = gen,
        ["lastTransitionTime"] = (oldStatus["conditions"] as JsonArray)?.FirstOrDefault()?.Str("status") == (ok ? "True" : "False")
            ? (oldStatus["conditions"] as JsonArray)!.First().Str("lastTransitionTime") : J.Time(Now),
    };

    /// <summary>
    /// A Flux object whose source is a lab GitRepository: the image its path deploys at the source's
    /// artifact revision. Null when the object has no lab Git source (the spec decides then).
    /// </summary>
    (string? Desired, string? Revision, string? Error)? FluxFromGit(JsonObject obj, string? kind, string? name, string? ns, string? path, IReadOnlyList<string> valueFiles)
    {
        if (git == null || kind != "GitRepository" || name == null) return null;
        var gr = store.Get(Resources.GitRepositories, ns ?? obj.Ns(), name);
        if (gr == null || !GitSource.IsLabSource(gr.Str("spec.url"))) return null;
        var rev = gr.Str("status.artifact.revision");
        if (rev == null) return (null, null, $"GitRepository {gr.Ns()}/{name} has no artifact yet");
        var sha = rev[(rev.IndexOf("sha1:", StringComparison.Ordinal) + 5)..];
        try
        {
            var target = obj.Str("spec.targetNamespace") ?? obj.Ns();
            var (_, live) = Target(obj, target);
            var snap = git.Snapshot(gr.Str("spec.url")!, sha, path ?? "");
            return (GitDesired.Image(snap, Ann(obj, DeploymentAnn) ?? obj.Name(), Ann(obj, ContainerAnn), Ann(obj, ImageNameAnn), live, valueFiles), rev, null);
        }
        catch (GitSourceException e) { return (null, rev, e.Message); }
    }

    /// <summary>A HelmRelease: inline <c>spec.values.image</c> wins; else a chart from a lab GitRepository decides through its values.yaml.</summary>
    (string? Desired, string? Revision, string? Error) HelmRelease(JsonObject hr)
    {
        var inline = HelmImage(hr.At("spec.values.image"));
        var chart = hr.At("spec.chart.spec") as JsonObject;
        if (inline == null && FluxFromGit(hr, chart.Str("sourceRef.kind"), chart.Str("sourceRef.name"), chart.Str("sourceRef.namespace"), chart.Str("chart"), ["values.yaml"]) is { } fromGit)
            return fromGit;
        return (inline, null, null);
    }

    /// <summary>An Argo Application's lab Git source at <paramref name="revision"/>: the image and the commit id.</summary>
    (string? Image, string Sha) ArgoFromGit(JsonObject app, string revision, string? live)
    {
        var snap = git!.Snapshot(app.Str("spec.source.repoURL")!, revision, app.Str("spec.source.path") ?? "");
        var valueFiles = (app.At("spec.source.helm.valueFiles") as JsonArray)?.Select(v => v?.GetValue<string>() ?? "").ToList() ?? [];
        var ns = app.Str("spec.destination.namespace") ?? app.Ns();
        return (GitDesired.Image(snap, Ann(app, DeploymentAnn) ?? app.Name(), Ann(app, ContainerAnn), Ann(app, ImageNameAnn), live, valueFiles), snap.Sha);
    }

    static string? Ann(JsonObject o, string k) => (o.At("metadata.annotations") as JsonObject)?[k]?.GetValue<string>();

    /// <summary>Argo CD kustomize.images entries: "repo@sha256:…", "repo:tag" or "name=repo@sha256:…".</summary>
    public static string? ArgoImage(JsonNode? images)
    {
        var first = (images as JsonArray)?.FirstOrDefault()?.GetValue<string>();
        if (first == null) return null;
        var eq = first.IndexOf('=');
        return eq >= 0 ? first[(eq + 1)..] : first;
    }

    /// <summary>Flux/kustomize images entries: name, newName, newTag, digest (a digest drops the tag).</summary>
    public static string? KustomizeImage(JsonNode? images)
    {
        var e = (images as JsonArray)?.FirstOrDefault();
        if (e == null) return null;
        var repo = e.Str("newName") ?? e.Str("name");
        if (e.Str("digest") is { } d) return $"{repo}@{d}";
        if (e.Str("newTag") is { } t) return $"{repo}:{t}";
        return repo;
    }

    /// <summary>Helm values image.repository / image.tag / image.digest (a digest replaces the tag).</summary>
    public static string? HelmImage(JsonNode? image)
    {
        var repo = image.Str("repository");
        if (repo == null) return null;
        if (image.Str("digest") is { Length: > 0 } d) return $"{repo}@{d}";
        return $"{repo}:{image.Str("tag") ?? "latest"}";
    }

    static string FakeSha(string s) => Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(s)));

    (JsonObject? deploy, string? image) Target(JsonObject owner, string ns)
    {
        var name = Ann(owner, DeploymentAnn) ?? owner.Name();
        var d = store.Get(Resources.Deployments, ns, name);
        if (d == null) return (null, null);
        var c = ContainerOf(d, Ann(owner, ContainerAnn));
        return (d, c?.Str("image"));
    }

    static JsonObject? ContainerOf(JsonObject d, string? name) =>
        (d.At("spec.template.spec.containers") as JsonArray)?.OfType<JsonObject>().FirstOrDefault(c => name == null || c.Str("name") == name);

    /// <summary>Applies Git's image (and change-cause, if Git has one) to the Deployment.</summary>
    void Apply(JsonObject owner, JsonObject deploy, string image)
    {
        var container = Ann(owner, ContainerAnn);
        var cause = Ann(owner, ChangeCauseAnn);
        store.Mutate(Resources.Deployments, deploy.Ns(), deploy.Name(), d =>
        {
            var c = ContainerOf(d, container);
            if (c == null) return false;
            c["image"] = image;
            if (cause != null) d.Meta().Obj("annotations")["kubernetes.io/change-cause"] = cause;
            return true;
        });
    }

    /// <summary>True when drift has lasted selfHealSeconds (tracks when it started).</summary>
    bool DriftDue(string uid, bool drift)
    {
        if (!drift) { _driftSince.Remove(uid); return false; }
        if (!_driftSince.TryGetValue(uid, out var since)) { _driftSince[uid] = Now; return false; }
        if (Now - since < TimeSpan.FromSeconds(selfHealSeconds)) return false;
        _driftSince.Remove(uid);
        return true;
    }

    static string Health(JsonObject? d)
    {
        if (d == null) return "Missing";
        if (d.Bool("spec.paused")) return "Suspended";
        var conds = d.At("status.conditions") as JsonArray;
        if (conds?.Any(c => c.Str("type") == "Progressing" && c.Str("reason") == "ProgressDeadlineExceeded") == true) return "Degraded";
        var r = d.Long("spec.replicas") ?? 1;
        if ((d.Long("status.observedGeneration") ?? 0) < (d.Long("metadata.generation") ?? 0)) return "Progressing";
        if ((d.Long("status.updatedReplicas") ?? 0) < r || (d.Long("status.replicas") ?? 0) > (d.Long("status.updatedReplicas") ?? 0)
            || (d.Long("status.availableReplicas") ?? 0) < (d.Long("status.updatedReplicas") ?? 0)) return "Progressing";
        return "Healthy";
    }

    void Argo(JsonObject app)
    {
        var uid = app.Uid();
        // ApplicationSet-owned Applications get their syncPolicy put back.
        var ownedBySet = (app.At("metadata.ownerReferences") as JsonArray)?.Any(r => r.Str("kind") == "ApplicationSet") == true;
        if (ownedBySet)
        {
            if (!_appSetPolicy.TryGetValue(uid, out var policy)) _appSetPolicy[uid] = app.At("spec.syncPolicy")?.DeepClone();
            else if (!J.Same(policy, app.At("spec.syncPolicy")))
            {
                var fixedApp = store.Mutate(Resources.Applications, app.Ns(), app.Name(), a => { a.Obj("spec")["syncPolicy"] = policy?.DeepClone(); return true; });
                if (fixedApp != null) app = fixedApp;
            }
        }

        var ns = app.Str("spec.destination.namespace") ?? app.Ns();
        var automatedNode = app.At("spec.syncPolicy.automated");
        var automated = automatedNode is JsonObject ao && !(ao["enabled"] is JsonValue ev && ev.TryGetValue<bool>(out var en) && !en);
        var selfHeal = automated && app.Bool("spec.syncPolicy.automated.selfHeal");
        var (deploy, live) = Target(app, ns);
        var fromGit = git != null && GitSource.IsLabSource(app.Str("spec.source.repoURL"));
        string? desired, gitError = null;
        string desiredRev;
        if (fromGit)
        {
            try { (desired, desiredRev) = ArgoFromGit(app, app.Str("spec.source.targetRevision") ?? "HEAD", live); }
            catch (GitSourceException e) { (desired, desiredRev, gitError) = (null, "", e.Message); }
        }
        else
        {
            desired = Ann(app, DesiredImageAnn) ?? ArgoImage(app.At("spec.source.kustomize.images")) ?? HelmImage(app.At("spec.source.helm.valuesObject.image"));
            desiredRev = desired == null ? "" : FakeSha(desired);
        }
        // With Git, sync.revision is the compared revision (the tip); what was last synced is the operation's result.
        var lastSynced = fromGit ? app.Str("status.operationState.syncResult.revision") : app.Str("status.sync.revision");

        var drift = deploy != null && desired != null && live != desired;
        var doSync = false;
        if (automated && desired != null && deploy != null && desiredRev != lastSynced) doSync = true;   // Git changed
        else if (DriftDue(uid, drift && selfHeal)) doSync = true;                                        // self-heal

        var project = store.Get(Resources.AppProjects, app.Ns(), app.Str("spec.project") ?? "default");
        var blocked = doSync && SyncWindows.AutomatedSyncBlocked(project, app, Now);
        if (blocked) doSync = false;
        string? syncImage = desired, syncRev = desiredRev;
        JsonObject? initiatedBy = new() { ["automated"] = true };

        // An operation on the Application (argocd app sync --revision, or a kubectl patch) runs one sync, auto-sync or not.
        var operation = app["operation"] as JsonObject;
        string? operationError = null;
        if (operation != null)
        {
            initiatedBy = operation["initiatedBy"]?.DeepClone() as JsonObject ?? new JsonObject { ["username"] = "admin" };
            if (SyncWindows.ManualSyncBlocked(project, app, Now)) operationError = "Sync denied by sync window";
            else if (deploy == null) operationError = $"deployment {ns}/{Ann(app, DeploymentAnn) ?? app.Name()} not found";
            else if (fromGit)
            {
                try { (syncImage, syncRev) = ArgoFromGit(app, operation.Str("sync.revision") ?? app.Str("spec.source.targetRevision") ?? "HEAD", live); }
                catch (GitSourceException e) { operationError = e.Message; }
            }
            else if (desired == null) operationError = "no desired image";
            doSync = operationError == null;
        }
        if (doSync && deploy != null && syncImage != null)
        {
            Apply(app, deploy, syncImage);
            deploy = store.Get(Resources.Deployments, deploy.Ns(), deploy.Name());
            drift = desired != null && syncImage != desired;
        }

        store.Mutate(Resources.Applications, app.Ns(), app.Name(), a =>
        {
            var old = a["status"] as JsonObject ?? new JsonObject();
            var st = (JsonObject)old.DeepClone();
            var sync = st.Obj("sync");
            sync["status"] = deploy == null || desired == null ? "Unknown" : drift ? "OutOfSync" : "Synced";
            if (fromGit && desiredRev != "") sync["revision"] = desiredRev;
            sync["comparedTo"] = new JsonObject { ["source"] = a.At("spec.source")?.DeepClone(), ["destination"] = a.At("spec.destination")?.DeepClone() };
            st.Obj("health")["status"] = Health(deploy);
            if (blocked)
                st["conditions"] = new JsonArray(new JsonObject
                {
                    ["type"] = "SyncError", ["message"] = "Sync denied by sync window",
                    ["lastTransitionTime"] = (old["conditions"] as JsonArray)?.FirstOrDefault().Str("lastTransitionTime") ?? J.Time(Now),
                });
            else if (gitError != null)
                st["conditions"] = new JsonArray(new JsonObject { ["type"] = "ComparisonError", ["message"] = gitError, ["lastTransitionTime"] = J.Time(Now) });
            else if (!drift) st.Remove("conditions");
            st.Obj("summary")["images"] = new JsonArray((deploy?.At("spec.template.spec.containers") as JsonArray)?.Select(c => (JsonNode?)c.Str("image")).ToArray() ?? []);
            if (doSync)
            {
                if (!fromGit) sync["revision"] = syncRev;
                var hist = st["history"] as JsonArray ?? new JsonArray();
                var id = hist.Select(h => h.Long("id") ?? 0).DefaultIfEmpty(-1).Max() + 1;
                hist.Add(new JsonObject { ["id"] = id, ["revision"] = syncRev, ["deployedAt"] = J.Time(Now), ["source"] = a.At("spec.source")?.DeepClone(), ["deployStartedAt"] = J.Time(Now) });
                while (hist.Count > 10) hist.RemoveAt(0);
                st["history"] = hist;
                st["operationState"] = new JsonObject
                {
                    ["phase"] = "Succeeded", ["message"] = "successfully synced (all tasks run)", ["startedAt"] = J.Time(Now), ["finishedAt"] = J.Time(Now),
                    ["operation"] = new JsonObject { ["sync"] = new JsonObject { ["revision"] = syncRev }, ["initiatedBy"] = initiatedBy },
                    ["syncResult"] = new JsonObject { ["revision"] = syncRev, ["source"] = a.At("spec.source")?.DeepClone() },
                };
            }
            else if (operation != null)
                st["operationState"] = new JsonObject
                {
                    ["phase"] = "Error", ["message"] = operationError, ["startedAt"] = J.Time(Now), ["finishedAt"] = J.Time(Now),
                    ["operation"] = operation.DeepClone(),
                };
            // Argo's controller clears the operation once it has run it: only the one this pass read and
            // ran. One that arrived while the pass worked (a PATCH racing the tick) waits for the next pass.
            var cleared = operation != null && J.Same(a["operation"], operation) && a.Remove("operation");
            if (J.Same(st, old) && !cleared) return false;
            st["reconciledAt"] = J.Time(Now);
            a["status"] = st;
            return true;
        });
    }

    void Flux(ResourceType rt, JsonObject obj, Func<(string? Desired, string? Revision, string? Error)> source)
    {
        if (obj.Bool("spec.suspend")) { _driftSince.Remove(obj.Uid()); return; }   // a suspended object is not reconciled at all
        var ns = obj.Str("spec.targetNamespace") ?? obj.Ns();
        var (deploy, live) = Target(obj, ns);
        var (desired, gitRev, gitError) = source();
        var rev = gitRev ?? (desired == null ? "" : "main@sha1:" + FakeSha(desired));
        var gen = obj.Long("metadata.generation") ?? 1;
        var drift = deploy != null && desired != null && live != desired;
        var requested = (obj.At("metadata.annotations") as JsonObject)?["reconcile.fluxcd.io/requestedAt"]?.GetValue<string>();
        var newlyDesired = obj.Str("status.lastAppliedRevision") != rev || (requested != null && requested != obj.Str("status.lastHandledReconcileAt"));
        if (deploy != null && desired != null && (newlyDesired && drift || DriftDue(obj.Uid(), drift)))
        {
            Apply(obj, deploy, desired);
            drift = false;
        }
        store.Mutate(rt, obj.Ns(), obj.Name(), o =>
        {
            var old = o["status"] as JsonObject ?? new JsonObject();
            var st = (JsonObject)old.DeepClone();
            var ok = deploy != null && desired != null;
            var reason = rt == Resources.HelmReleases ? "UpgradeSucceeded" : "ReconciliationSucceeded";
            var message = gitError != null ? gitError : !ok ? $"target deployment not found in namespace {ns}"
                : rt == Resources.HelmReleases ? $"Helm upgrade succeeded for release {ns}/{o.Name()} with chart {o.Str("spec.chart.spec.chart") ?? o.Name()}"
                : $"Applied revision: {rev}";
            st["conditions"] = new JsonArray(ReadyCondition(old, ok, ok ? reason : gitError != null ? "ArtifactFailed" : "ReconciliationFailed", message, gen));
            st["observedGeneration"] = gen;
            if (ok) { st["lastAppliedRevision"] = rev; st["lastAttemptedRevision"] = rev; }
            if (requested != null) st["lastHandledReconcileAt"] = requested;
            if (J.Same(st, old)) return false;
            o["status"] = st;
            return true;
        }, statusOnly: true);
    }
}
