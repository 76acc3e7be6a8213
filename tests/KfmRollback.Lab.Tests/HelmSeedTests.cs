using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using Xunit;

namespace KfmRollback.Lab.Tests;

/// <summary>
/// The seeded Helm release Secrets, read back through kubectl the way helm's Secrets driver reads
/// them (pkg/storage/driver/secrets.go Query: label selector owner=helm,name=…; util.go decodeRelease:
/// base64, gunzip when the magic bytes 1f 8b 08 lead, JSON).
/// </summary>
public sealed class HelmSeedTests
{
    static JsonObject Decode(JsonObject secret, out bool compressed)
    {
        string helmText = Encoding.ASCII.GetString(Convert.FromBase64String(secret.Str("data.release")!));
        byte[] bytes = Convert.FromBase64String(helmText);
        compressed = bytes.Length > 3 && bytes[0] == 0x1f && bytes[1] == 0x8b && bytes[2] == 0x08;
        if (compressed)
        {
            using var gzip = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
            using var plain = new MemoryStream();
            gzip.CopyTo(plain);
            bytes = plain.ToArray();
        }
        return JsonNode.Parse(bytes)!.AsObject();
    }

    [Fact]
    public async Task KubectlSeesTheReleaseSecretsHelmWouldQuery()
    {
        await using var lab = await Lab.Start();
        var list = await lab.K("get", "secrets", "-n", "kfm", "-l", "owner=helm,name=kfm-api", "-o", "json");
        list.Ok();
        var items = JsonNode.Parse(list.Out)!["items"]!.AsArray().Select(i => i!.AsObject()).OrderBy(i => i.Str("metadata.labels.version")).ToList();

        Assert.Equal(new[] { "sh.helm.release.v1.kfm-api.v1", "sh.helm.release.v1.kfm-api.v2", "sh.helm.release.v1.kfm-api.v3", "sh.helm.release.v1.kfm-api.v4" }, items.Select(i => i.Str("metadata.name")));
        Assert.All(items, i => Assert.Equal("helm.sh/release.v1", i.Str("type")));
        Assert.Equal(new[] { "superseded", "superseded", "superseded", "deployed" }, items.Select(i => i.Str("metadata.labels.status")));

        var releases = items.Select(i => (Release: Decode(i, out bool gz), Compressed: gz)).ToList();
        Assert.Equal(new[] { false, true, true, true }, releases.Select(r => r.Compressed));
        for (int i = 0; i < releases.Count; i++)
        {
            var r = releases[i].Release;
            Assert.Equal(i + 1, r["version"]!.GetValue<int>());
            Assert.Equal("kfm-api", r.Str("name"));
            Assert.Equal(items[i].Str("metadata.labels.status"), r.Str("info.status"));
            Assert.Contains(lab.Host.Images.Get(Seeder.History.Append(Seeder.Current).ElementAt(i)).Image, r.Str("manifest"));
        }
        // What the deployed revision renders is what the Deployment runs.
        Assert.Contains(lab.Image(), releases[3].Release.Str("manifest"));

        var table = await lab.K("get", "secrets", "-n", "kfm");
        table.Ok();
        Assert.Contains("helm.sh/release.v1", table.Out);
    }
}
