using KfmRollback.Engine.Adapters.Http;
using k8s;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Freeze;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Rollback.Surfaces;
using KfmRollback.Engine.Tests.Planning;
using KfmRollback.Engine.Tests.Support;
using KfmRollback.Engine.Verification;
using Xunit;

namespace KfmRollback.Engine.Tests.Verification;

/// <summary>Runbook step 5's policy cases on the lab, whose API follows the bundle OPA runs.</summary>
public sealed class PolicyCasesLabTests
{
    private static readonly string Good = "kfm-policy@sha256-" + new string('a', 64);
    private static readonly string Bad = "kfm-policy@sha256-bad" + new string('0', 61);

    private const string Cases = """
        - name: public-reads-public
          caller: public-user
          endpoint: /api/v1/datasets/kansas_counties
          expect: allow
        - name: public-denied-restricted
          caller: public-user
          endpoint: /api/v1/datasets/burial_sites
          expect: deny
        - name: steward-reads-restricted
          caller: steward
          method: GET
          endpoint: /api/v1/datasets/burial_sites
          expect: allow
        - name: steward-resolves-restricted-evidence
          caller: steward
          method: POST
          endpoint: /api/v1/evidence/resolve
          body: '{"dataset_id":"burial_sites"}'
          expect: allow
        - name: anonymous-denied
          caller: anon
          endpoint: /api/v1/datasets
          expect: deny
        """;

    private static EnvironmentConfig Environment(EngineLab lab, bool opa = true)
    {
        string dir = lab.NewDirectory("policy-cases");
        File.WriteAllText(Path.Combine(dir, "cases.yaml"), Cases);
        return lab.Probing(dir, restrictedIds: "burial_sites")
            .Block("policy_surface", "configmap: kfm-api-config\nkey: policy_bundle\ncases_file: cases.yaml" + (opa ? $"\nopa_status_url: {lab.Host.KfmApiUrl.TrimEnd('/')}/v1/status" : ""))
            .Environment();
    }

    private static string[] Failed(IEnumerable<CheckResult> results) => results.Where(r => r.Verdict != Verdict.Pass).Select(r => r.Check).Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public async Task A_bad_bundle_flips_cases_and_the_good_bundle_passes_them()
    {
        await using var lab = await PlanningLab.StartAsync();
        EnvironmentConfig environment = Environment(lab);

        await lab.SetConfigAsync("policy_bundle", Bad);
        IReadOnlyList<CheckResult> bad = await PolicyCases.RunOnClusterAsync(lab.Client, environment, environment.PolicySurface!.CasesFile!, TimeSpan.FromSeconds(5), CancellationToken.None);
        Assert.Equal(Verdict.Pass, bad.Single(r => r.Check == PolicyCases.BundleCheck).Verdict);
        Assert.Equal(new[] { "B.policy-case/public-denied-restricted", "B.policy-case/steward-reads-restricted", "B.policy-case/steward-resolves-restricted-evidence" }, Failed(bad));
        CheckResult flipped = bad.Single(r => r.Check == "B.policy-case/public-denied-restricted");
        Assert.Contains("flipped: expected deny, the API answered allow", flipped.Summary);
        foreach (CheckResult r in bad)
        {
            Assert.DoesNotContain("burial_sites", r.Summary + string.Join(",", r.Evidence.Values));
            Assert.DoesNotContain(lab.Host.PublicToken, r.Summary + string.Join(",", r.Evidence.Values));
        }

        await lab.SetConfigAsync("policy_bundle", Good);
        IReadOnlyList<CheckResult> good = await PolicyCases.RunOnClusterAsync(lab.Client, environment, environment.PolicySurface!.CasesFile!, TimeSpan.FromSeconds(5), CancellationToken.None);
        Assert.Empty(Failed(good));
        Assert.Equal(5, good.Count(r => r.Check.StartsWith(PolicyCases.CasePrefix, StringComparison.Ordinal)));
        Assert.Equal(Verdict.Pass, good.Single(r => r.Check == PolicyCases.CoverageCheck).Verdict);
    }

