using KfmRollback.Engine.Adapters.Helm;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Rollback.Helm;
using KfmRollback.Engine.Tests.Configuration;
using KfmRollback.Lab;
using Xunit;

namespace KfmRollback.Engine.Tests.Rollback.Helm;

/// <summary>
/// The storage format, pruning and configuration, without a cluster. Fixtures follow helm's source:
/// pkg/storage/driver/util.go (encodeRelease/decodeRelease, gzip magic 1f 8b 08),
/// pkg/storage/storage.go (removeLeastRecent), pkg/release/v1 (JSON field names).
/// </summary>
public sealed class HelmStorageTests
{
    private static JsonObject Sample(int version = 3, string status = "deployed") =>
        HelmSeed.Record(version, status, "Upgrade complete", "good-1.5.0", "registry.kfm.local/kfm-api@sha256:" + new string('b', 64),
            DateTimeOffset.Parse("2026-01-02T03:04:05Z"), DateTimeOffset.Parse("2026-01-02T04:05:06.5Z"));

    [Fact]
    public void GzipRoundTripKeepsEveryField()
    {
        JsonObject release = Sample();
        string encoded = HelmReleaseCodec.Encode(release);

        byte[] raw = Convert.FromBase64String(encoded);
        Assert.Equal(new byte[] { 0x1f, 0x8b, 0x08 }, raw[..3]);
        Assert.True(HelmReleaseCodec.IsCompressed(encoded));
        Assert.True(JsonNode.DeepEquals(release, HelmReleaseCodec.Decode(encoded, "s")));
    }

    [Fact]
    public void PlainJsonFromHelm30IsReadWithoutGzip()
    {
        JsonObject release = Sample();
        string encoded = HelmReleaseCodec.EncodeUncompressed(release);

        Assert.False(HelmReleaseCodec.IsCompressed(encoded));
        Assert.Equal('{', (char)Convert.FromBase64String(encoded)[0]);
        Assert.True(JsonNode.DeepEquals(release, HelmReleaseCodec.Decode(encoded, "s")));
    }

    [Fact]
    public void ReadsTheLabFixtureTheWayItsSecretCarriesIt()
    {
        // The Secret's data is base64 of helm's own base64(gzip(json)): two layers.
        JsonObject secret = HelmSeed.Secret(Sample(), new Dictionary<string, string>());
        string helmText = Encoding.ASCII.GetString(Convert.FromBase64String(secret["data"]!["release"]!.GetValue<string>()));
        var release = new HelmRelease(HelmReleaseCodec.Decode(helmText, "fixture"));

        Assert.Equal("sh.helm.release.v1.kfm-api.v3", secret["metadata"]!["name"]!.GetValue<string>());
        Assert.Equal("helm.sh/release.v1", secret["type"]!.GetValue<string>());
        Assert.Equal(3, release.Version);
        Assert.Equal("deployed", release.Status);
        Assert.Equal("kfm-api-1.5.0", release.Chart);
        Assert.Equal(DateTimeOffset.Parse("2026-01-02T04:05:06.5Z"), release.LastDeployed);
    }

    [Fact]
    public void CorruptDataIsRefusedWithoutShowingIt()
    {
        using var buffer = new MemoryStream();
        buffer.Write([0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02]);
        var error = Assert.Throws<KfmException>(() => HelmReleaseCodec.Decode(Convert.ToBase64String(buffer.ToArray()), "sh.helm.release.v1.x.v1"));
        Assert.Equal("HelmReleaseUndecodable", error.ErrorId);
        Assert.Contains("sh.helm.release.v1.x.v1", error.Message);
        Assert.Equal("HelmReleaseUndecodable", Assert.Throws<KfmException>(() => HelmReleaseCodec.Decode("not base64!", "s")).ErrorId);
    }

