using KfmRollback.Engine.Tests.Support;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Adapters.GitOpsControllers;
using KfmRollback.Engine.Adapters.Kubernetes;
using System.Text.Json.Nodes;
using k8s;
using KfmRollback.Engine.Freeze;
using KfmRollback.Engine.Incidents;
using KfmRollback.Engine.Tests.Rollback;
using KfmRollback.Lab;
using KfmRollback.Lab.Api;
using KfmRollback.Lab.Controllers;

namespace KfmRollback.Engine.Tests.Freeze;

/// <summary>
/// Freezes belong to the incidents that hold them (two incidents on one environment), and image
/// automation is frozen with the controllers: on the lab's Argo CD Application, Flux
/// ImageUpdateAutomation and Argo CD Image Updater stand-ins, read back as the apiserver stores them.
/// </summary>
public sealed class FreezeHoldersLabTests
{
    private static readonly DateTimeOffset At = new(2026, 5, 12, 3, 0, 0, TimeSpan.Zero);
    private static FreezeRequest Request(string incident, bool force = false, string reason = "5xx after deploy") => new(incident, "alice", reason, At, force);

    private static async Task<JsonObject> ReadAsync(IKubernetes client, CustomObjectRef target) => await LabCustomObjects.GetAsync(client, target);

    private static JsonNode? Automated(JsonObject app) => app["spec"]?["syncPolicy"]?["automated"];

    private static string? Record(JsonObject resource) => (string?)resource["metadata"]?["annotations"]?[FreezeRecord.Annotation];

    [Fact]
    public async Task A_freeze_stays_while_another_open_incident_holds_it_and_lifts_with_the_last_holder()
    {
        await using var lab = await EngineLab.StartAsync();
        var argo = new ControllerFreeze(new ArgoCdApplication(lab.Client, "argocd", "kfm-api"), "lab");
        var app = CustomObjectRef.Application("argocd", "kfm-api");
        JsonNode prior = Automated(await ReadAsync(lab.Client, app))!.DeepClone();

        Assert.Equal(FreezeAction.Froze, (await argo.FreezeAsync(Request("INC-A"), false, default)).Action);
        FreezeState joined = await argo.FreezeAsync(Request("INC-B"), false, default);
        Assert.Equal(FreezeAction.Joined, joined.Action);
        Assert.Equal(new[] { "INC-A", "INC-B" }, joined.Holders.Select(h => h.IncidentId));
        Assert.Equal(FreezeAction.None, (await argo.FreezeAsync(Request("INC-B"), false, default)).Action);   // a rerun changes nothing

        // INC-A ends its incident: the Application stays frozen for INC-B, and says so.
        FreezeState released = await argo.ThawAsync(Request("INC-A"), false, default);
        Assert.Equal(FreezeAction.Released, released.Action);
        Assert.True(released.Frozen);
        Assert.Contains("held by INC-B", released.Detail, StringComparison.Ordinal);
        JsonObject stillFrozen = await ReadAsync(lab.Client, app);
        Assert.Null(Automated(stillFrozen));
        Assert.Equal("INC-B", Assert.Single(FreezeRecord.FromAnnotations(new Dictionary<string, string> { [FreezeRecord.Annotation] = Record(stillFrozen)! })!.Holders).IncidentId);

        // A thaw by no incident (or a typo) holds nothing and lifts nothing.
        FreezeState stranger = await argo.ThawAsync(Request(FreezeService.NoIncident), false, default);
        Assert.Equal(FreezeAction.None, stranger.Action);
        Assert.Contains("holds no part of it", stranger.Detail, StringComparison.Ordinal);
        Assert.Null(Automated(await ReadAsync(lab.Client, app)));

        // The last holder ends its freeze: the exact prior sync policy is back and the record is gone.
        FreezeState thawed = await argo.ThawAsync(Request("INC-B"), false, default);
        Assert.Equal(FreezeAction.Thawed, thawed.Action);
        JsonObject after = await ReadAsync(lab.Client, app);
        Assert.True(JsonNode.DeepEquals(prior, Automated(after)), Automated(after)?.ToJsonString());
        Assert.Null(Record(after));
    }