    [Fact]
    public async Task OPA_running_another_bundle_fails_the_bundle_check_and_runs_no_case()
    {
        await using var lab = await PlanningLab.StartAsync();
        EnvironmentConfig environment = Environment(lab);
        lab.Host.KfmApi.SetOpaRevision("sha256:" + new string('e', 64));

        IReadOnlyList<CheckResult> results = await PolicyCases.RunOnClusterAsync(lab.Client, environment, environment.PolicySurface!.CasesFile!, TimeSpan.FromSeconds(2), CancellationToken.None);

        CheckResult bundle = Assert.Single(results);
        Assert.Equal((PolicyCases.BundleCheck, Verdict.Fail), (bundle.Check, bundle.Verdict));
        Assert.Contains("OPA reports sha256:" + new string('e', 64) + " as the active revision of kfm-policy, not the target bundle", bundle.Summary);
    }

    [Fact]
    public async Task Without_an_OPA_status_url_the_bundle_check_is_inconclusive_never_a_pass()
    {
        await using var lab = await PlanningLab.StartAsync();
        EnvironmentConfig environment = Environment(lab, opa: false);

        IReadOnlyList<CheckResult> results = await PolicyCases.RunOnClusterAsync(lab.Client, environment, environment.PolicySurface!.CasesFile!, TimeSpan.FromSeconds(2), CancellationToken.None);

        CheckResult bundle = results.Single(r => r.Check == PolicyCases.BundleCheck);
        Assert.Equal(Verdict.Inconclusive, bundle.Verdict);
        Assert.Contains("opa_status_url is not configured", bundle.Summary);
        Assert.Equal(Verdict.Inconclusive, new VerificationSummary { Environment = "lab", Results = results }.PolicyVerdict);
    }

    [Fact]
    public async Task A_policy_rollback_with_wait_runs_the_cases_and_fails_when_the_target_bundle_flips_them()
    {
        await using var lab = await PlanningLab.StartAsync();
        EnvironmentConfig environment = Environment(lab);
        var engine = lab.RollbackEngine();
        long revision = (await lab.Client.AppsV1.ReadNamespacedDeploymentAsync("kfm-api", "kfm")).Metadata.Annotations["deployment.kubernetes.io/revision"] is { } r ? long.Parse(r, System.Globalization.CultureInfo.InvariantCulture) : 0;
        RollbackRequest request = new()
        {
            Environment = environment, Method = RollbackMethod.Cluster, Actor = "tester", IncidentId = "INC-POL", Reason = "bundle denies stewards",
            Surfaces = RollbackSurfaces.Policy, Target = new RollbackTarget(revision, null), Wait = true, Timeout = TimeSpan.FromSeconds(60),
            Force = true, ForceReason = "lab: policy cases test",
        };

        // The last-known-good snapshot holds the good bundle; a bad bundle goes live; the rollback puts the good one back.
        await lab.FreezeSnapshotAsync(environment);
        await lab.SetConfigAsync("policy_bundle", Bad);
        RollbackResult result = await engine.RunAsync(request, await engine.PlanAsync(request, RollbackReporter.Silent, CancellationToken.None), RollbackReporter.Silent, CancellationToken.None);
        Assert.Equal(RollbackOutcome.Succeeded, result.Outcome);
        Assert.Empty(Failed(result.PolicyCases));
        Assert.Equal(5, result.PolicyCases.Count(c => c.Check.StartsWith(PolicyCases.CasePrefix, StringComparison.Ordinal)));

        // A "last-known-good" that was itself bad: the rollback rolls out, and the cases fail it.
        await lab.SetConfigAsync("policy_bundle", Bad);
        await lab.FreezeSnapshotAsync(environment);
        await lab.SetConfigAsync("policy_bundle", "kfm-policy@sha256-" + new string('c', 64));
        revision = long.Parse((await lab.Client.AppsV1.ReadNamespacedDeploymentAsync("kfm-api", "kfm")).Metadata.Annotations["deployment.kubernetes.io/revision"], System.Globalization.CultureInfo.InvariantCulture);
        request = request with { Target = new RollbackTarget(revision, null) };
        result = await engine.RunAsync(request, await engine.PlanAsync(request, RollbackReporter.Silent, CancellationToken.None), RollbackReporter.Silent, CancellationToken.None);
        Assert.Equal(RollbackOutcome.Failed, result.Outcome);
        Assert.Equal(RollbackEngine.PolicyCasesFailed, result.Error?.ErrorId);
        Assert.Contains("B.policy-case/steward-reads-restricted", result.Error!.Message);
        Assert.DoesNotContain("burial_sites", result.Error.Message);
        Assert.DoesNotContain(lab.Host.StewardToken, result.Error.Message);
    }
}
