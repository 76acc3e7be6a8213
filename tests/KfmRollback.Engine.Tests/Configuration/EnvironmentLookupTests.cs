using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using Xunit;
using static KfmRollback.Engine.Tests.Configuration.ConfigTestSupport;

namespace KfmRollback.Engine.Tests.Configuration;

public sealed class EnvironmentLookupTests
{
    private static readonly KfmConfig TwoEnvironments = Load(Minimal.Replace("environments:\n  prod:", "environments:\n  staging:\n    cluster: {namespace: kfm, deployment: kfm-api}\n    gitops: {path: infra, file: f.yaml, kind: helm}\n    freeze: {mechanisms: [{kind: flux-kustomization, name: apps}]}\n    prometheus: {url: 'http://prom.test'}\n    api: {base_url: 'http://api.test', openapi_path: /openapi.json, probe: {callers: {anon: {anonymous: true, role: public}}, endpoints: [{path: /x}]}}\n  prod:"));

    [Fact]
    public void NamesAreSorted() => Assert.Equal(new[] { "prod", "staging" }, TwoEnvironments.EnvironmentNames);

    [Fact]
    public void LookupReturnsTheNamedEnvironment()
    {
        Assert.Equal("staging", TwoEnvironments.GetEnvironment("staging").Name);
        Assert.Equal(GitOpsKind.Helm, TwoEnvironments.GetEnvironment("staging").Gitops.Kind);
        Assert.Equal(GitOpsKind.Kustomize, TwoEnvironments.GetEnvironment("prod").Gitops.Kind);
    }

    [Fact]
    public void UnknownEnvironmentListsKnownNamesAndSuggests()
    {
        var e = Assert.Throws<KfmException>(() => TwoEnvironments.GetEnvironment("stage"));
        Assert.Equal(ConfigErrorIds.EnvironmentNotFound, e.ErrorId);
        Assert.Equal(KfmErrorKind.ObjectNotFound, e.Kind);
        Assert.Equal("stage", e.Target);
        Assert.Equal("Environment 'stage' is not defined in kfm-rollback.yaml. Defined environments: prod, staging. Did you mean 'staging'?", e.Message);
    }

    [Fact]
    public void CaseMismatchIsRefusedButExplained()
    {
        var e = Assert.Throws<KfmException>(() => TwoEnvironments.GetEnvironment("PROD"));
        Assert.Equal(ConfigErrorIds.EnvironmentNotFound, e.ErrorId);
        Assert.EndsWith("Did you mean 'prod'?", e.Message);
    }

    [Fact]
    public void EmptyNameIsNotFound() =>
        Assert.Equal(ConfigErrorIds.EnvironmentNotFound, Assert.Throws<KfmException>(() => TwoEnvironments.GetEnvironment("")).ErrorId);

    [Fact]
    public void EmptyEnvironmentsMapIsRefused()
    {
        var e = LoadFails("environments: {}\n", ConfigErrorIds.ConfigInvalidValue);
        Assert.Equal("kfm-rollback.yaml:1:15: environments must define at least one entry.", e.Message);
    }

    [Fact]
    public void BadEnvironmentNameIsRefused()
    {
        var e = LoadFails(Minimal.Replace("  prod:", "  'prod env':"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("name 'prod env' under environments must start with a letter or digit", e.Message);
    }
}
