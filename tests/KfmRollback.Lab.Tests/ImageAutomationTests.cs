using System.Text.Json.Nodes;
using KfmRollback.Lab.Api;
using KfmRollback.Lab.Controllers;
using Xunit;

namespace KfmRollback.Lab.Tests;

/// <summary>
/// The image-automation stand-ins write the newest image into the desired state unless suspended,
/// and kubectl works on ImageUpdateAutomation as on a real apiserver serving Flux's CRD (get with its
/// printer columns, a merge patch of spec.suspend as flux suspend sends).
/// </summary>
public class ImageAutomationTests
{
    static string? DesiredOfApp(Lab lab) => GitOps.ArgoImage(lab.Host.Store.Get(Resources.Applications, "argocd", "kfm-api")!.At("spec.source.kustomize.images"));

    static async Task CreateAutomation(Lab lab, string latest)
    {
        var file = Path.Combine(lab.Dir, "iua.yaml");
        await File.WriteAllTextAsync(file, $"""
            apiVersion: image.toolkit.fluxcd.io/v1
            kind: ImageUpdateAutomation
            metadata:
              name: kfm-api
              namespace: flux-system
              annotations:
                {ImageAutomation.UpdatesAnn}: Application/argocd/kfm-api
                {ImageAutomation.LatestImageAnn}: "{latest}"
            spec:
              interval: 1m
              sourceRef: {"{"} kind: GitRepository, name: flux-system {"}"}
              update: {"{"} path: ./clusters/prod, strategy: Setters {"}"}
            """);
        (await lab.K("apply", "-f", file)).Ok();
    }

    [Fact]
    public async Task FluxImageUpdateAutomation_WritesTheNewestImage_UnlessSuspended()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        string good = lab.Host.Images.Get("good-1.5.1").Image, bad = lab.Host.Images.Get("bad-5xx").Image;
        await CreateAutomation(lab, good);
        lab.Host.TickNow();
        Assert.Equal(good, DesiredOfApp(lab));

        // Suspended (flux suspend image update sends this merge patch): a newer image is not written.
        (await lab.K("patch", "imageupdateautomation", "kfm-api", "-n", "flux-system", "--type=merge", "-p", "{\"spec\":{\"suspend\":true}}")).Ok();
        (await lab.K("annotate", "imageupdateautomation", "kfm-api", "-n", "flux-system", "--overwrite", $"{ImageAutomation.LatestImageAnn}={bad}")).Ok();
        lab.Host.TickNow();
        (await lab.Send(HttpMethod.Post, "/lab/advance?seconds=60")).code.ToString();
        lab.Host.TickNow();
        Assert.Equal(good, DesiredOfApp(lab));

        // Resumed: the automation catches up at once.
        (await lab.K("patch", "imageupdateautomation", "kfm-api", "-n", "flux-system", "--type=merge", "-p", "{\"spec\":{\"suspend\":false}}")).Ok();
        await Lab.Eventually(() => DesiredOfApp(lab) == bad, "the automation writes the newest image once resumed");
        var table = (await lab.K("get", "imageupdateautomations", "-n", "flux-system")).Ok().Out;
        Assert.Matches(@"NAME\s+LAST RUN\s+READY\s+STATUS\s+AGE", table);
        Assert.Matches(@"kfm-api\s+\S+\s+True\s", table);
        Assert.NotNull(lab.Host.Store.Get(Resources.ImageUpdateAutomations, "flux-system", "kfm-api").Str("status.lastPushTime"));
    }

    [Fact]
    public async Task ArgoImageUpdater_SkipsAnApplicationWithoutItsImageListAnnotation()
    {
        await using var lab = await Lab.Start(argoAutoSync: false);
        string good = lab.Host.Images.Get("good-1.5.1").Image, bad = lab.Host.Images.Get("bad-5xx").Image;
        (await lab.K("annotate", "application", "kfm-api", "-n", "argocd", $"{ImageAutomation.LatestImageAnn}={bad}")).Ok();
        lab.Host.TickNow();
        Assert.Equal(good, DesiredOfApp(lab));   // no image-list: the updater leaves it alone

        (await lab.K("annotate", "application", "kfm-api", "-n", "argocd", $"{ImageAutomation.ImageListAnn}=api=registry.kfm.local/kfm-api")).Ok();
        await Lab.Eventually(() => DesiredOfApp(lab) == bad, "the updater writes the newest image into the Application");
    }
}
