using System.Text.Json.Nodes;
using KfmRollback.Lab.Api;
using Xunit;

namespace KfmRollback.Lab.Tests;

public class GitOpsTests
{
    static JsonArray History(Lab lab) => (lab.Host.Store.Get(Resources.Applications, "argocd", "kfm-api")!.At("status.history") as JsonArray) ?? new JsonArray();

    [Fact]
    public async Task ArgoSelfHeal_RevertsKubectlRolloutUndo()
    {
        await using var lab = await Lab.Start();
        await lab.RolledOut();
        var desired = lab.Host.Images.Get("good-1.5.1").Image;
        await Lab.Eventually(() => lab.Host.Store.Get(Resources.Applications, "argocd", "kfm-api").Str("status.sync.status") == "Synced", "app Synced");
        var syncsBefore = History(lab).Count;
        (await lab.K("rollout", "undo", "deployment/kfm-api", "-n", "kfm")).Ok();
        Assert.Equal(lab.Host.Images.Get("good-1.5.0").Image, lab.Image());   // the undo itself took effect...
        await Lab.Eventually(() => History(lab).Count > syncsBefore, "Argo self-heal sync recorded in status.history");
        Assert.Equal(desired, lab.Image());                                    // ...and self-heal put Git's image back
        await lab.RolledOut();
        var app = (await lab.K("get", "application", "kfm-api", "-n", "argocd", "-o", "json")).Ok();
        var o = JsonNode.Parse(app.Out)!;
        Assert.Equal("Synced", o.Str("status.sync.status"));
        Assert.Equal("Healthy", o.Str("status.health.status"));
        Assert.True(o.At("status.operationState.operation.initiatedBy").Bool("automated"));
    }

    [Theory]
    [InlineData("{\"spec\":{\"syncPolicy\":{\"automated\":null}}}")]
    [InlineData("{\"spec\":{\"syncPolicy\":{\"automated\":{\"enabled\":false}}}}")]
    public async Task ArgoAutoSyncDisabled_UndoSticks(string freeze)
    {
        await using var lab = await Lab.Start();
        await lab.RolledOut();
        (await lab.K("patch", "application", "kfm-api", "-n", "argocd", "--type=merge", "-p", freeze)).Ok();
        var syncsBefore = History(lab).Count;
        (await lab.K("rollout", "undo", "deployment/kfm-api", "-n", "kfm")).Ok();
        var target = lab.Host.Images.Get("good-1.5.0").Image;
        await Lab.Eventually(() => lab.Host.Store.Get(Resources.Applications, "argocd", "kfm-api").Str("status.sync.status") == "OutOfSync", "app OutOfSync");
        // Well past the self-heal delay in simulated time: nothing reverts the rollback.
        (await lab.Send(HttpMethod.Post, "/lab/advance?seconds=60")).code.ToString();
        lab.Host.TickNow();
        Assert.Equal(target, lab.Image());
        Assert.Equal(syncsBefore, History(lab).Count);
        Assert.Equal("OutOfSync", lab.Host.Store.Get(Resources.Applications, "argocd", "kfm-api").Str("status.sync.status"));
    }

