using System.Text.Json.Nodes;
using KfmRollback.Lab.Api;

namespace KfmRollback.Lab.Controllers;

/// <summary>
/// Image automation stand-ins, the tools that bring a build back after a thaw (fluxcd/flux2#4676,
/// argoproj/argo-cd#9570). A real one asks the registry for the newest image its policy allows and
/// writes it into Git (Flux ImageUpdateAutomation) or into the Application (Argo CD Image Updater); in
/// the lab, annotation <c>lab.kfm.local/latest-image</c> is what the policy selects, and the desired
/// image of a lab GitOps object stands in for the file in Git:
/// <list type="bullet">
/// <item>Flux <c>ImageUpdateAutomation</c> (<c>image.toolkit.fluxcd.io/v1</c>): unless <c>spec.suspend</c> is true,
/// writes its latest image into the object annotation <c>lab.kfm.local/updates</c> names
/// (<c>Application/&lt;ns&gt;/&lt;name&gt;</c> or <c>Kustomization/&lt;ns&gt;/&lt;name&gt;</c>) and reports
/// <c>status.lastAutomationRunTime</c>, <c>status.lastPushTime</c> and a Ready condition. A suspended object is not reconciled at all.</item>
/// <item>Argo CD Image Updater (0.x): an Application carrying <c>argocd-image-updater.argoproj.io/image-list</c>
/// gets its latest image written into it (write-back method argocd); without the annotation it is skipped,
/// as the real updater skips Applications missing its required annotation.</item>
/// </list>
/// </summary>
public sealed class ImageAutomation(Store store)
{
    public const string LatestImageAnn = "lab.kfm.local/latest-image";
    public const string UpdatesAnn = "lab.kfm.local/updates";
    public const string ImageListAnn = "argocd-image-updater.argoproj.io/image-list";

    DateTimeOffset Now => store.Clock.Now;

    public void Tick()
    {
        foreach (var iua in store.List(Resources.ImageUpdateAutomations)) { try { Flux(iua); } catch (ApiException) { } }
        foreach (var app in store.List(Resources.Applications)) { try { ArgoImageUpdater(app); } catch (ApiException) { } }
    }

    void Flux(JsonObject iua)
    {
        if (iua.Bool("spec.suspend")) return;   // suspended: not reconciled, status left as it was
        var latest = Ann(iua, LatestImageAnn);
        var target = Ann(iua, UpdatesAnn)?.Split('/');
        string? error = latest == null ? $"no image selected (annotation {LatestImageAnn})"
            : target is not { Length: 3 } ? $"annotation {UpdatesAnn} must be <Kind>/<namespace>/<name>"
            : null;
        bool wrote = false;
        if (error == null)
        {
            var kind = target![0] switch { "Application" => Resources.Applications, "Kustomization" => Resources.Kustomizations, _ => null };
            if (kind == null) error = $"{target[0]} is not an object the lab's image automation writes to";
            else if (store.Get(kind, target[1], target[2]) == null) error = $"{target[0]} {target[1]}/{target[2]} not found";
            else wrote = WriteDesired(kind, target[1], target[2], latest!);
        }
        store.Mutate(Resources.ImageUpdateAutomations, iua.Ns(), iua.Name(), o =>
        {
            var old = o["status"] as JsonObject ?? new JsonObject();
            var st = (JsonObject)old.DeepClone();
            var gen = o.Long("metadata.generation") ?? 1;
            var message = error ?? (wrote ? $"pushed commit setting {latest}" : "repository up-to-date");
            var oldReady = (old["conditions"] as JsonArray)?.FirstOrDefault();
            st["conditions"] = new JsonArray(new JsonObject
            {
                ["type"] = "Ready", ["status"] = error == null ? "True" : "False", ["reason"] = error == null ? "Succeeded" : "UpdateFailed", ["message"] = message,
                ["observedGeneration"] = gen,
                ["lastTransitionTime"] = oldReady.Str("status") == (error == null ? "True" : "False") ? oldReady.Str("lastTransitionTime") : J.Time(Now),
            });
            st["observedGeneration"] = gen;
            if (wrote || old["lastAutomationRunTime"] == null) st["lastAutomationRunTime"] = J.Time(Now);
            if (wrote) st["lastPushTime"] = J.Time(Now);
            if (J.Same(st, old)) return false;
            o["status"] = st;
            return true;
        }, statusOnly: true);
    }

    void ArgoImageUpdater(JsonObject app)
    {
        if (Ann(app, ImageListAnn) == null || Ann(app, LatestImageAnn) is not { } latest) return;
        WriteDesired(Resources.Applications, app.Ns(), app.Name(), latest);
    }

    /// <summary>Sets the desired image the lab's GitOps controllers read; true when it changed.</summary>
    bool WriteDesired(ResourceType kind, string ns, string name, string image)
    {
        var changed = false;
        store.Mutate(kind, ns, name, o => changed = Write(o));
        return changed;

        bool Write(JsonObject o)
        {
            if (kind == Resources.Applications)
            {
                if (Ann(o, GitOps.DesiredImageAnn) is { } desired)
                {
                    if (desired == image) return false;
                    o.Meta().Obj("annotations")[GitOps.DesiredImageAnn] = image;
                    return true;
                }
                if (GitOps.ArgoImage(o.At("spec.source.kustomize.images")) == image) return false;
                o.Obj("spec.source.kustomize")["images"] = new JsonArray(image);
                return true;
            }
            if (GitOps.KustomizeImage(o.At("spec.images")) == image) return false;
            var at = image.IndexOf('@');
            var entry = at < 0 ? new JsonObject { ["name"] = image } : new JsonObject { ["name"] = image[..at], ["digest"] = image[(at + 1)..] };
            o.Obj("spec")["images"] = new JsonArray(entry);
            return true;
        }
    }

    static string? Ann(JsonObject o, string key) => (o.At("metadata.annotations") as JsonObject)?[key]?.GetValue<string>();
}
