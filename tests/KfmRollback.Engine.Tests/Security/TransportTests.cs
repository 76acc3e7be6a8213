using KfmRollback.Engine.Adapters.Kubernetes;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Receipts;
using static KfmRollback.Engine.Tests.Configuration.ConfigTestSupport;

namespace KfmRollback.Engine.Tests.Security;

/// <summary>
/// Issue 17, item 5: credentials never go over plain HTTP except to loopback, and a kubeconfig that
/// skips TLS verification is refused unless the environment allows it (and then the receipt says so).
/// </summary>
public sealed class TransportTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kfm-transport").FullName;

    [Theory]
    [InlineData("      url: http://prom.test:9090", "      url: http://prom.test:9090\n      token_env: KFM_PROM_TOKEN", "prometheus.url")]
    [InlineData("            anonymous: true", "            token_env: KFM_PROBE_TOKEN", "api.base_url")]
    [InlineData("      image_name: kfm-api", "      image_name: kfm-api\n      pr: {provider: github, repository: kfm/infra, token_env: KFM_GH, base_url: 'http://github.internal.test/'}", "gitops.pr.base_url")]
    public void A_url_that_would_carry_a_credential_over_plain_http_is_refused_at_load(string line, string replacement, string key)
    {
        string yaml = Replace(line, replacement).Replace("base_url: https://api.test", "base_url: http://api.test", StringComparison.Ordinal);
        var e = LoadFails(yaml, ConfigErrorIds.ConfigInvalidValue);
        Assert.Contains(key, e.Message);
        Assert.Contains("plain http://", e.Message);
    }

    [Fact]
    public void Plain_http_without_a_credential_or_to_loopback_still_loads()
    {
        // The prometheus of the minimal fixture is http without a token; the lab's servers are http on 127.0.0.1.
        Assert.NotNull(Prod(Minimal).Prometheus);
        var loopback = Prod(Replace("      url: http://prom.test:9090", "      url: http://127.0.0.1:9090\n      token_env: KFM_PROM_TOKEN"));
        Assert.Equal("127.0.0.1", loopback.Prometheus.Url.Host);
        Assert.NotNull(Prod(Replace("      url: http://prom.test:9090", "      url: http://[::1]:9090\n      token_env: KFM_PROM_TOKEN")));
    }

    [Fact]
    public void A_credential_is_never_attached_to_plain_http_built_in_code_either()
    {
        var e = Assert.Throws<KfmException>(() => Transport.EnsureCredentialsAllowed(new Uri("http://prom.example.test/"), "prometheus.url"));
        Assert.Equal("InsecureTransport", e.ErrorId);
        Transport.EnsureCredentialsAllowed(new Uri("https://prom.example.test/"), "prometheus.url");
        Transport.EnsureCredentialsAllowed(new Uri("http://localhost:9090/"), "prometheus.url");
        Environment.SetEnvironmentVariable("KFM_TRANSPORT_TEST_TOKEN", "t0ken-value");
        try
        {
            Assert.Equal("InsecureTransport", Assert.Throws<KfmException>(() => new KfmRollback.Engine.Adapters.Prometheus.PrometheusClient(new PrometheusConfig
            {
                Url = new Uri("http://prom.example.test/"), TokenEnv = "KFM_TRANSPORT_TEST_TOKEN", Selector = "job=\"x\"",
            })).ErrorId);
        }
        finally { Environment.SetEnvironmentVariable("KFM_TRANSPORT_TEST_TOKEN", null); }
    }

    private string Kubeconfig(bool insecure) => Kubeconfig(insecure ? "insecure.kubeconfig" : "secure.kubeconfig",
        insecure ? "insecure-skip-tls-verify: true" : "certificate-authority-data: " + Convert.ToBase64String("not a real ca"u8.ToArray()),
        "token: kubeconfig-token-value");

    /// <summary>A kubeconfig of one context (cluster c at 127.0.0.1:6443, user u) with the cluster's TLS line and the user's credential lines given.</summary>
    private string Kubeconfig(string name, string clusterTls, params string[] userCredentials)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: c
              cluster:
                server: https://127.0.0.1:6443
                {clusterTls}
            users:
            - name: u
              user:
            {string.Join("\n", userCredentials.Select(line => "    " + line))}
            contexts:
            - name: ctx
              context: {"{"}cluster: c, user: u{"}"}
            current-context: ctx
            """);
        return path;
    }

    [Fact]
    public void A_kubeconfig_that_skips_tls_verification_is_refused_unless_the_environment_allows_it()
    {
        var refused = Assert.Throws<KfmException>(() => ClusterClientFactory.BuildConfiguration(new ClusterConfig { KubeconfigPath = Kubeconfig(true), Namespace = "kfm", Deployment = "kfm-api" }));
        Assert.Equal("ClusterInsecureTls", refused.ErrorId);
        Assert.Equal(KfmErrorKind.SecurityError, refused.Kind);
        Assert.Contains("cluster.allow_insecure_tls", refused.Message);
        Assert.DoesNotContain("kubeconfig-token-value", refused.Message);

        var allowed = new ClusterConfig { KubeconfigPath = Kubeconfig(true), Namespace = "kfm", Deployment = "kfm-api", AllowInsecureTls = true };
        Assert.True(ClusterClientFactory.BuildConfiguration(allowed).SkipTlsVerify);
        Assert.True(ClusterClientFactory.SkipsTlsVerification(allowed));
        Assert.False(ClusterClientFactory.SkipsTlsVerification(new ClusterConfig { KubeconfigPath = Kubeconfig(false), Namespace = "kfm", Deployment = "kfm-api", AllowInsecureTls = true }));
    }

    [Fact]
    public void A_cluster_client_is_reused_only_while_its_kubeconfig_and_token_are_unchanged()
    {
        // A fleet asks for its client several times per environment; the kubeconfig is parsed once, and
        // a rewritten kubeconfig (a rotated token of the same length) or a removed one is read again.
        string path = Kubeconfig(true);
        var cluster = new ClusterConfig { KubeconfigPath = path, Namespace = "kfm", Deployment = "kfm-api", AllowInsecureTls = true };
        k8s.IKubernetes first = ClusterClientFactory.For(cluster);
        Assert.Same(first, ClusterClientFactory.For(cluster));

        DateTime written = File.GetLastWriteTimeUtc(path);
        File.WriteAllText(path, File.ReadAllText(path).Replace("kubeconfig-token-value", "kubeconfig-token-VALUE", StringComparison.Ordinal));
        File.SetLastWriteTimeUtc(path, written.AddSeconds(1));
        k8s.IKubernetes rotated = ClusterClientFactory.For(cluster);
        Assert.NotSame(first, rotated);
        Assert.Same(rotated, ClusterClientFactory.For(cluster));

        // A token from the environment is read on every ask: a new value, a client of its own.
        var fromEnv = new ClusterConfig { KubeconfigPath = path, Namespace = "kfm", Deployment = "kfm-api", AllowInsecureTls = true, TokenEnv = "KFM_TEST_TRANSPORT_TOKEN" };
        System.Environment.SetEnvironmentVariable("KFM_TEST_TRANSPORT_TOKEN", "token-one");
        try
        {
            k8s.IKubernetes one = ClusterClientFactory.For(fromEnv);
            System.Environment.SetEnvironmentVariable("KFM_TEST_TRANSPORT_TOKEN", "token-two");
            Assert.NotSame(one, ClusterClientFactory.For(fromEnv));
        }
        finally { System.Environment.SetEnvironmentVariable("KFM_TEST_TRANSPORT_TOKEN", null); }

        File.Delete(path);
        Assert.Equal("KubeconfigNotFound", Assert.Throws<KfmException>(() => ClusterClientFactory.For(cluster)).ErrorId);
    }

    /// <summary>A self-signed certificate and its key as PEM (a new one per call: a rotation).</summary>
    private static (string Certificate, string Key) NewCertificate(string subject)
    {
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest($"CN={subject}", key, System.Security.Cryptography.HashAlgorithmName.SHA256);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        return (certificate.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    [Fact]
    public void A_certificate_the_kubeconfig_names_by_path_rotated_under_it_gets_a_new_client()
    {
        // kubectl's layout: the kubeconfig names its CA and client certificate and key by path (relative to its folder or absolute).
        string caPath = Path.Combine(_dir, "ca.crt"), certPath = Path.Combine(_dir, "client.crt"), keyPath = Path.Combine(_dir, "client.key");
        File.WriteAllText(caPath, NewCertificate("kfm-ca").Certificate);
        (string certificate, string key) = NewCertificate("kfm-operator");
        File.WriteAllText(certPath, certificate);
        File.WriteAllText(keyPath, key);
        string path = Kubeconfig("by-path.kubeconfig", "certificate-authority: ca.crt", $"client-certificate: {certPath}", "client-key: client.key");
        var cluster = new ClusterConfig { KubeconfigPath = path, Namespace = "kfm", Deployment = "kfm-api" };
        k8s.IKubernetes first = ClusterClientFactory.For(cluster);
        Assert.Same(first, ClusterClientFactory.For(cluster));

        // The client certificate and key rotated (new content, new write time); the kubeconfig untouched.
        (string rotatedCertificate, string rotatedKey) = NewCertificate("kfm-operator");
        DateTime written = File.GetLastWriteTimeUtc(certPath);
        File.WriteAllText(certPath, rotatedCertificate);
        File.WriteAllText(keyPath, rotatedKey);
        File.SetLastWriteTimeUtc(certPath, written.AddSeconds(1));
        File.SetLastWriteTimeUtc(keyPath, written.AddSeconds(1));
        k8s.IKubernetes rotated = ClusterClientFactory.For(cluster);
        Assert.NotSame(first, rotated);
        Assert.Same(rotated, ClusterClientFactory.For(cluster));

        // The CA, named relative to the kubeconfig's folder, rotated the same way.
        File.WriteAllText(caPath, NewCertificate("kfm-ca-2").Certificate);
        File.SetLastWriteTimeUtc(caPath, File.GetLastWriteTimeUtc(caPath).AddSeconds(1));
        k8s.IKubernetes newCa = ClusterClientFactory.For(cluster);
        Assert.NotSame(rotated, newCa);
        Assert.Same(newCa, ClusterClientFactory.For(cluster));

        // A referenced file deleted: the next ask fails as a first ask does (a clear error naming the file), not with the old client.
        File.Delete(certPath);
        var missing = Assert.Throws<KfmException>(() => ClusterClientFactory.For(cluster));
        Assert.Equal("KubeconfigFileNotFound", missing.ErrorId);
        Assert.Equal(KfmErrorKind.ObjectNotFound, missing.Kind);
        Assert.Contains(certPath, missing.Message);
        Assert.Contains("client-certificate", missing.Message);
        ClusterClientFactory.Reset();
        var fresh = Assert.Throws<KfmException>(() => ClusterClientFactory.For(cluster));
        Assert.Equal(missing.ErrorId, fresh.ErrorId);
        Assert.Equal(missing.Message, fresh.Message);

        // A token from the environment replaces the kubeconfig user: its missing certificate does not matter.
        System.Environment.SetEnvironmentVariable("KFM_TEST_TRANSPORT_CERT_TOKEN", "token-one");
        try { Assert.NotNull(ClusterClientFactory.For(new ClusterConfig { KubeconfigPath = path, Namespace = "kfm", Deployment = "kfm-api", TokenEnv = "KFM_TEST_TRANSPORT_CERT_TOKEN" })); }
        finally { System.Environment.SetEnvironmentVariable("KFM_TEST_TRANSPORT_CERT_TOKEN", null); }
    }

    [Fact]
    public void The_receipt_records_insecure_tls_as_an_extension_field_and_stays_valid()
    {
        ReceiptInput Input(bool insecure) => new()
        {
            IncidentId = "INC-7", RequestedBy = "alice", ApprovedBy = "bob", StartedAt = DateTimeOffset.Parse("2026-05-12T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture),
            CompletedAt = DateTimeOffset.Parse("2026-05-12T10:20:00Z", System.Globalization.CultureInfo.InvariantCulture), Environment = "lab", Reason = "5xx",
            CurrentRef = "sha256:" + new string('a', 64), RollbackTargetRef = "sha256:" + new string('b', 64), ChangedSurfaces = new[] { "api" },
            Health = "pass", PolicyInvariants = "pass", ContractSmoke = "pass", InsecureTls = insecure,
        };
        var insecure = ReceiptJson.ToJsonObject(new ReceiptFactory().Create(Input(true)));
        Assert.True(insecure["kfm_integrity"]!["insecure_tls"]!.GetValue<bool>());
        ReceiptSchema.Validate(insecure);
        Assert.Null(ReceiptJson.ToJsonObject(new ReceiptFactory().Create(Input(false)))["kfm_integrity"]!["insecure_tls"]);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
