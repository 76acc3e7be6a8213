using KfmRollback.Engine.Tests.Support;
using KfmRollback.Engine.Adapters.Helm;
using k8s;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Freeze;
using KfmRollback.Engine.Rollback;
using KfmRollback.Lab;
using Xunit;

namespace KfmRollback.Engine.Tests.Rollback.Helm;

/// <summary>
/// The Helm preflight on the lab's seeded release: a release stuck pending-* (helm/helm#9548) and a
/// rollback that would delete a CustomResourceDefinition are refused, each with its own error id and
/// helm's way out, and nothing is written.
/// </summary>
public sealed class HelmPreflightTests
{
    private const string Crd = """
        ---
        # Source: kfm-api/templates/crd.yaml
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata:
          name: datasetslices.kfm.example.org
        spec:
          group: kfm.example.org
          names: { kind: DatasetSlice, plural: datasetslices }
          scope: Namespaced
          versions: [ { name: v1, served: true, storage: true, schema: { openAPIV3Schema: { type: object } } } ]
        """;


    /// <summary>Every release Secret's resourceVersion and the Deployment's: what "nothing written" compares.</summary>
    // The Deployment's generation, not its resourceVersion: the lab's controller writes its status at any time.
    private static async Task<string> StateAsync(EngineLab lab) =>
        string.Join(",", (await lab.ReleasesAsync()).Values.Select(r => $"{r.Version}:{r.ResourceVersion}")) + ";" +
        (await lab.Client.AppsV1.ReadNamespacedDeploymentAsync("kfm-api", "kfm")).Metadata.Generation;

    /// <summary>Writes revision 5 as helm would: <paramref name="status"/>, rendering <paramref name="build"/> plus <paramref name="extraManifest"/>.</summary>
    private static async Task WriteRevisionAsync(EngineLab lab, string status, string build, string extraManifest = "", bool supersede = false)
    {
        var releases = await lab.ReleasesAsync();
        StoredRelease current = releases.Values.Last(r => r.Status == HelmStatus.Deployed);
        var record = HelmSeed.Record(5, status, status == HelmStatus.Deployed ? "Upgrade complete" : "Preparing upgrade", build,
            lab.Host.Images.Get(build).Image, current.Release.FirstDeployed!.Value, DateTimeOffset.UtcNow);
        record["manifest"] = record["manifest"]!.GetValue<string>() + extraManifest;
        await lab.Store().CreateAsync(new HelmRelease(record), CancellationToken.None);
        if (supersede)
        {
            await lab.Store().UpdateAsync(current, current.Release.WithStatus(HelmStatus.Superseded), CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_release_stuck_in_pending_upgrade_is_refused_with_helms_remedy_and_nothing_is_written()
    {
        await using EngineLab lab = await HelmLab.StartAsync();
        await lab.FreezeAsync("INC-1");
        // An interrupted `helm upgrade` to the bad build: revision 5 stays pending-upgrade, revision 4 deployed.
        await WriteRevisionAsync(lab, HelmStatus.PendingUpgrade, "bad-5xx");
        string before = await StateAsync(lab);

        var refused = await Assert.ThrowsAsync<KfmException>(() => lab.RollbackEngine().PlanAsync(lab.Request(), RollbackReporter.Silent, CancellationToken.None));

        Assert.Equal("HelmReleasePending", refused.ErrorId);
        Assert.Equal(KfmErrorKind.ResourceBusy, refused.Kind);
        Assert.Contains("Preflight check helm-release-status failed for prod", refused.Message);
        Assert.Contains("revision 5 of Helm release \"kfm-api\" is pending-upgrade", refused.Message);
        Assert.Contains("'helm rollback kfm-api 4 --wait' (revision 4 is the last deployed)", refused.Message);
        Assert.Contains("Enable-KfmFailClosed", refused.Message);
        Assert.Equal(before, await StateAsync(lab));
    }

    [Fact]
    public async Task A_rollback_that_would_delete_a_crd_is_refused_and_other_deletions_are_named()
    {
        await using EngineLab lab = await HelmLab.StartAsync();
        await lab.FreezeAsync("INC-1");
        // Revision 5 (the bad build) added a CRD to the chart's templates; revision 4 does not render it.
        await WriteRevisionAsync(lab, HelmStatus.Deployed, "bad-5xx", Crd, supersede: true);
        string before = await StateAsync(lab);

        var refused = await Assert.ThrowsAsync<KfmException>(() => lab.RollbackEngine().PlanAsync(lab.Request(), RollbackReporter.Silent, CancellationToken.None));

        Assert.Equal("HelmRollbackDeletesCrd", refused.ErrorId);
        Assert.Contains("would delete CustomResourceDefinition datasetslices.kfm.example.org (in revision 5's manifest, not in 4's)", refused.Message);
        Assert.Contains("deletes every custom resource of that kind", refused.Message);
        Assert.Contains("helm.sh/resource-policy: keep", refused.Message);
        Assert.Equal(before, await StateAsync(lab));

        // The same CRD kept by helm's resource policy is not deleted by a rollback; a ConfigMap the target
        // does not render is, and the refusal names it so.
        string kept = Crd.Replace("  name: datasetslices.kfm.example.org", "  name: datasetslices.kfm.example.org\n  annotations: { helm.sh/resource-policy: keep }");
        await using EngineLab other = await HelmLab.StartAsync();
        await other.FreezeAsync("INC-1");
        await WriteRevisionAsync(other, HelmStatus.Deployed, "bad-5xx", kept + "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kfm-api-extra\ndata: { a: b }\n", supersede: true);
        var unsupported = await Assert.ThrowsAsync<KfmException>(() => other.RollbackEngine().PlanAsync(other.Request(), RollbackReporter.Silent, CancellationToken.None));
        Assert.Equal("HelmRollbackUnsupportedChange", unsupported.ErrorId);
        Assert.Contains("ConfigMap kfm-api-extra (not in revision 4: helm rollback deletes it)", unsupported.Message);
    }
}