    [Fact]
    public async Task A_forced_thaw_lifts_it_for_all_and_is_recorded_on_every_holders_timeline()
    {
        await using var lab = await EngineLab.StartAsync();
        var freezes = new FreezeService(lab.Freezes(), new PolicySafeText(), SystemClock.Instance);
        var lines = new List<string>();
        var others = new List<(string Incident, string Text)>();
        await freezes.ApplyAsync(lab.Environment, null, true, Request("INC-A"), false, (_, t) => lines.Add("A: " + t), default);
        await freezes.ApplyAsync(lab.Environment, null, true, Request("INC-B"), false, (_, t) => lines.Add("B: " + t), default);
        Assert.Contains("B: Joined the freeze of argocd Application argocd/kfm-api (lab), held by INC-A", lines);

        FreezeSummary summary = await freezes.ApplyAsync(lab.Environment, null, false, Request("INC-A", force: true, reason: "INC-B closed by phone, ticket not updated"),
            false, (_, t) => lines.Add("A: " + t), default, (incident, _, text) => others.Add((incident, text)));

        Assert.True(summary.Complete);
        Assert.Equal("INC-B", Assert.Single(summary.Mechanisms[0].Overridden).IncidentId);
        Assert.Contains("A: FORCED thaw of argocd Application argocd/kfm-api (lab) while INC-B held it: INC-B closed by phone, ticket not updated", lines);
        var (held, text) = Assert.Single(others);
        Assert.Equal("INC-B", held);
        Assert.StartsWith(TimelineFacts.ThawedPrefix + "argocd Application argocd/kfm-api (lab) by INC-A (alice), overriding this incident's hold", text, StringComparison.Ordinal);
        Assert.NotNull(Automated(await ReadAsync(lab.Client, CustomObjectRef.Application("argocd", "kfm-api"))));
    }

    [Fact]
    public async Task A_record_written_before_holders_existed_is_held_by_its_own_incident()
    {
        await using var lab = await EngineLab.StartAsync();
        var app = CustomObjectRef.Application("argocd", "kfm-api");
        // What an earlier version of the module left on the object.
        string old = """{"incident":"INC-OLD","by":"bob","at":"2026-05-11T22:00:00Z","reason":"earlier incident","prior":{"prune":true,"selfHeal":true}}""";
        await LabCustomObjects.PatchAsync(lab.Client, app, new JsonObject
        {
            ["metadata"] = new JsonObject { ["annotations"] = new JsonObject { [FreezeRecord.Annotation] = old } },
            ["spec"] = new JsonObject { ["syncPolicy"] = new JsonObject { ["automated"] = null } },
        });
        var argo = new ControllerFreeze(new ArgoCdApplication(lab.Client, "argocd", "kfm-api"), "lab");

        Assert.Equal("INC-OLD", Assert.Single((await argo.GetAsync(default)).Holders).IncidentId);
        Assert.Equal(FreezeAction.None, (await argo.ThawAsync(Request("INC-NEW"), false, default)).Action);
        Assert.Equal(FreezeAction.Thawed, (await argo.ThawAsync(Request("INC-OLD"), false, default)).Action);
        Assert.NotNull(Automated(await ReadAsync(lab.Client, app)));
    }

