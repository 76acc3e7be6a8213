using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Lab.Api;

namespace KfmRollback.Lab.Controllers;

/// <summary>
/// Argo CD Application and Flux Kustomization/HelmRelease stand-ins. "Git" is the desired image recorded
/// in the GitOps object; drift of the target Deployment's container image is reverted after
/// <c>selfHealSeconds</c> simulated seconds unless auto-sync is off / the object is suspended.
/// Lab conventions: annotation <c>lab.kfm.local/deployment</c> names the target Deployment (default: the
/// object's name), <c>lab.kfm.local/container</c> the container (default: the first one),
/// <c>lab.kfm.local/change-cause</c> the change-cause Git carries.
/// </summary>
public sealed class GitOps(Store store, double selfHealSeconds)
{
    public const string DeploymentAnn = "lab.kfm.local/deployment";
    public const string ContainerAnn = "lab.kfm.local/container";
    public const string ChangeCauseAnn = "lab.kfm.local/change-cause";
    public const string DesiredImageAnn = "lab.kfm.local/desired-image";
    readonly Dictionary<string, DateTimeOffset> _driftSince = new();
    readonly Dictionary<string, JsonNode?> _appSetPolicy = new();

    DateTimeOffset Now => store.Clock.Now;

    public void Tick()
    {
        foreach (var app in store.List(Resources.Applications)) { try { Argo(app); } catch (ApiException) { } }
        foreach (var ks in store.List(Resources.Kustomizations)) { try { Flux(Resources.Kustomizations, ks, KustomizeImage(ks.At("spec.images"))); } catch (ApiException) { } }
        foreach (var hr in store.List(Resources.HelmReleases)) { try { Flux(Resources.HelmReleases, hr, HelmImage(hr.At("spec.values.image"))); } catch (ApiException) { } }
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
        var desired = Ann(app, DesiredImageAnn) ?? ArgoImage(app.At("spec.source.kustomize.images")) ?? HelmImage(app.At("spec.source.helm.valuesObject.image"));
        var automatedNode = app.At("spec.syncPolicy.automated");
        var automated = automatedNode is JsonObject ao && !(ao["enabled"] is JsonValue ev && ev.TryGetValue<bool>(out var en) && !en);
        var selfHeal = automated && app.Bool("spec.syncPolicy.automated.selfHeal");
        var (deploy, live) = Target(app, ns);
        var desiredRev = desired == null ? "" : FakeSha(desired);
        var lastSynced = app.Str("status.sync.revision");

        var drift = deploy != null && desired != null && live != desired;
        var doSync = false;
        if (automated && desired != null && deploy != null && desiredRev != lastSynced) doSync = true;   // Git changed
        else if (DriftDue(uid, drift && selfHeal)) doSync = true;                                        // self-heal

        var project = store.Get(Resources.AppProjects, app.Ns(), app.Str("spec.project") ?? "default");
        var blocked = doSync && SyncWindows.AutomatedSyncBlocked(project, app, Now);
        if (blocked) doSync = false;
        if (doSync && deploy != null && desired != null)
        {
            Apply(app, deploy, desired);
            deploy = store.Get(Resources.Deployments, deploy.Ns(), deploy.Name());
            drift = false;
        }

        store.Mutate(Resources.Applications, app.Ns(), app.Name(), a =>
        {
            var old = a["status"] as JsonObject ?? new JsonObject();
            var st = (JsonObject)old.DeepClone();
            var sync = st.Obj("sync");
            sync["status"] = deploy == null || desired == null ? "Unknown" : drift ? "OutOfSync" : "Synced";
            sync["comparedTo"] = new JsonObject { ["source"] = a.At("spec.source")?.DeepClone(), ["destination"] = a.At("spec.destination")?.DeepClone() };
            st.Obj("health")["status"] = Health(deploy);
            if (blocked)
                st["conditions"] = new JsonArray(new JsonObject
                {
                    ["type"] = "SyncError", ["message"] = "Sync denied by sync window",
                    ["lastTransitionTime"] = (old["conditions"] as JsonArray)?.FirstOrDefault().Str("lastTransitionTime") ?? J.Time(Now),
                });
            else if (!drift) st.Remove("conditions");
            st.Obj("summary")["images"] = new JsonArray((deploy?.At("spec.template.spec.containers") as JsonArray)?.Select(c => (JsonNode?)c.Str("image")).ToArray() ?? []);
            if (doSync)
            {
                sync["revision"] = desiredRev;
                var hist = st["history"] as JsonArray ?? new JsonArray();
                var id = hist.Select(h => h.Long("id") ?? 0).DefaultIfEmpty(-1).Max() + 1;
                hist.Add(new JsonObject { ["id"] = id, ["revision"] = desiredRev, ["deployedAt"] = J.Time(Now), ["source"] = a.At("spec.source")?.DeepClone(), ["deployStartedAt"] = J.Time(Now) });
                while (hist.Count > 10) hist.RemoveAt(0);
                st["history"] = hist;
                st["operationState"] = new JsonObject
                {
                    ["phase"] = "Succeeded", ["message"] = "successfully synced (all tasks run)", ["startedAt"] = J.Time(Now), ["finishedAt"] = J.Time(Now),
                    ["operation"] = new JsonObject { ["sync"] = new JsonObject { ["revision"] = desiredRev }, ["initiatedBy"] = new JsonObject { ["automated"] = true } },
                };
            }
            if (J.Same(st, old)) return false;
            st["reconciledAt"] = J.Time(Now);
            a["status"] = st;
            return true;
        });
    }

    void Flux(ResourceType rt, JsonObject obj, string? desired)
    {
        if (obj.Bool("spec.suspend")) { _driftSince.Remove(obj.Uid()); return; }   // a suspended object is not reconciled at all
        var ns = obj.Str("spec.targetNamespace") ?? obj.Ns();
        var (deploy, live) = Target(obj, ns);
        var rev = desired == null ? "" : "main@sha1:" + FakeSha(desired);
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
            var message = !ok ? $"target deployment not found in namespace {ns}"
                : rt == Resources.HelmReleases ? $"Helm upgrade succeeded for release {ns}/{o.Name()} with chart {o.Str("spec.chart.spec.chart") ?? o.Name()}"
                : $"Applied revision: {rev}";
            var conds = new JsonArray(new JsonObject
            {
                ["type"] = "Ready", ["status"] = ok ? "True" : "False", ["reason"] = ok ? reason : "ReconciliationFailed", ["message"] = message,
                ["observedGeneration"] = gen,
                ["lastTransitionTime"] = (old["conditions"] as JsonArray)?.FirstOrDefault()?.Str("status") == (ok ? "True" : "False")
                    ? (old["conditions"] as JsonArray)!.First().Str("lastTransitionTime") : J.Time(Now),
            });
            st["conditions"] = conds;
            st["observedGeneration"] = gen;
            if (ok) { st["lastAppliedRevision"] = rev; st["lastAttemptedRevision"] = rev; }
            if (requested != null) st["lastHandledReconcileAt"] = requested;
            if (J.Same(st, old)) return false;
            o["status"] = st;
            return true;
        }, statusOnly: true);
    }
}
