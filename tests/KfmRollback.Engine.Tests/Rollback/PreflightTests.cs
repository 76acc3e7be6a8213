using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Adapters.Kubernetes;
using KfmRollback.Engine.Adapters.Registry;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Freeze;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Rollback.Preflight;
using KfmRollback.Engine.Tests.Support;
using KfmRollback.Lab.Api;
using Xunit;

namespace KfmRollback.Engine.Tests.Rollback;

/// <summary>
/// The preflight of a cluster rollback on the lab: each planned write dry-run on the server (an
/// admission webhook refusing the undo, kyverno/kyverno#5363), and the target digest asked of a
/// real registry. A failed check refuses before anything changes, and again just before Apply.
/// </summary>
public sealed class PreflightTests
{
    private const string TokenVariable = "KFM_PREFLIGHT_TEST_REGISTRY_TOKEN";

    private static WebhookRule DenyDeploymentUpdates() => new()
    {
        Name = "validate.kyverno.svc-fail",
        Operations = ["UPDATE"],
        Resources = ["deployments"],
        Namespace = "kfm",
        ObjectSelector = "app=kfm-api",
        Message = "policy Deployment/kfm/kfm-api for resource violation: block-rollbacks: rollbacks need a signed image",
    };

    private static RollbackRequest Request(EnvironmentConfig environment) => new()
    {
        Environment = environment,
        Method = RollbackMethod.Cluster,
        IncidentId = "INC-PRE",
        Actor = "tester",
        Reason = "preflight test",
        Timeout = TimeSpan.FromSeconds(60),
    };

    /// <summary>What the apiserver stored (its audit log less dry runs), the rollback lock included.</summary>
    internal static IReadOnlyList<JsonObject> StoredWrites(EngineLab lab, int skip = 0) =>
        lab.Host.Audit.Events.Skip(skip).Where(e => !e["requestURI"]!.GetValue<string>().Contains("dryRun=All") && e["responseStatus"]!["code"]!.GetValue<int>() < 300).ToList();

    internal static async Task<string> ResourceVersionAsync(EngineLab lab) =>
        (await lab.Client.AppsV1.ReadNamespacedDeploymentAsync("kfm-api", "kfm")).Metadata.ResourceVersion;

    [Fact]
    public async Task An_admission_webhook_denying_the_undo_fails_the_plan_and_the_rollback_changes_nothing()
    {
        await using var lab = await EngineLab.StartAsync();
        await lab.FreezeAsync("INC-PRE");
        lab.Host.Webhooks.Add(DenyDeploymentUpdates());
        var engine = lab.RollbackEngine();
        RollbackRequest request = Request(lab.Environment);
        int audited = lab.Host.Audit.Events.Count;

        MechanismPlan plan = await engine.PlanAsync(request, RollbackReporter.Silent, CancellationToken.None);

        PreflightCheck failed = Assert.Single(plan.Preflight, c => c.Failed);
        Assert.Equal((ServerDryRun.CheckName, PreflightErrorIds.AdmissionDenied, "json-patch deployment kfm/kfm-api"), (failed.Check, failed.ErrorId, failed.Target));
        Assert.Contains("admission webhook \"validate.kyverno.svc-fail\" denied the request: policy Deployment/kfm/kfm-api for resource violation", failed.Saw);
        Assert.Contains(plan.Preflight, c => c.Check == RollbackPreflight.RegistryCheck && c.Verdict == PreflightVerdict.Skipped);
        // The dry run reached the apiserver (audited with dryRun=All) and stored nothing.
        Assert.Contains(lab.Host.Audit.Events.Skip(audited), e => e["requestURI"]!.GetValue<string>().Contains("dryRun=All") && e["verb"]!.GetValue<string>() == "patch");
        string before = await ResourceVersionAsync(lab);

        var refused = await Assert.ThrowsAsync<KfmException>(() => engine.RunAsync(request, plan, RollbackReporter.Silent, CancellationToken.None));

        Assert.Equal(PreflightErrorIds.AdmissionDenied, refused.ErrorId);
        Assert.Equal(KfmErrorKind.PermissionDenied, refused.Kind);
        Assert.Contains("Preflight check server-dry-run failed for lab: json-patch deployment kfm/kfm-api", refused.Message);
        Assert.Contains("Nothing was changed", refused.Message);
        Assert.Contains("Enable-KfmFailClosed", refused.Message);
        Assert.Empty(StoredWrites(lab, audited)); // not even the rollback lock
        Assert.Equal(before, await ResourceVersionAsync(lab));
    }

