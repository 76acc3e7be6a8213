using System.Text.Json.Nodes;
using KfmRollback.Engine.Safety;

namespace KfmRollback.Engine.Tests.Security;

/// <summary>
/// Issue 17, item 3: one redaction for everything a person or a file sees, with a broader detector
/// (credential names such as *_KEY, *_PWD, DB_PASS; DSNs with credentials; cloud keys) and env values
/// of pod templates shown as &lt;redacted sha256:…&gt; unless the configuration shows them.
/// </summary>
public sealed class RedactorTests
{
    // Assembled at run time so this file itself never looks like a leak.
    private static readonly string Canary = "Zq7" + "canary" + "Value42x";
    private static readonly string AzureSecret = "abc" + "8Q~" + "Zq7canaryValue42xZq7canaryValue4";
    private static readonly string GcpKey = "AIza" + "SyZq7canaryValue42xZq7canaryValue42";
    private static readonly string GcpToken = "ya29." + "Zq7canaryValue42xZq7canaryValue42x";

    [Theory]
    [InlineData("API_SIGNING_KEY={0}")]
    [InlineData("export DB_PWD={0}")]
    [InlineData("DB_PASS: {0}")]
    [InlineData("{{\"client_secret\": \"{0}\"}}")]
    [InlineData("Server=db.kfm;User Id=kfm;Password={0};Encrypt=true")]
    [InlineData("Data Source=db;Pwd={0}")]
    [InlineData("DefaultEndpointsProtocol=https;AccountName=kfm;AccountKey={0};EndpointSuffix=core.windows.net")]
    [InlineData("DATABASE_URL=postgres://kfm:{0}@db.kfm:5432/kfm")]
    [InlineData("redis://:{0}@cache:6379/0")]
    [InlineData("clone https://{0}@git.example.test/kfm/infra.git")]
    [InlineData("postgresql://db/kfm?user=kfm&password={0}")]
    public void Credentials_by_name_or_in_a_dsn_never_show(string template)
    {
        string text = string.Format(System.Globalization.CultureInfo.InvariantCulture, template, Canary);
        Assert.NotEmpty(SecretScanner.Default.Scan(text));
        Assert.DoesNotContain(Canary, Redactor.Default.Text(text));
        Assert.Equal(Redactor.Default.Text(text), Redactor.Default.Text(Redactor.Default.Text(text)));
    }

    [Fact]
    public void Cloud_keys_are_found_by_shape()
    {
        foreach (var (key, kind) in new[] { (AzureSecret, SecretScanner.AzureClientSecret), (GcpKey, SecretScanner.GcpApiKey), (GcpToken, SecretScanner.GcpOAuthToken) })
        {
            var finding = Assert.Single(SecretScanner.Default.Scan($"value {key} here"));
            Assert.Equal(kind, finding.Kind);
            Assert.DoesNotContain(key, Redactor.Default.Text($"value {key} here"));
        }
    }

    [Theory]
    [InlineData("secretName: kfm-api-oidc")]
    [InlineData("configMapKeyRef key: DB_PWD")]
    [InlineData("token_env=KFM_PROBE_TOKEN and password_file=/run/secrets/pw")]
    [InlineData("Known keys: kubeconfig_path, context, in_cluster")]
    [InlineData("secrets: [kfm-api-oidc]")]
    [InlineData("Reason: 5xx spike after deploy; Blast-Radius: api")]
    [InlineData("the deploy token: rotated, secret: revoked")]
    [InlineData("Authorization: Bearer authentication is enforced")]
    [InlineData("| A.endpoint/api/v1/healthz | Pass: /api/v1/healthz answered 200 |")]
    public void Names_that_only_refer_to_secrets_stay(string text)
    {
        Assert.Empty(SecretScanner.Default.Scan(text));
        Assert.Equal(text, Redactor.Default.Text(text));
    }

    [Theory]
    [InlineData("API_SIGNING_KEY", true)]
    [InlineData("DB_PWD", true)]
    [InlineData("DB_PASS", true)]
    [InlineData("client_secret", true)]
    [InlineData("AccountKey", true)]
    [InlineData("apiKey", true)]
    [InlineData("connectionString", true)]
    [InlineData("refresh_token", true)]
    [InlineData("key", false)]
    [InlineData("Pass", false)]
    [InlineData("secretName", false)]
    [InlineData("token_env", false)]
    [InlineData("signing_key_file", false)]
    [InlineData("secrets", false)]
    [InlineData("LOG_LEVEL", false)]
    public void Credential_names(string name, bool secret) => Assert.Equal(secret, SecretNames.LooksSecret(name));