    [Fact]
    public async Task ApplicationSetOwnedApp_RevertsSyncPolicyEdits()
    {
        await using var lab = await Lab.Start();
        var set = lab.Host.Store.Create(Resources.ApplicationSets, new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = "kfm", ["namespace"] = "argocd" },
            ["spec"] = new JsonObject { ["generators"] = new JsonArray(), ["template"] = new JsonObject() },
        });
        var file = Path.Combine(lab.Dir, "app.yaml");
        File.WriteAllText(file, """
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata:
              name: kfm-api-stage
              namespace: argocd
              ownerReferences:
              - {apiVersion: argoproj.io/v1alpha1, kind: ApplicationSet, name: kfm, uid: SETUID, controller: true}
            spec:
              project: default
              source: {repoURL: "https://git.kfm.local/kfm/infra.git", path: stage, targetRevision: main}
              destination: {server: "https://kubernetes.default.svc", namespace: kfm-stage}
              syncPolicy: {automated: {prune: true, selfHeal: true}}
            """);
        File.WriteAllText(file, File.ReadAllText(file).Replace("SETUID", set.Uid()));
        (await lab.K("create", "-f", file)).Ok();
        lab.Host.TickNow();
        (await lab.K("patch", "application", "kfm-api-stage", "-n", "argocd", "--type=merge", "-p", "{\"spec\":{\"syncPolicy\":{\"automated\":null}}}")).Ok();
        await Lab.Eventually(() => lab.Host.Store.Get(Resources.Applications, "argocd", "kfm-api-stage").At("spec.syncPolicy.automated") != null, "ApplicationSet puts syncPolicy back");
        Assert.True(lab.Host.Store.Get(Resources.Applications, "argocd", "kfm-api-stage").Bool("spec.syncPolicy.automated.selfHeal"));
    }

    [Fact]
    public async Task FluxKustomization_RevertsDrift_UnlessSuspendedByMergePatch()
    {
        await using var lab = await Lab.Start();
        var file = Manifests.NginxDeployment(lab.Dir, "web", extraDocuments: """
            ---
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata: {name: web, namespace: flux-system}
            spec:
              interval: 1m
              path: ./apps/web
              prune: true
              targetNamespace: default
              sourceRef: {kind: GitRepository, name: infra}
              images: [{name: nginx, newTag: "1.25"}]
            """);
        (await lab.K("apply", "-f", file)).Ok();
        await Lab.Eventually(() => ReadyGen(lab) is (true, _), "Kustomization Ready");
        var (_, gen) = ReadyGen(lab);
        Assert.Equal(lab.Host.Store.Get(Resources.Kustomizations, "flux-system", "web").Long("metadata.generation"), gen);

        (await lab.K("set", "image", "deployment/web", "-n", "default", "web=nginx:1.26")).Ok();
        await Lab.Eventually(() => lab.Image("default", "web") == "nginx:1.25", "Flux reverts drift");

        var p = (await lab.K("patch", "kustomization", "web", "-n", "flux-system", "--type=merge", "-p", "{\"spec\":{\"suspend\":true}}")).Ok();
        Assert.Contains("kustomization.kustomize.toolkit.fluxcd.io/web patched", p.Out);
        var ks = lab.Host.Store.Get(Resources.Kustomizations, "flux-system", "web")!;
        Assert.True(ks.Bool("spec.suspend"));
        (await lab.K("set", "image", "deployment/web", "-n", "default", "web=nginx:1.26")).Ok();
        await lab.Send(HttpMethod.Post, "/lab/advance?seconds=60");
        lab.Host.TickNow();
        Assert.Equal("nginx:1.26", lab.Image("default", "web"));
        // A suspended object is not reconciled: Ready's observedGeneration lags the new generation.
        Assert.NotEqual(lab.Host.Store.Get(Resources.Kustomizations, "flux-system", "web").Long("metadata.generation"), ReadyGen(lab).gen);

        // Resume, and force a reconcile the Flux way: Git's image is back at once.
        (await lab.K("patch", "kustomization", "web", "-n", "flux-system", "--type=merge", "-p", "{\"spec\":{\"suspend\":false}}")).Ok();
        (await lab.K("annotate", "kustomization", "web", "-n", "flux-system", "--overwrite", "reconcile.fluxcd.io/requestedAt=2026-11-28T12:00:00.000000000Z")).Ok();
        await Lab.Eventually(() => lab.Image("default", "web") == "nginx:1.25", "forced reconcile re-applies Git");
        await Lab.Eventually(() => lab.Host.Store.Get(Resources.Kustomizations, "flux-system", "web").Str("status.lastHandledReconcileAt") == "2026-11-28T12:00:00.000000000Z", "lastHandledReconcileAt");
        await Lab.Eventually(() => ReadyGen(lab).gen == lab.Host.Store.Get(Resources.Kustomizations, "flux-system", "web").Long("metadata.generation"), "Ready observedGeneration catches up");

        // A strategic merge patch on a CRD is refused, as on a real apiserver.
        var smp = await lab.K("patch", "kustomization", "web", "-n", "flux-system", "-p", "{\"spec\":{\"suspend\":false}}");
        Assert.NotEqual(0, smp.ExitCode);
        Assert.Contains("application/strategic-merge-patch+json", smp.Err);
    }

    static (bool ready, long? gen) ReadyGen(Lab lab)
    {
        var c = (lab.Host.Store.Get(Resources.Kustomizations, "flux-system", "web")?.At("status.conditions") as JsonArray)?.FirstOrDefault(x => x.Str("type") == "Ready");
        return (c.Str("status") == "True", c.Long("observedGeneration"));
    }

    [Fact]
    public async Task HelmRelease_SuspendFreezesReconcile()
    {
        await using var lab = await Lab.Start();
        await lab.RolledOut();
        (await lab.K("patch", "application", "kfm-api", "-n", "argocd", "--type=merge", "-p", "{\"spec\":{\"syncPolicy\":{\"automated\":null}}}")).Ok();
        var good = lab.Host.Images.Get("good-1.5.1");
        var file = Path.Combine(lab.Dir, "hr.yaml");
        File.WriteAllText(file, $$$"""
            apiVersion: helm.toolkit.fluxcd.io/v2
            kind: HelmRelease
            metadata: {name: kfm-api, namespace: kfm}
            spec:
              interval: 5m
              chart: {spec: {chart: kfm-api, version: "1.2.3", sourceRef: {kind: HelmRepository, name: kfm} } }
              values: {image: {repository: registry.kfm.local/kfm-api, digest: "{{{good.Digest}}}"}}
            """);
        (await lab.K("apply", "-f", file)).Ok();
        (await lab.K("rollout", "undo", "deployment/kfm-api", "-n", "kfm")).Ok();
        await Lab.Eventually(() => lab.Image() == good.Image, "HelmRelease reverts the undo");
        (await lab.K("patch", "helmrelease", "kfm-api", "-n", "kfm", "--type=merge", "-p", "{\"spec\":{\"suspend\":true}}")).Ok();
        (await lab.K("rollout", "undo", "deployment/kfm-api", "-n", "kfm")).Ok();
        await lab.Send(HttpMethod.Post, "/lab/advance?seconds=60");
        lab.Host.TickNow();
        Assert.NotEqual(good.Image, lab.Image());
    }
}

