using System.Reflection;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Configuration.Binding;
using Xunit;

namespace KfmRollback.Engine.Tests.Configuration;

/// <summary>The shipped example must load and the documentation must cover every key, so neither can rot.</summary>
public sealed class ExampleAndDocsTests
{
    private static readonly string Root = ConfigTestSupport.RepoRoot();
    private static readonly string ExamplePath = Path.Combine(Root, "module", "kfm-rollback.example.yaml");
    private static readonly string DocsPath = Path.Combine(Root, "docs", "configuration.md");

    [Fact]
    public void ExampleLoadsWithEveryEnvironment()
    {
        var config = KfmConfigLoader.Load(ExamplePath);
        Assert.Equal(new[] { "dr", "prod", "staging" }, config.EnvironmentNames);
        Assert.Null(config.GetEnvironment("dr").ApiSection); // the cluster-only environment

        var prod = config.GetEnvironment("prod");
        Assert.Equal("kfm", prod.Cluster.Namespace);
        Assert.Equal("kfm-api", prod.Cluster.Deployment);
        Assert.Equal(GitOpsKind.Kustomize, prod.Gitops.Kind);
        Assert.Equal(new[] { FreezeKind.Argocd, FreezeKind.Killswitch }, prod.Freeze.Mechanisms.Select(m => m.Kind));
        Assert.Equal(PrProvider.Github, prod.Gitops.Pr.Provider);
        Assert.Equal(200, prod.Prometheus.Thresholds.MinRequests);
        Assert.Equal(3, prod.Api.Probe.Callers.Count);
        Assert.Equal(ProbeMethod.Post, prod.Api.Probe.Endpoints.Single(e => e.Path.EndsWith("/resolve")).Method);
        Assert.Equal(FailClosedMode.MaintenanceFlag, prod.FailClosed!.Mode);
        Assert.NotNull(prod.Receipts!.Git);
        Assert.Equal(Path.Combine(Root, "module", "ops", "incidents"), prod.Incidents!.Journal); // inherited default
        Assert.Equal(new[] { ChannelKind.Slack, ChannelKind.Teams, ChannelKind.Pagerduty, ChannelKind.Statuspage }, prod.Comms!.Channels.Select(c => c.Kind));

        var staging = config.GetEnvironment("staging");
        Assert.Equal(GitOpsKind.Helm, staging.Gitops.Kind);
        Assert.Equal("api.image.tag", staging.Gitops.HelmValues.Tag);
        Assert.Equal(new[] { FreezeKind.FluxHelmrelease, FreezeKind.FluxKustomization }, staging.Freeze.Mechanisms.Select(m => m.Kind));
        Assert.Equal("flux-system", staging.Freeze.Mechanisms[1].EffectiveNamespace);
        Assert.Equal(PrProvider.AzureDevops, staging.Gitops.Pr.Provider);
        Assert.Equal(FailClosedMode.ScaleToZero, staging.FailClosed!.Mode);
        Assert.Equal(Path.Combine(Root, "module", "ops", "receipts"), staging.Receipts!.Store);
        Assert.False(staging.ApprovalRequired);

        var fleet = config.GetFleet("all-api");
        Assert.Equal(new[] { "staging", "prod" }, fleet.Waves.Select(w => w.Environments.Single()));
        Assert.Equal(TimeSpan.FromMinutes(10), fleet.BakeTime);
    }

    [Fact]
    public void ExampleHoldsNoSecretValues()
    {
        foreach (var line in File.ReadAllLines(ExamplePath).Where(l => !l.TrimStart().StartsWith('#')))
        {
            var key = line.Split(':')[0].Trim().TrimStart('-', ' ');
            Assert.False(SecretKeyDetector.LooksLikeLiteralSecret(key), $"example line looks like a literal secret: {line}");
        }
    }

