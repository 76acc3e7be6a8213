using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Configuration.Binding;
using Xunit;
using static KfmRollback.Engine.Tests.Configuration.ConfigTestSupport;

namespace KfmRollback.Engine.Tests.Configuration;

/// <summary>Values come out typed, defaulted and resolved the way later cmdlets rely on.</summary>
public sealed class ConfigValueTests
{
    [Theory]
    [InlineData("30s", 0, 0, 30, 0)]
    [InlineData("15m", 0, 15, 0, 0)]
    [InlineData("1h", 1, 0, 0, 0)]
    [InlineData("1h30m", 1, 30, 0, 0)]
    [InlineData("2m500ms", 0, 2, 0, 500)]
    public void DurationsParse(string text, int h, int m, int s, int ms)
    {
        Assert.True(DurationParser.TryParse(text, out var value));
        Assert.Equal(new TimeSpan(0, h, m, s, ms), value);
        Assert.Equal(text, DurationParser.Format(value));
    }

    [Theory]
    [InlineData("15")]
    [InlineData("15 m")]
    [InlineData("m")]
    [InlineData("1.5h")]
    [InlineData("-5m")]
    [InlineData("15min")]
    [InlineData("")]
    public void MalformedDurationsAreRefused(string text) => Assert.False(DurationParser.TryParse(text, out _));

    [Fact]
    public void DurationKeysBecomeTimeSpans()
    {
        var prod = Prod(InsertAfter("      url: http://prom.test:9090", "      baseline_window: 1h\n      evaluation_window: 90s"));
        Assert.Equal(TimeSpan.FromHours(1), prod.Prometheus.BaselineWindow);
        Assert.Equal(TimeSpan.FromSeconds(90), prod.Prometheus.EvaluationWindow);
        Assert.Equal(TimeSpan.FromMinutes(15), prod.Cluster.LeaseDuration); // default
    }