public class SyncWindowTests
{
    [Fact]
    public async Task DenySyncWindow_FreezesSelfHeal_UntilRemoved()
    {
        await using var lab = await Lab.Start();
        await lab.RolledOut();
        var desired = lab.Host.Images.Get("good-1.5.1").Image;
        var window = "{\"spec\":{\"syncWindows\":[{\"kind\":\"deny\",\"schedule\":\"* * * * *\",\"duration\":\"1h\",\"applications\":[\"kfm-*\"],\"manualSync\":true}]}}";
        (await lab.K("patch", "appproject", "default", "-n", "argocd", "--type=merge", "-p", window)).Ok();
        (await lab.K("rollout", "undo", "deployment/kfm-api", "-n", "kfm")).Ok();
        await Lab.Eventually(() => lab.Host.Store.Get(Resources.Applications, "argocd", "kfm-api").Str("status.sync.status") == "OutOfSync", "OutOfSync");
        await lab.Send(HttpMethod.Post, "/lab/advance?seconds=30");
        lab.Host.TickNow(); lab.Host.TickNow();
        Assert.NotEqual(desired, lab.Image());
        var cond = (lab.Host.Store.Get(Resources.Applications, "argocd", "kfm-api")!.At("status.conditions") as JsonArray)?.FirstOrDefault();
        Assert.Equal("Sync denied by sync window", cond.Str("message"));

        (await lab.K("patch", "appproject", "default", "-n", "argocd", "--type=merge", "-p", "{\"spec\":{\"syncWindows\":[]}}")).Ok();
        await Lab.Eventually(() => lab.Image() == desired, "self-heal resumes once the window is gone");
    }

    [Theory]
    [InlineData("0 2 * * *", "1h", 2, 30, true)]
    [InlineData("0 2 * * *", "1h", 3, 30, false)]
    [InlineData("*/15 * * * *", "5m", 10, 47, true)]
    [InlineData("*/15 * * * *", "5m", 10, 51, false)]
    [InlineData("0 22 * * 1-5", "4h", 1, 0, true)]   // Tuesday 01:00, window opened Monday 22:00
    public void CronWindows(string schedule, string duration, int hour, int minute, bool active)
    {
        var w = new JsonObject { ["kind"] = "deny", ["schedule"] = schedule, ["duration"] = duration };
        var now = new DateTimeOffset(2026, 6, 2, hour, minute, 0, TimeSpan.Zero);   // 2026-06-02 is a Tuesday
        Assert.Equal(active, KfmRollback.Lab.Controllers.SyncWindows.Active(w, now));
    }
}