    [Fact]
    public void DocsDescribeEveryKey()
    {
        var docs = File.ReadAllText(DocsPath);
        var missing = AllKeyPaths().Where(path => !docs.Contains($"`{path}`", StringComparison.Ordinal)).ToList();
        Assert.True(missing.Count == 0, "docs/configuration.md does not describe: " + string.Join(", ", missing));
    }

    [Fact]
    public void DocsDescribeEveryEnumValue()
    {
        var docs = File.ReadAllText(DocsPath);
        foreach (var type in new[] { typeof(GitOpsKind), typeof(PrProvider), typeof(FreezeKind), typeof(FailClosedMode), typeof(CallerRole), typeof(ProbeMethod), typeof(ChannelKind) })
            foreach (var (name, _) in ConfigSchema.EnumValues(type))
                Assert.True(docs.Contains($"`{name}`", StringComparison.Ordinal), $"docs/configuration.md does not mention `{name}` ({type.Name})");
    }

    [Fact]
    public void DocsListEveryErrorId()
    {
        var docs = File.ReadAllText(DocsPath);
        var ids = typeof(ConfigErrorIds).GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (string)f.GetValue(null)!).ToList();
        Assert.Equal(7, ids.Count);
        foreach (var id in ids)
            Assert.True(docs.Contains($"`{id}`", StringComparison.Ordinal), $"docs/configuration.md does not list error id {id}");
    }

    [Fact]
    public void DocsEmbedTheExampleVerbatim()
    {
        var docs = File.ReadAllText(DocsPath).ReplaceLineEndings("\n");
        var example = File.ReadAllText(ExamplePath).ReplaceLineEndings("\n");
        Assert.True(docs.Contains(example, StringComparison.Ordinal),
            "docs/configuration.md must embed module/kfm-rollback.example.yaml verbatim; copy it in again");
    }

    [Fact]
    public void KeyWalkFindsNestedKeys()
    {
        // Guards the walk itself: if it stopped descending, DocsDescribeEveryKey would pass vacuously.
        var paths = AllKeyPaths().ToList();
        Assert.Contains("defaults.time_zone", paths);
        Assert.Contains("cluster.kubeconfig_path", paths);
        Assert.Contains("api.probe.callers.<name>.token_env", paths);
        Assert.Contains("api.probe.endpoints[].governed", paths);
        Assert.Contains("freeze.mechanisms[].kind", paths);
        Assert.Contains("receipts.git.branch", paths);
        // Loader-filled and computed members are not keys.
        Assert.DoesNotContain("source_path", paths);
        Assert.DoesNotContain("environment_names", paths);
        Assert.DoesNotContain("name", paths);
        Assert.DoesNotContain("cluster.effective_lease_name", paths);
        Assert.True(paths.Count > 90, $"only {paths.Count} keys found");
    }

    /// <summary>Every key path, environment keys relative to environments.&lt;name&gt;.</summary>
    internal static IEnumerable<string> AllKeyPaths() =>
        Walk(typeof(KfmConfig), "").Select(p => p.StartsWith("environments.<name>.", StringComparison.Ordinal) ? p["environments.<name>.".Length..] : p);

    private static IEnumerable<string> Walk(Type type, string prefix)
    {
        foreach (var key in ConfigSchema.KeysOf(type))
        {
            var path = prefix + key.Name;
            yield return path;
            var propertyType = Nullable.GetUnderlyingType(key.Property.PropertyType) ?? key.Property.PropertyType;
            var nested = ConfigSchema.IsSection(propertyType) ? (propertyType, path + ".")
                : ConfigSchema.ListElement(propertyType) is { } e && ConfigSchema.IsSection(e) ? (e, path + "[].")
                : ConfigSchema.MapValue(propertyType) is { } v && ConfigSchema.IsSection(v) ? (v, path + ".<name>.")
                : ((Type?)null, "");
            if (nested.Item1 is not null)
                foreach (var inner in Walk(nested.Item1, nested.Item2))
                    yield return inner;
        }
    }
}
