using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Lab.Api;

namespace KfmRollback.Lab;

/// <summary>
/// Helm release history for kfm/kfm-api in helm v3's storage format, one revision per seeded build
/// (revisions 1–3 superseded, 4 deployed), as if `helm upgrade` had deployed each. Written following
/// helm's source (no helm binary here): pkg/storage/driver/secrets.go newSecretsObject (Secret
/// sh.helm.release.v1.&lt;name&gt;.v&lt;N&gt;, type helm.sh/release.v1, labels owner/name/status/version,
/// createdAt on create, modifiedAt on update), pkg/storage/driver/util.go encodeRelease
/// (base64(gzip(JSON)), and that text is the Secret's data so it is base64-encoded again on the
/// wire) and pkg/release/release.go, info.go (JSON field names). Revision 1 is stored as helm 3.0
/// did before compression: base64(JSON), no gzip.
/// </summary>
public static class HelmSeed
{
    public const string Release = "kfm-api";
    public const string Namespace = "kfm";
    /// <summary>A value in every revision's config: it must never appear in anything the module prints.</summary>
    public const string CanaryValue = "lab-canary-7f3c9e-never-print-me";

    /// <summary>The rendered chart for one image; <paramref name="replicas"/> lets tests make a change outside the pod template.</summary>
    public static string Manifest(string image, int replicas = 3) => $"""
        ---
        # Source: kfm-api/templates/serviceaccount.yaml
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: kfm-api
          labels:
            app: kfm-api
        ---
        # Source: kfm-api/templates/deployment.yaml
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: kfm-api
          labels:
            app: kfm-api
            app.kubernetes.io/managed-by: Helm
        spec:
          replicas: {replicas}
          selector:
            matchLabels:
              app: kfm-api
          template:
            metadata:
              labels:
                app: kfm-api
            spec:
              containers:
                - name: api
                  image: "{image}"
                  ports:
                    - containerPort: 8080
                      protocol: TCP
                  env:
                    - name: KFM_CONFIG
                      value: /etc/kfm/config

        """.Replace("\r\n", "\n");

    /// <summary>One release record as helm's encoding/json writes release.Release (field order, omitempty).</summary>
    public static JsonObject Record(int version, string status, string description, string build, string image, DateTimeOffset firstDeployed, DateTimeOffset lastDeployed, int replicas = 3)
    {
        string appVersion = build.Contains('-') ? build[(build.IndexOf('-') + 1)..] : build;
        return new JsonObject
        {
            ["name"] = Release,
            ["info"] = new JsonObject
            {
                ["first_deployed"] = GoTime(firstDeployed),
                ["last_deployed"] = GoTime(lastDeployed),
                ["deleted"] = "",
                ["description"] = description,
                ["status"] = status,
                ["notes"] = "kfm-api is served on port 8080.",
            },
            ["chart"] = new JsonObject
            {
                ["metadata"] = new JsonObject { ["name"] = "kfm-api", ["version"] = appVersion, ["description"] = "KFM governed API", ["apiVersion"] = "v2", ["appVersion"] = appVersion, ["type"] = "application" },
                ["lock"] = null,
                ["templates"] = new JsonArray(new JsonObject { ["name"] = "templates/deployment.yaml", ["data"] = Convert.ToBase64String(Encoding.UTF8.GetBytes("# deployment template\n")) }),
                ["values"] = new JsonObject { ["replicaCount"] = 3, ["image"] = new JsonObject { ["repository"] = "registry.kfm.local/kfm-api" } },
                ["schema"] = null,
                ["files"] = new JsonArray(),
            },
            ["config"] = new JsonObject
            {
                ["image"] = new JsonObject { ["digest"] = image[(image.IndexOf('@') + 1)..] },
                ["replicaCount"] = replicas,
                ["auth"] = new JsonObject { ["apiKey"] = CanaryValue },
            },
            ["manifest"] = Manifest(image, replicas),
            ["version"] = version,
            ["namespace"] = Namespace,
        };
    }

