using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using Xunit;
using static KfmRollback.Engine.Tests.Configuration.ConfigTestSupport;

namespace KfmRollback.Engine.Tests.Configuration;

/// <summary>Every failure names file:line:column, the key, and what to do.</summary>
public sealed class ConfigErrorTests
{
    [Fact]
    public void MinimalFixtureLoads() => Assert.Equal(new[] { "prod" }, Load(Minimal).EnvironmentNames);

    [Fact]
    public void MalformedYamlReportsFileLineAndColumn()
    {
        var e = LoadFails(Replace("      deployment: kfm-api", "      deployment: [kfm-api"), ConfigErrorIds.ConfigYamlMalformed);
        // Points at the unclosed '[' itself.
        Assert.StartsWith("kfm-rollback.yaml:8:19: the file is not valid YAML", e.Message);
    }

    [Fact]
    public void MappingValueInsideScalarReportsTheSpot()
    {
        var e = LoadFails(Replace("      deployment: kfm-api", "      deployment: kfm-api: extra"), ConfigErrorIds.ConfigYamlMalformed);
        Assert.Matches(@"^kfm-rollback\.yaml:8:\d+: the file is not valid YAML: .*mapping", e.Message);
    }

    [Fact]
    public void TabIndentationIsMalformed()
    {
        var e = LoadFails(Replace("      namespace: kfm", "\tnamespace: kfm"), ConfigErrorIds.ConfigYamlMalformed);
        Assert.Matches(@"^kfm-rollback\.yaml:\d+:\d+: ", e.Message);
    }