    [Fact]
    public async Task A_webhook_installed_after_the_plan_refuses_the_rollback_under_the_lock_before_any_change()
    {
        await using var lab = await EngineLab.StartAsync();
        await lab.FreezeAsync("INC-PRE");
        var engine = lab.RollbackEngine();
        RollbackRequest request = Request(lab.Environment);
        MechanismPlan plan = await engine.PlanAsync(request, RollbackReporter.Silent, CancellationToken.None);
        Assert.DoesNotContain(plan.Preflight, c => c.Failed);
        Assert.Contains(plan.Preflight, c => c.Check == ServerDryRun.CheckName && c.Verdict == PreflightVerdict.Passed);
        lab.Host.Webhooks.Add(DenyDeploymentUpdates());
        int audited = lab.Host.Audit.Events.Count;
        // The lab's deployment controller writes status while the seeded rollout settles, which moves
        // resourceVersion too (a busy machine stretched it past the plan once): measure a settled Deployment.
        await new RolloutWatcher(lab.Client, "kfm", "kfm-api").WaitAsync(null, TimeSpan.FromSeconds(60), CancellationToken.None);
        string before = await ResourceVersionAsync(lab);

        var refused = await Assert.ThrowsAsync<KfmException>(() => engine.RunAsync(request, plan, RollbackReporter.Silent, CancellationToken.None));

        Assert.Equal(PreflightErrorIds.AdmissionDenied, refused.ErrorId);
        Assert.Equal(before, await ResourceVersionAsync(lab));
        // Only the lock was taken and given back: the deployment was never written.
        Assert.All(StoredWrites(lab, audited), e => Assert.Equal("leases", e["objectRef"]!["resource"]!.GetValue<string>()));
    }

    [Fact]
    public async Task A_target_digest_missing_from_the_registry_is_refused_and_a_present_one_passes()
    {
        await using var lab = await EngineLab.StartAsync();
        await using var registry = await RegistryServer.StartAsync(authenticated: true);
        await lab.FreezeAsync("INC-PRE");
        string good = await registry.PushImageAsync("kfm/api", "1.7.0", "good build");
        string bad = await registry.PushImageAsync("kfm/api", "1.7.1", "bad build");
        await DeployAsync(lab, $"registry.kfm.local/kfm/api@{good}");
        await DeployAsync(lab, $"registry.kfm.local/kfm/api@{bad}");
        System.Environment.SetEnvironmentVariable(TokenVariable, RegistryServer.Password);
        EnvironmentConfig environment = WithRegistry(lab, registry.Url);
        var engine = lab.RollbackEngine();
        RollbackRequest request = Request(environment);

        MechanismPlan plan = await engine.PlanAsync(request, RollbackReporter.Silent, CancellationToken.None);
        Assert.Equal(good, plan.TargetRef);
        PreflightCheck present = Assert.Single(plan.Preflight, c => c.Check == RollbackPreflight.RegistryCheck);
        Assert.Equal(PreflightVerdict.Passed, present.Verdict);
        Assert.Equal($"{registry.Url.Authority}/kfm/api@{good}", present.Target);
        Assert.Contains("application/vnd.oci.image.manifest.v1+json", present.Saw);
        // What it sent: a HEAD of the manifest by digest (the registry's access log), with the Basic credentials.
        Assert.Contains($"\"HEAD /v2/kfm/api/manifests/{good} HTTP/1.1\" 200", registry.Log);

        // The good build is deleted from the registry (a retention policy): the same rollback is now refused.
        await registry.DeleteManifestAsync("kfm/api", good);
        MechanismPlan again = await engine.PlanAsync(request, RollbackReporter.Silent, CancellationToken.None);
        PreflightCheck missing = Assert.Single(again.Preflight, c => c.Failed);
        Assert.Equal((RollbackPreflight.RegistryCheck, PreflightErrorIds.DigestMissing), (missing.Check, missing.ErrorId));
        Assert.Contains("answered 404", missing.Saw);
        int audited = lab.Host.Audit.Events.Count;
        string before = await ResourceVersionAsync(lab);

        var refused = await Assert.ThrowsAsync<KfmException>(() => engine.RunAsync(request, again, RollbackReporter.Silent, CancellationToken.None));

        Assert.Equal(PreflightErrorIds.DigestMissing, refused.ErrorId);
        Assert.Equal(KfmErrorKind.ObjectNotFound, refused.Kind);
        Assert.Contains("ImagePullBackOff", refused.Message);
        Assert.Empty(StoredWrites(lab, audited));
        Assert.Equal(before, await ResourceVersionAsync(lab));
        Assert.DoesNotContain(RegistryServer.Password, refused.Message + string.Join("", again.Preflight.Select(c => c.ToString())));
    }