    /// <summary>The Secret helm's driver writes for <paramref name="record"/> (lab store form: data values are base64).</summary>
    public static JsonObject Secret(JsonObject record, Dictionary<string, string> extraLabels, bool compressed = true)
    {
        byte[] json = Encoding.UTF8.GetBytes(record.ToJsonString());
        string helmEncoded = Convert.ToBase64String(compressed ? Gzip(json) : json);
        var labels = new JsonObject();
        foreach (var (k, v) in extraLabels) labels[k] = v;
        labels["name"] = record["name"]!.GetValue<string>();
        labels["owner"] = "helm";
        labels["status"] = record["info"]!["status"]!.GetValue<string>();
        labels["version"] = record["version"]!.GetValue<int>().ToString(CultureInfo.InvariantCulture);
        return new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["name"] = $"sh.helm.release.v1.{record["name"]}.v{record["version"]}",
                ["namespace"] = record["namespace"]!.GetValue<string>(),
                ["labels"] = labels,
            },
            ["type"] = "helm.sh/release.v1",
            ["data"] = new JsonObject { ["release"] = Convert.ToBase64String(Encoding.ASCII.GetBytes(helmEncoded)) },
        };
    }

    public static void Seed(LabHost lab)
    {
        string[] builds = [.. Seeder.History, Seeder.Current];
        DateTimeOffset first = lab.Clock.Now - TimeSpan.FromHours(builds.Length + 1);
        for (int i = 0; i < builds.Length; i++)
        {
            int version = i + 1;
            bool current = version == builds.Length;
            DateTimeOffset deployed = first + TimeSpan.FromHours(i);
            string unix = deployed.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
            var record = Record(version, current ? "deployed" : "superseded", version == 1 ? "Install complete" : "Upgrade complete",
                builds[i], lab.Images.Get(builds[i]).Image, first, deployed);
            // An upgrade's own Update drops createdAt (the release's labels are the custom ones); a revision
            // later superseded was read by Query (all labels) and updated again, so it keeps createdAt.
            var labels = current ? new Dictionary<string, string> { ["modifiedAt"] = unix }
                : new Dictionary<string, string> { ["createdAt"] = unix, ["modifiedAt"] = (deployed + TimeSpan.FromHours(1)).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture) };
            lab.Store.Create(Resources.Secrets, Secret(record, labels, compressed: version != 1));
        }
    }

    /// <summary>
    /// What `helm upgrade kfm-api --set image.digest=…` leaves, for tests that need a bad Helm deploy:
    /// a new deployed revision rendering <paramref name="build"/>, the one deployed before superseded
    /// (record and label), and the Deployment given the new manifest's pod template. Returns the new version.
    /// </summary>
    public static int Upgrade(LabHost lab, string build)
    {
        var image = lab.Images.Get(build).Image;
        var releases = lab.Store.List(Resources.Secrets, Namespace)
            .Where(s => s.At("metadata.labels") is JsonObject l && l["owner"]?.GetValue<string>() == "helm" && l["name"]?.GetValue<string>() == Release)
            .ToList();
        int version = releases.Select(s => int.Parse(s.At("metadata.labels")!["version"]!.GetValue<string>(), CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Max() + 1;
        DateTimeOffset now = lab.Clock.Now;
        DateTimeOffset first = now;
        foreach (var secret in releases.Where(s => s.At("metadata.labels")!["status"]?.GetValue<string>() == "deployed"))
        {
            var record = Decode(secret);
            first = DateTimeOffset.Parse(record["info"]!["first_deployed"]!.GetValue<string>(), CultureInfo.InvariantCulture);
            record["info"]!["status"] = "superseded";
            var labels = ((JsonObject)secret.At("metadata.labels")!).ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<string>());
            labels.Remove("name"); labels.Remove("owner"); labels.Remove("status"); labels.Remove("version");
            var updated = Secret(record, labels);
            updated["metadata"]!["resourceVersion"] = secret.Str("metadata.resourceVersion");
            lab.Store.Update(Resources.Secrets, updated);
        }
        var fresh = Record(version, "deployed", "Upgrade complete", build, image, first, now);
        lab.Store.Create(Resources.Secrets, Secret(fresh, new Dictionary<string, string> { ["modifiedAt"] = now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture) }));
        lab.Store.Mutate(Resources.Deployments, Namespace, Release, d =>
        {
            d["spec"]!["template"] = Template(image);
            return true;
        });
        lab.TickNow();
        return version;
    }

    /// <summary>The Deployment pod template <see cref="Manifest"/> renders, as JSON.</summary>
    public static JsonObject Template(string image) => new()
    {
        ["metadata"] = new JsonObject { ["labels"] = new JsonObject { ["app"] = "kfm-api" } },
        ["spec"] = new JsonObject
        {
            ["containers"] = new JsonArray(new JsonObject
            {
                ["name"] = "api",
                ["image"] = image,
                ["ports"] = new JsonArray(new JsonObject { ["containerPort"] = 8080, ["protocol"] = "TCP" }),
                ["env"] = new JsonArray(new JsonObject { ["name"] = "KFM_CONFIG", ["value"] = "/etc/kfm/config" }),
            }),
        },
    };

    /// <summary>The release record a helm Secret holds (gzip or plain JSON, base64 twice as the driver writes it).</summary>
    static JsonObject Decode(JsonObject secret)
    {
        byte[] helmEncoded = Convert.FromBase64String(secret.At("data")!["release"]!.GetValue<string>());
        byte[] payload = Convert.FromBase64String(Encoding.ASCII.GetString(helmEncoded));
        if (payload.Length > 2 && payload[0] == 0x1f && payload[1] == 0x8b)
        {
            using var gzip = new GZipStream(new MemoryStream(payload), CompressionMode.Decompress);
            using var plain = new MemoryStream();
            gzip.CopyTo(plain);
            payload = plain.ToArray();
        }
        return J.Parse(Encoding.UTF8.GetString(payload));
    }

    static byte[] Gzip(byte[] data)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.SmallestSize, leaveOpen: true)) gzip.Write(data);
        return buffer.ToArray();
    }

    /// <summary>Go's time.Time JSON form (RFC 3339, nanoseconds with trailing zeros trimmed).</summary>
    static string GoTime(DateTimeOffset at)
    {
        string fraction = at.UtcDateTime.ToString("fffffff", CultureInfo.InvariantCulture).TrimEnd('0');
        return at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture) + (fraction.Length > 0 ? "." + fraction : "") + "Z";
    }
}