    [Fact]
    public void ZeroDurationIsRefused()
    {
        var e = LoadFails(InsertAfter("      deployment: kfm-api", "      lease_duration: 0s"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("must be a positive duration", e.Message);
    }

    [Fact]
    public void RelativePathsResolveAgainstConfigDirectory()
    {
        var config = Load(InsertAfter("      deployment: kfm-api", "      kubeconfig_path: kube/prod.config\n      token_file: /abs/token"));
        var prod = config.GetEnvironment("prod");
        Assert.Equal(Path.GetFullPath("/srv/kfm/kube/prod.config"), prod.Cluster.KubeconfigPath);
        Assert.Equal(Path.GetFullPath("/abs/token"), prod.Cluster.TokenFile);
        Assert.Equal(Path.GetFullPath("/srv/kfm/infra"), prod.Gitops.Path);
        Assert.Equal(Path.GetFullPath("/srv/kfm/contracts"), prod.Api.ContractSnapshotDir);
        // Repository paths stay relative to the repository, not the config file.
        Assert.Equal("apps/kfm-api/kustomization.yaml", prod.Gitops.File);
    }

    [Fact]
    public void LoadResolvesAgainstTheFilesOwnDirectory()
    {
        var dir = Directory.CreateTempSubdirectory("kfm-load-").FullName;
        try
        {
            var file = Path.Combine(dir, "conf", "kfm-rollback.yaml");
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            File.WriteAllText(file, Minimal);
            var prod = KfmConfigLoader.Load(file).GetEnvironment("prod");
            Assert.Equal(Path.Combine(dir, "conf", "infra"), prod.Gitops.Path);
            Assert.Equal(Path.Combine(dir, "conf", "receipts"), prod.Receipts!.Store);
            Assert.Equal(Path.Combine(dir, "conf", "journal"), prod.Incidents!.Journal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ErrorsFromLoadNameTheFile()
    {
        var dir = Directory.CreateTempSubdirectory("kfm-load-").FullName;
        try
        {
            var file = Path.Combine(dir, "kfm-rollback.yaml");
            File.WriteAllText(file, "environments:\n  prod:\n    clustr: {}\n");
            var e = Assert.Throws<KfmRollback.Engine.Core.KfmException>(() => KfmConfigLoader.Load(file));
            Assert.StartsWith($"{file}:3:5: unknown key 'clustr'", e.Message);
            var missing = Assert.Throws<KfmRollback.Engine.Core.KfmException>(() => KfmConfigLoader.Load(Path.Combine(dir, "none.yaml")));
            Assert.Equal(ConfigErrorIds.ConfigNotFound, missing.ErrorId);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void HomeDirectoryIsExpanded()
    {
        var prod = Prod(InsertAfter("      deployment: kfm-api", "      kubeconfig_path: ~/.kube/kfm"));
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        Assert.Equal(Path.Combine(home, ".kube", "kfm"), prod.Cluster.KubeconfigPath);
    }

    [Fact]
    public void KubeconfigFallsBackToEnvironmentThenHome()
    {
        var cluster = Prod(Minimal).Cluster;
        Assert.Equal("/k/a", cluster.ResolveKubeconfigPath($"/k/a{Path.PathSeparator}/k/b", "/home/op"));
        Assert.Equal(Path.Combine("/home/op", ".kube", "config"), cluster.ResolveKubeconfigPath(null, "/home/op"));
        Assert.Equal(Path.Combine("/home/op", ".kube", "config"), cluster.ResolveKubeconfigPath("", "/home/op"));
    }

    [Fact]
    public void InClusterCannotBeCombinedWithKubeconfig()
    {
        var e = LoadFails(InsertAfter("      deployment: kfm-api", "      in_cluster: true\n      context: admin"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("cluster.context cannot be combined with in_cluster: true", e.Message);
    }

    [Fact]
    public void DefaultsApplyWhenKeysAreOmitted()
    {
        var prod = Prod(Minimal);
        Assert.Equal(new[] { "/api/v1/healthz", "/api/v1/readyz" }, prod.Api.HealthPaths);
        Assert.Equal(30, prod.Api.Probe.Samples);
        Assert.Equal(8, prod.Api.Probe.Concurrency);
        Assert.Equal(7, prod.Api.Probe.AllowedPolicyLabels.Count);
        Assert.Contains("restricted_sensitive_location", prod.Api.Probe.AllowedPolicyLabels);
        Assert.Equal("main", prod.Gitops.Branch);
        Assert.False(prod.Gitops.AllowDirectPush);
        Assert.Equal(PrProvider.None, prod.Gitops.Pr.Provider);
        Assert.Equal("image.digest", prod.Gitops.HelmValues.Digest);
        Assert.True(prod.ApprovalRequired);
        Assert.Equal("argocd", prod.Freeze.Mechanisms[0].EffectiveNamespace);
        Assert.Equal("kfm-rollback-kfm-api", prod.Cluster.EffectiveLeaseName);
        Assert.Equal(0.01, prod.Prometheus.Thresholds.MaxErrorRatio);
        Assert.Equal(ProbeMethod.Get, prod.Api.Probe.Endpoints[0].Method);
        Assert.True(prod.Api.Probe.Endpoints[0].Governed);
        Assert.Equal("America/Chicago", Load(Minimal).Defaults.TimeZone);
        Assert.Equal("prod", prod.Name);
    }

    [Fact]
    public void EnvironmentSettingsOverrideDefaults()
    {
        var prod = Prod(InsertAfter("          - path: /api/v1/datasets", "    receipts:\n      store: own-receipts\n    incidents:\n      journal: own-journal"));
        Assert.Equal(Path.GetFullPath("/srv/kfm/own-receipts"), prod.Receipts!.Store);
        Assert.Equal(Path.GetFullPath("/srv/kfm/own-journal"), prod.Incidents!.Journal);
    }

    [Fact]
    public void DefaultQueriesRenderWithSelectorAndWindow()
    {
        var prometheus = Prod(Minimal).Prometheus;
        var query = prometheus.Render(prometheus.Queries.ErrorRatio, TimeSpan.FromMinutes(5));
        Assert.Equal("(sum(rate(http_requests_total{job=\"kfm-api\",code=~\"5..\"}[5m])) or vector(0)) / sum(rate(http_requests_total{job=\"kfm-api\"}[5m]))", query);
        Assert.Contains("http_request_duration_seconds_bucket{job=\"kfm-api\"}[10m]",
            prometheus.Render(prometheus.Queries.P95, prometheus.EvaluationWindow));
    }

    [Fact]
    public void QueryWithoutWindowPlaceholderIsRefused()
    {
        var e = LoadFails(InsertAfter("      url: http://prom.test:9090", "      queries:\n        p99: histogram_quantile(0.99, x[5m])"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("prometheus.queries.p99 must use the {window} placeholder", e.Message);
    }

    [Theory]
    [InlineData("/relative")]
    [InlineData("prom.test:9090")]
    [InlineData("ftp://prom.test")]
    public void UrlsMustBeAbsoluteHttp(string url)
    {
        var e = LoadFails(Replace("      url: http://prom.test:9090", $"      url: {url}"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("prometheus.url must be an absolute http:// or https:// URL", e.Message);
    }

    [Fact]
    public void ApiPathsMustStartWithSlash()
    {
        var e = LoadFails(InsertAfter("      contract_snapshot_dir: contracts", "      health_paths: [/healthz, readyz]"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("api.health_paths[1] must be an absolute URL path starting with '/'", e.Message);
    }

    [Theory]
    [InlineData("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", true)]
    [InlineData("sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", false)]
    [InlineData("sha256:0123", false)]
    [InlineData("md5:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", false)]
    public void DigestsAreSha256With64LowercaseHex(string digest, bool valid)
    {
        var yaml = InsertAfter("          - path: /api/v1/datasets", $"    policy_surface:\n      annotation: kfm.io/policy-bundle\n      known_good_bundle_digest: \"{digest}\"");
        if (valid)
            Assert.Equal(digest, Prod(yaml).PolicySurface!.KnownGoodBundleDigest);
        else
            Assert.Contains("must be a digest: 'sha256:' followed by 64 lowercase hex digits",
                LoadFails(yaml, ConfigErrorIds.ConfigInvalidValue).Message);
    }

    [Fact]
    public void PolicySurfaceNeedsExactlyOneLocation()
    {
        var both = InsertAfter("          - path: /api/v1/datasets", "    policy_surface:\n      env: OPA_BUNDLE\n      annotation: kfm.io/policy-bundle");
        Assert.Contains("policy_surface.annotation cannot be combined with 'env'", LoadFails(both, ConfigErrorIds.ConfigInvalidValue).Message);
        var keyless = InsertAfter("          - path: /api/v1/datasets", "    policy_surface:\n      configmap: kfm-policy");
        Assert.Contains("missing required key 'key' under environments.prod.policy_surface", LoadFails(keyless, ConfigErrorIds.ConfigMissingKey).Message);
    }

    [Fact]
    public void InvalidRegexIsRefused()
    {
        var e = LoadFails(InsertAfter("          - path: /api/v1/datasets", "    observability:\n      restricted_id_patterns: ['site_[0-9']"), ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains("observability.restricted_id_patterns[0] is not a valid regular expression", e.Message);
    }

    [Fact]
    public void InvalidTimeZoneIsRefused()
    {
        var e = LoadFails(Replace("  receipt_store: receipts", "  receipt_store: receipts\n  time_zone: Mars/Olympus"), ConfigErrorIds.ConfigInvalidValue);
        Assert.StartsWith("kfm-rollback.yaml:4:14: defaults.time_zone must be an IANA time zone id", e.Message);
    }

    [Fact]
    public void YamlSpellingsMatchEnums()
    {
        Assert.Equal("azure-devops", ConfigSchema.YamlName(PrProvider.AzureDevops));
        Assert.Equal("flux-helmrelease", ConfigSchema.YamlName(FreezeKind.FluxHelmrelease));
        Assert.Equal("scale-to-zero", ConfigSchema.YamlName(FailClosedMode.ScaleToZero));
        Assert.Equal("POST", ConfigSchema.YamlName(ProbeMethod.Post));
    }

    [Theory]
    [InlineData("namspace", "namespace")]
    [InlineData("deploymnet", "deployment")]
    [InlineData("kubconfig_path", "kubeconfig_path")]
    [InlineData("deploy", "deployment")]
    [InlineData("zzzz", null)]
    public void SuggestionsUseEditDistance(string typo, string? expected) =>
        Assert.Equal(expected, KeySuggester.Nearest(typo, new[] { "namespace", "deployment", "kubeconfig_path", "context" }));
}