    [Fact]
    public void ManifestScalarsAreTypedAsTheApiserverReadsThem()
    {
        var objects = HelmManifest.Parse(HelmSeed.Manifest("repo@sha256:" + new string('c', 64), replicas: 4), "kfm-api");

        Assert.Equal(new[] { "ServiceAccount kfm-api", "Deployment kfm-api" }, objects.Select(o => o.ToString()));
        JsonObject deployment = HelmManifest.Deployment(objects, "kfm-api")!.Body;
        Assert.Equal(4, deployment["spec"]!["replicas"]!.GetValue<long>());
        Assert.Equal(8080, deployment["spec"]!["template"]!["spec"]!["containers"]![0]!["ports"]![0]!["containerPort"]!.GetValue<long>());
        Assert.Equal("repo@sha256:" + new string('c', 64), deployment["spec"]!["template"]!["spec"]!["containers"]![0]!["image"]!.GetValue<string>());
        Assert.Equal("ServiceAccount/kfm/kfm-api", objects[0].Key("kfm"));
    }

    private static IReadOnlyList<StoredRelease> History(params string[] statuses) =>
        statuses.Select((s, i) => new StoredRelease(new HelmRelease(Sample(i + 1, s)), HelmReleaseStore.SecretName("kfm-api", i + 1), (100 + i).ToString())).ToList();

    [Theory]
    // storage.go removeLeastRecent(name, max-1) before Create: oldest first, never the newest deployed.
    [InlineData(10, new[] { "superseded", "superseded", "deployed" }, new int[0])]
    [InlineData(3, new[] { "superseded", "superseded", "superseded", "deployed" }, new[] { 1, 2 })]
    [InlineData(2, new[] { "superseded", "deployed", "superseded", "failed" }, new[] { 1, 3, 4 })]
    [InlineData(1, new[] { "deployed", "superseded" }, new[] { 2 })]
    [InlineData(0, new[] { "superseded", "superseded", "deployed" }, new int[0])]
    public void PruningFollowsHelmsRemoveLeastRecent(int historyMax, string[] statuses, int[] deleted)
    {
        Assert.Equal(deleted, HelmRollbackPlanner.Prune(History(statuses), historyMax).Select(r => r.Version));
    }

    [Fact]
    public void GoTimeTrimsTrailingZerosLikeRfc3339Nano()
    {
        Assert.Equal("2026-01-02T03:04:05Z", GoTime.Format(DateTimeOffset.Parse("2026-01-02T03:04:05Z")));
        Assert.Equal("2026-01-02T03:04:05.12Z", GoTime.Format(DateTimeOffset.Parse("2026-01-02T03:04:05.12Z")));
        Assert.Null(GoTime.Parse(JsonValue.Create("")));
    }

    [Fact]
    public void HelmSectionDefaultsAndValidation()
    {
        string yaml = ConfigTestSupport.Minimal.Replace("    freeze:\n", "    helm:\n      release: kfm-api\n    freeze:\n");
        EnvironmentConfig environment = ConfigTestSupport.Prod(yaml);
        Assert.Equal("kfm-api", environment.Helm!.Release);
        Assert.Equal(10, environment.Helm.HistoryMax);
        Assert.Equal("kfm", environment.Helm.EffectiveNamespace(environment.Cluster));
        Assert.Null(ConfigTestSupport.Prod(ConfigTestSupport.Minimal).Helm);

        ConfigTestSupport.LoadFails(yaml.Replace("release: kfm-api", "release: Kfm_Api"), ConfigErrorIds.ConfigInvalidValue);
        ConfigTestSupport.LoadFails(yaml.Replace("release: kfm-api", "release: kfm-api\n      history_max: -1"), ConfigErrorIds.ConfigInvalidValue);
        ConfigTestSupport.LoadFails(yaml.Replace("      release: kfm-api\n", "      namespace: kfm\n"), ConfigErrorIds.ConfigMissingKey);
        Assert.Equal("helm-ns", ConfigTestSupport.Prod(yaml.Replace("release: kfm-api", "release: kfm-api\n      namespace: helm-ns")).Helm!.EffectiveNamespace(environment.Cluster));
    }

    [Fact]
    public void TheExampleConfiguresStagingsRelease()
    {
        var staging = KfmConfigLoader.Load(Path.Combine(ConfigTestSupport.RepoRoot(), "module", "kfm-rollback.example.yaml")).GetEnvironment("staging");
        Assert.Equal("kfm-api", staging.Helm!.Release);
        Assert.Equal("kfm-staging", staging.Helm.EffectiveNamespace(staging.Cluster));
    }
}