    [Fact]
    public void DuplicateKeyIsMalformed()
    {
        var e = LoadFails(InsertAfter("      namespace: kfm", "      namespace: other"), ConfigErrorIds.ConfigYamlMalformed);
        Assert.Contains("kfm-rollback.yaml:8:", e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("# only a comment\n")]
    public void EmptyFileIsMalformed(string text) =>
        Assert.StartsWith("kfm-rollback.yaml:1:1:", LoadFails(text, ConfigErrorIds.ConfigYamlMalformed).Message);

    [Fact]
    public void TopLevelListIsMalformed() =>
        Assert.Contains("top level must be a mapping", LoadFails("- a\n- b\n", ConfigErrorIds.ConfigYamlMalformed).Message);

    [Fact]
    public void UnknownTopLevelKeyIsReportedWithSuggestion()
    {
        var e = LoadFails("enviroments:\n  prod: {}\n", ConfigErrorIds.ConfigUnknownKey);
        Assert.Equal("kfm-rollback.yaml:1:1: unknown key 'enviroments' at the top level; did you mean 'environments'?", e.Message);
        Assert.Equal("enviroments", e.Target);
    }

    [Fact]
    public void UnknownKeyUnderClusterHasExactPositionAndSuggestion()
    {
        var e = LoadFails(Replace("      namespace: kfm", "      namspace: kfm"), ConfigErrorIds.ConfigUnknownKey);
        Assert.Equal("kfm-rollback.yaml:7:7: unknown key 'namspace' under environments.prod.cluster; did you mean 'namespace'?", e.Message);
    }

    [Fact]
    public void UnknownKeyInsideListItemNamesTheIndex()
    {
        var e = LoadFails(InsertAfter("          name: kfm-api", "          namepsace: argocd"), ConfigErrorIds.ConfigUnknownKey);
        Assert.Equal("kfm-rollback.yaml:18:11: unknown key 'namepsace' under environments.prod.freeze.mechanisms[0]; did you mean 'namespace'?", e.Message);
    }

    [Fact]
    public void UnknownKeyFiveLevelsDownInsideAMapEntry()
    {
        var e = LoadFails(Replace("            role: public", "            roel: public"), ConfigErrorIds.ConfigUnknownKey);
        Assert.Equal("kfm-rollback.yaml:27:13: unknown key 'roel' under environments.prod.api.probe.callers.anon; did you mean 'role'?", e.Message);
    }

    [Fact]
    public void UnknownKeyInFlowMappingHasItsOwnColumn()
    {
        var e = LoadFails(Replace("      url: http://prom.test:9090", "      url: http://prom.test:9090\n      thresholds: {max_p95_ms: 300, min_request: 5}"), ConfigErrorIds.ConfigUnknownKey);
        Assert.Equal("kfm-rollback.yaml:20:37: unknown key 'min_request' under environments.prod.prometheus.thresholds; did you mean 'min_requests'?", e.Message);
    }

    [Fact]
    public void UnknownKeyWithoutCloseMatchListsKnownKeys()
    {
        var e = LoadFails(InsertAfter("      deployment: kfm-api", "      flavour: vanilla"), ConfigErrorIds.ConfigUnknownKey);
        Assert.DoesNotContain("did you mean", e.Message);
        Assert.Contains("Known keys: kubeconfig_path, context, in_cluster", e.Message);
    }

    [Theory]
    [InlineData("      token: ghp_abc", "'token_env: VARIABLE_NAME' or 'token_file: path/to/file'")]
    [InlineData("      password: hunter2", "'token_env: VARIABLE_NAME' or 'token_file: path/to/file'")]
    [InlineData("      client_secret: s3cr3t", "'token_env: VARIABLE_NAME'")]
    public void LiteralSecretKeysAreRefusedWithoutEchoingTheValue(string line, string advice)
    {
        var e = LoadFails(InsertAfter("      deployment: kfm-api", line), ConfigErrorIds.ConfigInvalidValue);
        Assert.StartsWith("kfm-rollback.yaml:9:7: key '", e.Message);
        Assert.Contains("looks like a literal secret", e.Message);
        Assert.Contains(advice, e.Message);
        var value = line.Split(": ")[1];
        Assert.DoesNotContain(value, e.Message);
    }

    [Fact]
    public void LiteralSecretInSectionWithoutReferencesStillRefused()
    {
        var e = LoadFails(InsertAfter("  receipt_store: receipts", "  api_token: abc"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("key 'api_token' under defaults looks like a literal secret", e.Message);
        Assert.Contains("'*_env'", e.Message);
    }

    [Fact]
    public void SecretInTokenEnvIsRefusedWithoutEchoingIt()
    {
        var e = LoadFails(InsertAfter("      deployment: kfm-api", "      token_env: ghp-Abc123/xyz"), ConfigErrorIds.ConfigInvalidValue);
        Assert.StartsWith("kfm-rollback.yaml:9:18: environments.prod.cluster.token_env must be the name of an environment variable", e.Message);
        Assert.DoesNotContain("ghp-Abc123", e.Message);
    }

    [Fact]
    public void CredentialsInUrlAreRefused()
    {
        var e = LoadFails(Replace("      url: http://prom.test:9090", "      url: http://admin:pw@prom.test:9090"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("must not carry credentials", e.Message);
        Assert.DoesNotContain("admin:pw", e.Message);
    }

    [Fact]
    public void StringWhereIntegerIsNeededNamesKeyAndType()
    {
        var e = LoadFails(InsertAfter("          - path: /api/v1/datasets", "        samples: thirty"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Equal("kfm-rollback.yaml:30:18: environments.prod.api.probe.samples must be an integer (got 'thirty').", e.Message);
    }

    [Theory]
    [InlineData("      in_cluster: yes", "environments.prod.cluster.in_cluster must be a boolean (true or false) (got 'yes').")]
    [InlineData("      lease_duration: 15", "environments.prod.cluster.lease_duration must be a duration such as 30s, 15m, 1h or 1h30m (got '15').")]
    [InlineData("      lease_duration: [15m]", "environments.prod.cluster.lease_duration must be a duration such as 30s, 15m, 1h or 1h30m, but is a list.")]
    [InlineData("      container: {name: api}", "environments.prod.cluster.container must be text, but is a mapping.")]
    public void WrongTypesNameKeyAndExpectedType(string line, string message)
    {
        var e = LoadFails(InsertAfter("      deployment: kfm-api", line), ConfigErrorIds.ConfigInvalidValue);
        Assert.EndsWith(message, e.Message);
        Assert.StartsWith("kfm-rollback.yaml:9:", e.Message);
    }

    [Fact]
    public void SectionGivenAsScalarIsATypeError()
    {
        var e = LoadFails(Replace("    freeze:", "    freeze: argocd\n    unused:"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("environments.prod.freeze must be a mapping of keys, but is a single value.", e.Message);
    }

    [Fact]
    public void NumberOutOfRangeIsRefused()
    {
        var e = LoadFails(InsertAfter("          - path: /api/v1/datasets", "        concurrency: 500"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("environments.prod.api.probe.concurrency must be between 1 and 64 (got 500).", e.Message);
    }

    [Fact]
    public void BadEnumListsAllowedValues()
    {
        var e = LoadFails(Replace("      kind: kustomize", "      kind: helmfile"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Equal("kfm-rollback.yaml:12:13: environments.prod.gitops.kind must be one of: kustomize, helm, raw (got 'helmfile').", e.Message);
    }

    [Theory]
    [InlineData("    - kind: argo", "freeze.mechanisms[0].kind must be one of: argocd, flux-kustomization, flux-helmrelease, killswitch")]
    public void BadFreezeKind(string line, string message)
    {
        var e = LoadFails(Replace("        - kind: argocd", "    " + line), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void BadPrProviderAndFailClosedMode()
    {
        var pr = LoadFails(InsertAfter("      image_name: kfm-api", "      pr:\n        provider: gitlab"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("gitops.pr.provider must be one of: github, azure-devops, none (got 'gitlab')", pr.Message);

        var mode = LoadFails(InsertAfter("          - path: /api/v1/datasets", "    fail_closed:\n      mode: return-503"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("fail_closed.mode must be one of: scale-to-zero, maintenance-flag (got 'return-503')", mode.Message);
    }

    [Fact]
    public void MissingRequiredKeyIsReportedAtItsSection()
    {
        var e = LoadFails(Replace("      deployment: kfm-api", ""), ConfigErrorIds.ConfigMissingKey);
        Assert.Equal("kfm-rollback.yaml:7:7: missing required key 'deployment' under environments.prod.cluster.", e.Message);
    }

    [Fact]
    public void NullValueCountsAsMissing()
    {
        var e = LoadFails(Replace("      deployment: kfm-api", "      deployment:"), ConfigErrorIds.ConfigMissingKey);
        Assert.Contains("missing required key 'deployment'", e.Message);
    }

    [Fact]
    public void ClusterIsTheOnlyRequiredSection()
    {
        var e = LoadFails("defaults: { incident_journal: j, receipt_store: r }\nenvironments:\n  prod:\n    approval_required: false\n", ConfigErrorIds.ConfigMissingKey);
        Assert.Contains("missing required key 'cluster' under environments.prod.", e.Message);
    }

    [Fact]
    public void ClusterOnlyEnvironmentOfSixLinesLoadsAndNamesAMissingSectionWhenOneIsNeeded()
    {
        var prod = Load("defaults: { incident_journal: j, receipt_store: r }\nenvironments:\n  prod:\n    cluster:\n      namespace: kfm\n      deployment: kfm-api\n").GetEnvironment("prod");
        Assert.Empty(prod.FreezeMechanisms);
        Assert.Null(prod.GitopsSection);
        foreach (var (section, read) in new (string, Func<object>)[] { ("api", () => prod.Api), ("prometheus", () => prod.Prometheus), ("gitops", () => prod.Gitops), ("freeze", () => prod.Freeze) })
        {
            var e = Assert.Throws<ConfigSectionMissingException>(read);
            Assert.Equal("ConfigSectionMissing", e.ErrorId);
            Assert.Contains($"'{section}' section of environment 'prod'", e.Message);
            Assert.Contains($"environments.prod.{section}", e.Message);
            Assert.Contains("Test-KfmPolicyInvariant needs", e.For("Test-KfmPolicyInvariant").Message);
        }
    }

    [Fact]
    public void KillSwitchWithoutGitOpsSectionIsRefused()
    {
        var e = LoadFails("defaults: { incident_journal: j, receipt_store: r }\nenvironments:\n  prod:\n    cluster: { namespace: kfm, deployment: kfm-api }\n    freeze: { mechanisms: [ { kind: killswitch } ] }\n", ConfigErrorIds.ConfigMissingKey);
        Assert.Contains("'gitops'", e.Message);
    }

    [Fact]
    public void MissingEnvironmentsIsReported()
    {
        var e = LoadFails("defaults:\n  time_zone: UTC\n", ConfigErrorIds.ConfigMissingKey);
        Assert.Contains("missing required key 'environments' at the top level", e.Message);
    }

    [Fact]
    public void ReceiptsRequiredWhenNoDefault()
    {
        var e = LoadFails(Replace("  receipt_store: receipts", ""), ConfigErrorIds.ConfigMissingKey);
        Assert.Contains("missing required key 'receipts' under environments.prod", e.Message);
        Assert.Contains("defaults.receipt_store", e.Message);
    }

    [Fact]
    public void EitherOrKeysMustNotBothBeSet()
    {
        var e = LoadFails(InsertAfter("      path: infra", "      url: https://git.test/kfm/infra.git"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Equal("kfm-rollback.yaml:11:12: environments.prod.gitops.url cannot be combined with 'path'; set only one of 'url', 'path'.", e.Message);
    }

    [Fact]
    public void EitherOrKeysNeedOne()
    {
        var e = LoadFails(Replace("      path: infra", ""), ConfigErrorIds.ConfigMissingKey);
        Assert.Contains("environments.prod.gitops needs one of 'url', 'path'", e.Message);
    }

    [Fact]
    public void IdPlaceholderRequiresRestrictedIdSourceButNeverInline()
    {
        var e = LoadFails(Replace("          - path: /api/v1/datasets", "          - path: /api/v1/datasets/{id}"), ConfigErrorIds.ConfigMissingKey);
        Assert.Contains("needs one of 'restricted_ids_env', 'restricted_ids_file'", e.Message);

        var inline = LoadFails(InsertAfter("          - path: /api/v1/datasets", "        restricted_ids: [secret_site_1]"), ConfigErrorIds.ConfigUnknownKey);
        Assert.Contains("did you mean 'restricted_ids_env'?", inline.Message);
    }

    [Fact]
    public void ProbeNeedsAPublicCaller()
    {
        var e = LoadFails(Replace("            anonymous: true", "            token_env: STEWARD").Replace("role: public", "role: restricted"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("api.probe.callers needs at least one caller with role public", e.Message);
    }

    [Fact]
    public void CallerWithTwoCredentialsIsRefused()
    {
        var e = LoadFails(InsertAfter("            anonymous: true", "            token_env: PUBLIC_TOKEN"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("callers.anon.anonymous conflicts with another credential", e.Message);
    }

    [Fact]
    public void KillSwitchNeedsItsPath()
    {
        var e = LoadFails(InsertAfter("          name: kfm-api", "        - kind: killswitch"), ConfigErrorIds.ConfigMissingKey);
        Assert.Contains("missing required key 'kill_switch_path' under environments.prod.gitops", e.Message);
    }

    [Fact]
    public void ArgoMechanismNeedsName()
    {
        var e = LoadFails(Replace("          name: kfm-api", ""), ConfigErrorIds.ConfigMissingKey);
        Assert.Contains("missing required key 'name' under environments.prod.freeze.mechanisms[0]", e.Message);
    }

    [Fact]
    public void GithubRepositoryShapeIsChecked()
    {
        var e = LoadFails(InsertAfter("      image_name: kfm-api", "      pr:\n        provider: github\n        repository: just-a-name\n        token_env: GH"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("gitops.pr.repository must be owner/name", e.Message);
    }

    [Fact]
    public void MaintenanceFlagNeedsConfigMap()
    {
        var e = LoadFails(InsertAfter("          - path: /api/v1/datasets", "    fail_closed:\n      mode: maintenance-flag"), ConfigErrorIds.ConfigMissingKey);
        Assert.Contains("missing required key 'configmap' under environments.prod.fail_closed", e.Message);
    }

    [Fact]
    public void KubernetesNamesAreChecked()
    {
        var e = LoadFails(Replace("      namespace: kfm", "      namespace: KFM_Prod"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Equal("kfm-rollback.yaml:7:18: environments.prod.cluster.namespace must be a lowercase RFC 1123 label (a-z, 0-9, '-', at most 63 characters) (got 'KFM_Prod').", e.Message);
    }

    [Fact]
    public void RepoPathsMayNotEscapeTheRepository()
    {
        var e = LoadFails(Replace("      file: apps/kfm-api/kustomization.yaml", "      file: ../outside.yaml"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("gitops.file must be a path relative to the repository root", e.Message);
    }

    [Fact]
    public void ErrorsAreInvalidDataKind()
    {
        var e = LoadFails(Replace("      kind: kustomize", "      kind: nope"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Equal(KfmErrorKind.InvalidData, e.Kind);
        Assert.Equal("environments.prod.gitops.kind", e.Target);
    }
}