    [Fact]
    public async Task Image_automation_is_suspended_with_the_freeze_and_resumes_with_the_thaw()
    {
        await using var lab = await EngineLab.StartAsync();
        Store store = lab.Host.Store;
        string good = lab.Host.Images.Get("good-1.5.1").Image, bad = lab.Host.Images.Get("bad-5xx").Image;
        // Flux image automation writing into the Application's source, and Argo CD Image Updater on it, both selecting good-1.5.1.
        store.Create(Resources.ImageUpdateAutomations, new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["name"] = "kfm-api", ["namespace"] = "flux-system",
                ["annotations"] = new JsonObject { [ImageAutomation.UpdatesAnn] = "Application/argocd/kfm-api", [ImageAutomation.LatestImageAnn] = good },
            },
            ["spec"] = new JsonObject { ["interval"] = "1m", ["suspend"] = false },
        });
        const string imageList = "api=registry.kfm.local/kfm-api";
        store.Mutate(Resources.Applications, "argocd", "kfm-api", a =>
        {
            a.Meta().Obj("annotations")[ImageAutomation.ImageListAnn] = imageList;
            a.Meta().Obj("annotations")[ImageAutomation.LatestImageAnn] = good;
            return true;
        });
        string? Desired() => KfmRollback.Lab.Controllers.GitOps.ArgoImage(store.Get(Resources.Applications, "argocd", "kfm-api")!.At("spec.source.kustomize.images"));
        void NewestIs(string image)
        {
            store.Mutate(Resources.ImageUpdateAutomations, "flux-system", "kfm-api", o => { o.Meta().Obj("annotations")[ImageAutomation.LatestImageAnn] = image; return true; });
            store.Mutate(Resources.Applications, "argocd", "kfm-api", o => { o.Meta().Obj("annotations")[ImageAutomation.LatestImageAnn] = image; return true; });
            lab.Host.TickNow();
        }

        IFreezeMechanism[] mechanisms =
        {
            new ControllerFreeze(new ArgoCdApplication(lab.Client, "argocd", "kfm-api"), "lab"),
            new ControllerFreeze(new FluxImageUpdateAutomation(lab.Client, "flux-system", "kfm-api"), "lab"),
            new ControllerFreeze(new ArgoCdImageUpdater(lab.Client, "argocd", "kfm-api"), "lab"),
        };
        foreach (IFreezeMechanism mechanism in mechanisms)
        {
            FreezeState frozen = await mechanism.FreezeAsync(Request("INC-9"), false, default);
            Assert.True(frozen.Frozen, $"{mechanism.Target}: {frozen.Detail}");
        }
        JsonObject iua = await ReadAsync(lab.Client, new CustomObjectRef("image.toolkit.fluxcd.io", "v1", "imageupdateautomations", "flux-system", "kfm-api", "iua"));
        Assert.True(iua["spec"]!["suspend"]!.GetValue<bool>());
        JsonObject app = await ReadAsync(lab.Client, CustomObjectRef.Application("argocd", "kfm-api"));
        Assert.Null(app["metadata"]!["annotations"]![ImageAutomation.ImageListAnn]);

        // The bad build becomes the newest image while deploys are frozen: neither automation writes it.
        NewestIs(bad);
        Assert.Equal(good, Desired());

        foreach (IFreezeMechanism mechanism in mechanisms)
        {
            Assert.Equal(FreezeAction.Thawed, (await mechanism.ThawAsync(Request("INC-9"), false, default)).Action);
        }
        app = await ReadAsync(lab.Client, CustomObjectRef.Application("argocd", "kfm-api"));
        // Two mechanisms froze one Application, each under its own record: each put back exactly its own setting.
        Assert.True(Automated(app)!["selfHeal"]!.GetValue<bool>());
        Assert.Equal(imageList, (string?)app["metadata"]!["annotations"]![ImageAutomation.ImageListAnn]);
        iua = await ReadAsync(lab.Client, new CustomObjectRef("image.toolkit.fluxcd.io", "v1", "imageupdateautomations", "flux-system", "kfm-api", "iua"));
        Assert.False(iua["spec"]!["suspend"]!.GetValue<bool>());
        // Restored exactly: the automation runs again (which is why a thaw must wait for Git and the registry to agree).
        lab.Host.TickNow();
        Assert.Equal(bad, Desired());
    }
}
