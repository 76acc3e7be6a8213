using KfmRollback.Engine.Adapters.Http;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Tests.Planning;
using KfmRollback.Engine.Tests.Support;
using KfmRollback.Engine.Verification;
using Xunit;

namespace KfmRollback.Engine.Tests.Verification;

/// <summary>One in-process lab for the contract tests, as the planning tests start it; each test deploys the builds it needs.</summary>
public sealed class ContractLab : EngineLab
{
    public ContractLab() : base(PlanningLab.Setup()) { }
}

/// <summary>Checklist C against the lab's stand-in API: each contract build judged by the spec-to-spec diff.</summary>
public sealed class ContractLabTests(ContractLab lab) : IClassFixture<ContractLab>
{
    private EngineLab Lab => lab;

    /// <summary>The lab's API probed by public-user (whose token is in KFM_CONTRACT_TEST_TOKEN), configured in a new directory <paramref name="snapshots"/>.</summary>
    private EnvironmentConfig Environment(string openapiPath, string snapshots, bool probePost = false)
    {
        System.Environment.SetEnvironmentVariable("KFM_CONTRACT_TEST_TOKEN", Lab.Host.PublicToken);
        return Lab.Configure().In(snapshots).Block("api", $"""
            base_url: {Lab.Host.KfmApiUrl}
            openapi_path: {openapiPath}
            contract_snapshot_dir: {snapshots}/contracts
            probe:
              callers:
                public-user: {"{"} token_env: KFM_CONTRACT_TEST_TOKEN, role: public {"}"}
              endpoints:
                - path: /api/v1/datasets
            """ + (probePost ? "\n    - path: /api/v1/evidence/resolve\n      method: POST" : "")).Environment();
    }

    private string NewDirectory() => Lab.NewDirectory("contract");

    private Task<IReadOnlyList<CheckResult>> Run(EnvironmentConfig environment, string build, bool record = false) =>
        ContractChecks.RunAsync(environment, Lab.Digest(build), record, CancellationToken.None);

    /// <summary>Records good-1.5.0's contract as last known good, then deploys <paramref name="build"/> and checks it.</summary>
    private async Task<IReadOnlyList<CheckResult>> AfterGood(EnvironmentConfig environment, string build)
    {
        await Lab.DeployAsync("good-1.5.0");
        IReadOnlyList<CheckResult> good = await Run(environment, "good-1.5.0", record: true);
        Assert.All(good, r => Assert.True(r.Verdict == Verdict.Pass, $"{r.Check}: {r.Summary}"));
        await Lab.DeployAsync(build);
        return await Run(environment, build);
    }

    [Theory]
    [InlineData("/api/v1/openapi.json")]
    [InlineData("/api/v1/openapi.yaml")]
    public async Task A_good_build_passes_every_operation_and_records_its_specification_as_served(string openapiPath)
    {
        string dir = NewDirectory();
        await Lab.DeployAsync("good-1.5.0");

        IReadOnlyList<CheckResult> results = await Run(Environment(openapiPath, dir, probePost: true), "good-1.5.0", record: true);

        Assert.All(results, r => Assert.True(r.Verdict == Verdict.Pass, $"{r.Check}: {r.Summary}"));
        Assert.Equal(new[] { "C.smoke/api/v1/meta", "C.smoke/api/v1/datasets", "C.smoke/api/v1/datasets/{id}", "C.smoke/api/v1/stac/items",
            "C.smoke.post/api/v1/evidence/resolve", "C.error-model", "C.no-breaking-change", "C.spec-diff" }, results.Select(r => r.Check));
        string recorded = Path.Combine(dir, "contracts", "openapi", Lab.Digest("good-1.5.0").Replace(':', '-') + Path.GetExtension(openapiPath));
        Assert.True(File.Exists(recorded), recorded);
        Assert.Equal("the specification matches the last-known-good one", results.Single(r => r.Check == "C.spec-diff").Summary);
    }

    [Fact]
    public async Task An_unlisted_post_is_named_not_called()
    {
        await Lab.DeployAsync("good-1.5.0");

        IReadOnlyList<CheckResult> results = await Run(Environment("/api/v1/openapi.json", NewDirectory()), "good-1.5.0");

        CheckResult coverage = Assert.Single(results, r => r.Check == "C.smoke-coverage");
        Assert.Equal(Verdict.Pass, coverage.Verdict);
        Assert.Contains("POST /api/v1/evidence/resolve", coverage.Summary, StringComparison.Ordinal);
        Assert.DoesNotContain(results, r => r.Check.StartsWith("C.smoke.post", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("bad-contract-field", "/api/v1/openapi.json", "GET /api/v1/datasets/{id} 200 response field title: removed")]
    [InlineData("bad-contract-type", "/api/v1/openapi.yaml", "GET /api/v1/datasets 200 response field items[].size_bytes: retyped from integer to string")]
    [InlineData("bad-contract-path", "/api/v1/openapi.json", "GET /api/v1/stac/items: path removed")]
    [InlineData("bad-contract-param", "/api/v1/openapi.yaml", "GET /api/v1/stac/items query parameter collection: new required parameter")]
    [InlineData("bad-contract-enum", "/api/v1/openapi.json", "GET /api/v1/datasets query parameter policy_label: enum value \"quarantine\" removed")]
    public async Task Each_breaking_build_fails_the_spec_diff_naming_the_change(string build, string openapiPath, string change)
    {
        IReadOnlyList<CheckResult> results = await AfterGood(Environment(openapiPath, NewDirectory()), build);

        CheckResult diff = Assert.Single(results, r => r.Check == "C.spec-diff");
        Assert.Equal(Verdict.Fail, diff.Verdict);
        Assert.Contains(change, diff.Evidence.Where(e => e.Key.StartsWith("breaking ", StringComparison.Ordinal)).Select(e => e.Value));
        Assert.Contains(change, diff.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_added_optional_field_passes_with_a_note()
    {
        IReadOnlyList<CheckResult> results = await AfterGood(Environment("/api/v1/openapi.yaml", NewDirectory()), "additive-contract");

        Assert.All(results, r => Assert.True(r.Verdict == Verdict.Pass, $"{r.Check}: {r.Summary}"));
        CheckResult diff = Assert.Single(results, r => r.Check == "C.spec-diff");
        Assert.Equal("0", diff.Evidence["breaking"]);
        Assert.Contains("GET /api/v1/datasets/{id} 200 response field license: added (optional)", diff.Evidence.Values);
        Assert.StartsWith("no breaking change since the last-known-good specification; noted:", diff.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failing_build_is_never_recorded_as_known_good()
    {
        string dir = NewDirectory();
        EnvironmentConfig environment = Environment("/api/v1/openapi.json", dir);
        await Lab.DeployAsync("bad-contract");

        IReadOnlyList<CheckResult> results = await Run(environment, "bad-contract", record: true);

        Assert.Equal(Verdict.Inconclusive, Assert.Single(results, r => r.Check == "C.record").Verdict);
        Assert.False(Directory.Exists(Path.Combine(dir, "contracts", "openapi")));
        Assert.Equal(Verdict.Inconclusive, results.Single(r => r.Check == "C.spec-diff").Verdict);
    }
}