    [Fact]
    public async Task A_registry_that_cannot_be_asked_refuses_the_rollback_unless_forced_with_a_reason_which_the_timeline_and_result_record()
    {
        await using var lab = await EngineLab.StartAsync();
        await lab.FreezeAsync("INC-PRE");
        System.Environment.SetEnvironmentVariable(TokenVariable, "unused-registry-token");
        // Down in the same outage: nothing listens where the registry should be.
        EnvironmentConfig environment = WithRegistry(lab, new Uri($"http://127.0.0.1:{Support.LoopbackPorts.Free()}/"));
        await DeployAsync(lab, "registry.kfm.local/kfm/api@sha256:" + new string('b', 64));
        var engine = lab.RollbackEngine();
        RollbackRequest request = Request(environment);

        MechanismPlan plan = await engine.PlanAsync(request, RollbackReporter.Silent, CancellationToken.None);
        PreflightCheck unconfirmed = Assert.Single(plan.Preflight, c => c.Failed);
        Assert.Equal((RollbackPreflight.RegistryCheck, PreflightErrorIds.RegistryUnavailable), (unconfirmed.Check, unconfirmed.ErrorId));
        Assert.Contains("-Force -ForceReason", unconfirmed.Advice);
        // What the apiserver stored from here (the audit log: API requests, not the lab controller's own status writes).
        int audited = lab.Host.Audit.Events.Count;
        var refused = await Assert.ThrowsAsync<KfmException>(() => engine.RunAsync(request, plan, RollbackReporter.Silent, CancellationToken.None));
        Assert.Equal(PreflightErrorIds.RegistryUnavailable, refused.ErrorId);
        Assert.Empty(StoredWrites(lab, audited));

        RollbackRequest forcedRequest = request with { Force = true, ForceReason = "registry down in the same outage; the target ran an hour ago" };
        var timeline = new List<string>();
        var reporter = new RollbackReporter { Timeline = (role, text) => timeline.Add($"{role}: {text}") };
        MechanismPlan forcedPlan = await engine.PlanAsync(forcedRequest, reporter, CancellationToken.None);
        PreflightCheck forced = Assert.Single(forcedPlan.Preflight, c => c.Check == RollbackPreflight.RegistryCheck);
        Assert.Equal((PreflightVerdict.Forced, PreflightErrorIds.RegistryUnavailable), (forced.Verdict, forced.ErrorId));
        RollbackResult result = await engine.RunAsync(forcedRequest, forcedPlan, reporter, CancellationToken.None);

        Assert.Equal(RollbackOutcome.Succeeded, result.Outcome);
        Assert.Equal(PreflightErrorIds.RegistryUnavailable, Assert.Single(result.ForcedChecks).ErrorId);
        Assert.Contains(timeline, line => line.StartsWith("OPS: FORCED Cluster rollback of lab past preflight registry-digest (PreflightRegistryUnavailable:", StringComparison.Ordinal)
            && line.EndsWith("registry down in the same outage; the target ran an hour ago", StringComparison.Ordinal));
        Assert.DoesNotContain(timeline, line => line.Contains("unused-registry-token", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_registry_that_refuses_the_credentials_fails_the_check_and_never_hears_the_secret_in_an_error()
    {
        await using var registry = await RegistryServer.StartAsync(authenticated: true);
        string digest = await registry.PushImageAsync("kfm/api", "1.7.0", "build");
        var withoutCredentials = new OciRegistryClient(registry.Url, null, new HttpClient());
        var wrong = new OciRegistryClient(registry.Url, new RegistryCredential("kfm", "not-the-password"), new HttpClient());
        var right = new OciRegistryClient(registry.Url, new RegistryCredential(RegistryServer.User, RegistryServer.Password), new HttpClient());

        var anonymous = await Assert.ThrowsAsync<KfmException>(() => withoutCredentials.HeadManifestAsync("kfm/api", digest, CancellationToken.None));
        var refused = await Assert.ThrowsAsync<KfmException>(() => wrong.HeadManifestAsync("kfm/api", digest, CancellationToken.None));
        ManifestDescriptor? found = await right.HeadManifestAsync("kfm/api", digest, CancellationToken.None);
        RegistryManifest manifest = await right.GetManifestAsync("kfm/api", digest, CancellationToken.None);
        string layer = JsonNode.Parse(manifest.Content)!["layers"]![0]!["digest"]!.GetValue<string>();

        Assert.Equal(("RegistryUnauthorized", KfmErrorKind.PermissionDenied), (anonymous.ErrorId, anonymous.Kind));
        Assert.Contains("none are configured", anonymous.Message);
        Assert.Equal("RegistryUnauthorized", refused.ErrorId);
        Assert.DoesNotContain("not-the-password", refused.Message);
        Assert.Equal(digest, found!.Digest);
        Assert.Equal(digest, manifest.Descriptor.Digest);
        Assert.Equal("build", System.Text.Encoding.UTF8.GetString(await right.GetBlobAsync("kfm/api", layer, CancellationToken.None)));
        Assert.Null(await right.HeadManifestAsync("kfm/api", "sha256:" + new string('0', 64), CancellationToken.None));
    }

    /// <summary>A deploy of <paramref name="image"/> (a new revision), waited for until its ReplicaSet exists.</summary>
    internal static async Task DeployAsync(EngineLab lab, string image)
    {
        await lab.SetImageAsync(image);
        for (int i = 0; i < 400; i++)
        {
            V1ReplicaSetList sets = await lab.Client.AppsV1.ListNamespacedReplicaSetAsync("kfm");
            if (sets.Items.Any(s => s.Spec.Template.Spec.Containers[0].Image == image && s.Metadata.Annotations?.ContainsKey("deployment.kubernetes.io/revision") == true))
            {
                return;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"no ReplicaSet for {image}");
    }

    /// <summary>The lab environment with a registry section: the registry at <paramref name="url"/>, user kfm, token by reference.</summary>
    private static EnvironmentConfig WithRegistry(EngineLab lab, Uri url) => Registry(lab, url).Environment();

    /// <summary>The lab environment frozen by Argo CD, with the registry at <paramref name="url"/>: user kfm, token by reference.</summary>
    internal static LabConfig Registry(EngineLab lab, Uri url, string tokenVariable = TokenVariable) =>
        lab.Configure().With("freeze", LabConfig.ArgoFreeze).With("registry", $"{{ url: '{url}', username: {RegistryServer.User}, token_env: {tokenVariable} }}");
}