    private static JsonObject Template(params (string Name, string Value)[] env) => new()
    {
        ["metadata"] = new JsonObject { ["annotations"] = new JsonObject { ["kubectl.kubernetes.io/last-applied-configuration"] = "{\"env\":\"" + Canary + "\"}" } },
        ["spec"] = new JsonObject
        {
            ["containers"] = new JsonArray(new JsonObject
            {
                ["name"] = "api",
                ["env"] = new JsonArray(env.Select(e => (JsonNode)new JsonObject { ["name"] = e.Name, ["value"] = e.Value })
                    .Append(new JsonObject { ["name"] = "DB_URL_FROM", ["valueFrom"] = new JsonObject { ["secretKeyRef"] = new JsonObject { ["name"] = "kfm-db", ["key"] = "url" } } }).ToArray()),
            }),
        },
    };

    [Fact]
    public void Env_values_of_templates_are_hashed_unless_the_configuration_shows_them()
    {
        var redactor = new Redactor(Array.Empty<string>(), shownEnv: new[] { "LOG_LEVEL" });
        JsonObject template = Template(("API_SIGNING_KEY", Canary), ("FEATURE_FLAG", "on"), ("LOG_LEVEL", "debug"));

        JsonNode shown = redactor.Json(template)!;
        string text = shown.ToJsonString();

        Assert.DoesNotContain(Canary, text);
        JsonArray env = shown["spec"]!["containers"]![0]!["env"]!.AsArray();
        Assert.Equal(Redactor.EnvValue(Canary), env[0]!["value"]!.GetValue<string>());
        Assert.Matches("^<redacted sha256:[0-9a-f]{12}>$", env[1]!["value"]!.GetValue<string>());
        Assert.Equal("debug", env[2]!["value"]!.GetValue<string>());
        Assert.Equal("kfm-db", env[3]!["valueFrom"]!["secretKeyRef"]!["name"]!.GetValue<string>());
        // Only what is shown is redacted: the template itself is untouched.
        Assert.Equal(Canary, template["spec"]!["containers"]![0]!["env"]![0]!["value"]!.GetValue<string>());
    }

    [Fact]
    public void A_patch_shown_as_content_is_redacted_json()
    {
        var patch = new JsonArray(new JsonObject { ["op"] = "replace", ["path"] = "/spec/template", ["value"] = Template(("DB_PWD", Canary)) });
        string content = Redactor.Default.Content(patch.ToJsonString());
        Assert.DoesNotContain(Canary, content);
        Assert.Contains("<redacted sha256:", content);
        Assert.NotNull(JsonNode.Parse(content));
    }

    [Fact]
    public void Config_data_under_credential_names_and_dsns_never_show()
    {
        var map = new JsonObject
        {
            ["data"] = new JsonObject { ["DB_PWD"] = Canary, ["DATABASE_URL"] = $"postgres://kfm:{Canary}@db:5432/kfm", ["maintenance"] = "false" },
        };
        string text = Redactor.Default.Json(map)!.ToJsonString();
        Assert.DoesNotContain(Canary, text);
        Assert.Contains("\"maintenance\":\"false\"", text);
    }

    [Fact]
    public void Urls_are_shown_without_user_info()
    {
        Assert.Equal("https://git.example.test/kfm/infra.git", Redactor.Default.Url($"https://deployer:{Canary}@git.example.test/kfm/infra.git"));
        Assert.Equal("https://git.example.test/kfm/infra.git", Redactor.Default.Url($"https://{Canary}@git.example.test/kfm/infra.git"));
    }

    [Fact]
    public void Restricted_ids_and_patterns_are_replaced()
    {
        var redactor = new Redactor(new[] { "burial_sites" }, new[] { @"\bsite_[0-9]{6}\b" });
        Assert.Equal($"see {Redactor.RestrictedMarker} and {Redactor.RestrictedMarker}", redactor.Text("see burial_sites and site_123456"));
        Assert.True(redactor.IsRestricted("site_123456"));
    }
}
