using KfmRollback.Engine.Tests.Support;
using KfmRollback.Engine.Adapters.Http;
using KfmRollback.Engine.Adapters.Helm;
using KfmRollback.Engine.Aftermath;
using KfmRollback.Engine.Refs;
using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Incidents;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Rollback.Surfaces;
using KfmRollback.Engine.Safety;
using KfmRollback.Engine.Tests.Rollback;
using KfmRollback.Engine.Verification;

namespace KfmRollback.Engine.Tests.Security;

/// <summary>
/// Issue 17, item 6: planted snapshots, policy probes that change their method, free text, Markdown,
/// YAML alias bombs and gzip bombs.
/// </summary>
public sealed class HostileInputTests
{
    private const string Map = "kfm-api-config";

    private static async Task<(ConfigSnapshots Snapshots, ConfigObjectState Plan)> SnapshotThenChangeAsync(EngineLab lab)
    {
        var snapshots = new ConfigSnapshots(lab.Client, "kfm");
        await snapshots.TakeAsync(new[] { (ConfigObjectKind.ConfigMap, Map) }, "template-a", CancellationToken.None);
        V1ConfigMap live = await lab.Client.CoreV1.ReadNamespacedConfigMapAsync(Map, "kfm");
        live.Data["feature_x"] = "on";
        await lab.Client.CoreV1.ReplaceNamespacedConfigMapAsync(live, Map, "kfm");
        ConfigObjectState plan = Assert.Single(await snapshots.PlanRestoreAsync(new[] { (ConfigObjectKind.ConfigMap, Map) }, "template-a", CancellationToken.None));
        Assert.Equal("restore", plan.Action);
        return (snapshots, plan);
    }

    [Fact]
    public async Task A_snapshot_whose_data_no_longer_matches_its_hash_is_never_restored()
    {
        await using var lab = await EngineLab.StartAsync();
        var (snapshots, plan) = await SnapshotThenChangeAsync(lab);
        // Someone rewrites the snapshot's data and leaves its content-sha256 annotation as it was.
        V1ConfigMap snapshot = await lab.Client.CoreV1.ReadNamespacedConfigMapAsync(plan.SnapshotName, "kfm");
        snapshot.Data["policy_bundle"] = "kfm-policy@sha256-" + new string('e', 64);
        await lab.Client.CoreV1.ReplaceNamespacedConfigMapAsync(snapshot, plan.SnapshotName, "kfm");
        string before = KubernetesJson.Serialize((await lab.Client.CoreV1.ReadNamespacedConfigMapAsync(Map, "kfm")).Data);

        var atApply = await Assert.ThrowsAsync<KfmException>(() => snapshots.RestoreAsync(plan, CancellationToken.None));
        var atPlan = await Assert.ThrowsAsync<KfmException>(() => snapshots.PlanRestoreAsync(new[] { (ConfigObjectKind.ConfigMap, Map) }, "template-a", CancellationToken.None));

        Assert.Equal("ConfigSnapshotTampered", atApply.ErrorId);
        Assert.Equal(KfmErrorKind.SecurityError, atApply.Kind);
        Assert.Equal("ConfigSnapshotTampered", atPlan.ErrorId);
        Assert.Equal(before, KubernetesJson.Serialize((await lab.Client.CoreV1.ReadNamespacedConfigMapAsync(Map, "kfm")).Data));
    }

    [Fact]
    public async Task A_planted_snapshot_with_a_forged_content_annotation_is_refused()
    {
        await using var lab = await EngineLab.StartAsync();
        V1ConfigMap live = await lab.Client.CoreV1.ReadNamespacedConfigMapAsync(Map, "kfm");
        string liveHash = ConfigSnapshots.Hash(live.Data, live.BinaryData);
        // Planted for the template a rollback would go back to, claiming the live content's hash.
        await lab.Client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap
        {
            Metadata = new V1ObjectMeta
            {
                Name = "kfm-snap-cm-kfm-api-config-planted",
                Labels = new Dictionary<string, string> { [ConfigSnapshots.SnapshotOfLabel] = Map, [ConfigSnapshots.KindLabel] = "configmap" },
                Annotations = new Dictionary<string, string> { [ConfigSnapshots.ContentAnnotation] = "sha256:" + new string('0', 64), [ConfigSnapshots.TemplatesAnnotation] = "template-b" },
            },
            Data = new Dictionary<string, string> { ["maintenance"] = "false", ["policy_bundle"] = "attacker@sha256-" + new string('f', 64) },
        }, "kfm");

        var e = await Assert.ThrowsAsync<KfmException>(() => new ConfigSnapshots(lab.Client, "kfm").PlanRestoreAsync(new[] { (ConfigObjectKind.ConfigMap, Map) }, "template-b", CancellationToken.None));
        Assert.Equal("ConfigSnapshotTampered", e.ErrorId);
        Assert.Equal(liveHash, ConfigSnapshots.Hash((await lab.Client.CoreV1.ReadNamespacedConfigMapAsync(Map, "kfm")).Data, null));
    }

    [Fact]
    public async Task Policy_probes_send_the_configured_method_and_a_public_caller_never_sends_a_write()
    {
        var seen = new System.Collections.Concurrent.ConcurrentQueue<(string Method, string Path, bool Token)>();
        using var api = new RecordingServer(async context =>
        {
            string method = context.Request.HttpMethod;
            bool token = context.Request.Headers["Authorization"] is not null;
            seen.Enqueue((method, context.Request.Url!.AbsolutePath, token));
            // Reads are denied to anonymous callers; an anonymous DELETE goes through.
            int status = method == "DELETE" ? 204 : token ? 404 : 401;
            await RecordingServer.Answer(context, status == 204 ? 200 : status,
                status == 204 ? "{}" : "{\"error_code\":\"DENIED\",\"message\":\"no\",\"audit_ref\":\"kfm://audit/1\"}");
        });
        string dir = Directory.CreateTempSubdirectory("kfm-policy-method").FullName;
        string variable = "KFM_TEST_METHOD_" + Guid.NewGuid().ToString("N")[..6].ToUpperInvariant();
        System.Environment.SetEnvironmentVariable(variable, "public-token-value");
        System.Environment.SetEnvironmentVariable(variable + "_IDS", "restricted_one");
        try
        {
            var environment = KfmConfigLoader.LoadFromText($"""
                defaults: {"{"} incident_journal: {dir}/j, receipt_store: {dir}/r {"}"}
                environments:
                  lab:
                    cluster: {"{"} namespace: kfm, deployment: kfm-api {"}"}
                    api:
                      base_url: {api.BaseUrl}
                      contract_snapshot_dir: {dir}/c
                      probe:
                        restricted_ids_env: {variable}_IDS
                        callers:
                          anon: {"{"} anonymous: true, role: public {"}"}
                          public-user: {"{"} token_env: {variable}, role: public {"}"}
                        endpoints:
                          - path: /api/v1/datasets/{"{id}"}
                            method: DELETE
                          - path: /api/v1/datasets

                """, "kfm-rollback.yaml", dir).GetEnvironment("lab");

            IReadOnlyList<CheckResult> results = await PolicyChecks.RunAsync(environment, CancellationToken.None);

            CheckResult denied = Assert.Single(results, r => r.Check == "B.unauthenticated-denied");
            Assert.Equal(Verdict.Fail, denied.Verdict);
            Assert.Contains("DELETE /api/v1/datasets/{id}", denied.Summary);
            Assert.Contains(seen, s => s.Method == "DELETE" && !s.Token);
            Assert.DoesNotContain(seen, s => s.Method == "DELETE" && s.Token);
            Assert.DoesNotContain(seen, s => s.Path.Contains("restricted_one", StringComparison.Ordinal) && s.Method != "GET");
            Assert.Equal(Verdict.Inconclusive, Assert.Single(results, r => r.Check == "B.existence-leak/api/v1/datasets/{id}").Verdict);
        }
        finally
        {
            System.Environment.SetEnvironmentVariable(variable, null);
            System.Environment.SetEnvironmentVariable(variable + "_IDS", null);
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("DB_PWD=Zq7canaryValue42x")]
    [InlineData("see https://ops:Zq7canaryValue42x@git.example.test/x")]
    public void Free_text_that_carries_a_credential_is_refused_before_it_is_written(string text)
    {
        RollbackRequest Request(Func<RollbackRequest, RollbackRequest> change) => change(new RollbackRequest
        {
            Environment = EnvironmentConfig.Create("prod", new ClusterConfig { Namespace = "kfm", Deployment = "kfm-api" }, new GitOpsConfig { Path = "/x", File = "k.yaml", Kind = GitOpsKind.Kustomize, ImageName = "kfm-api" }),
            Method = RollbackMethod.GitOps, IncidentId = "INC-1", Actor = "alice", Reason = "5xx", BlastRadius = "api",
        });
        foreach (var request in new[] { Request(r => r with { Reason = text }), Request(r => r with { BlastRadius = text }), Request(r => r with { Method = RollbackMethod.Cluster, Force = true, ForceReason = text }) })
        {
            var e = Assert.Throws<KfmException>(() => RollbackRules.Validate(request, new PolicySafeText()));
            Assert.Equal("TextLooksSecret", e.ErrorId);
            Assert.DoesNotContain("Zq7canaryValue42x", e.Message);
        }
        var freeze = Assert.Throws<KfmException>(() => new KfmRollback.Engine.Freeze.FreezeService(new KfmRollback.Engine.Freeze.FreezeMechanisms(_ => throw new InvalidOperationException("no cluster"), null), new PolicySafeText(), SystemClock.Instance).ApplyAsync(
            EnvironmentConfig.Create("prod", new ClusterConfig { Namespace = "kfm", Deployment = "kfm-api" }, new GitOpsConfig { Path = "/x", File = "k.yaml", Kind = GitOpsKind.Kustomize, ImageName = "kfm-api" }),
            null, freeze: true, new KfmRollback.Engine.Freeze.FreezeRequest("INC-1", "alice", text, DateTimeOffset.UtcNow), dryRun: true, (_, _) => { }, CancellationToken.None).GetAwaiter().GetResult());
        Assert.Equal("TextLooksSecret", freeze.ErrorId);
    }

    [Fact]
    public void Markdown_from_people_stays_text_in_the_pr_body_and_the_follow_up()
    {
        const string reason = "5xx | spike](https://evil.example) <img src=x onerror=alert(1)> **now** `code` [click](https://evil.example)";
        string body = RollbackMessage.PullRequestBody("INC-1", "sha256:" + new string('a', 64), "ref`with`ticks", reason, "api\n## Injected heading");

        string reasonLine = body.Split('\n').Single(l => l.StartsWith("- Reason: ", StringComparison.Ordinal));
        Assert.Equal("- Reason: " + MarkdownText.Inline(reason), reasonLine);
        Assert.DoesNotContain(" <img", body);
        Assert.Contains(" \\<img", body);
        Assert.DoesNotContain(" [click]", body);
        Assert.DoesNotContain("\n## Injected", body);
        Assert.Contains("- current_ref: `ref'with'ticks`", body);

        var incident = new Incident
        {
            IncidentId = "INC-1", Commander = "alice [x](https://evil.example)", Reason = reason, Environment = "prod",
            StartedAt = DateTimeOffset.UtcNow, OpenedBy = "alice", OpenedAt = DateTimeOffset.UtcNow, JournalPath = "/tmp/none", ImpactedEndpoints = Array.Empty<ImpactedEndpoint>(),
            Timeline = new[] { new TimelineEntry(DateTimeOffset.UtcNow, "OPS", "Froze argocd:argocd/kfm-api <b>x</b> (prod)", "alice") },
        };
        FollowUpPlan plan = FollowUpService.Plan(incident, "prod", Array.Empty<EvidenceBundle>(), Redactor.Default);
        Assert.DoesNotContain("[x](", plan.Body);
        Assert.DoesNotContain("<b>", plan.Body);
        Assert.Contains("alice \\[x\\](https://evil.example)", plan.Body);

        // The report's Markdown: a reason cannot add table cells, links or HTML to it.
        string dir = Directory.CreateTempSubdirectory("kfm-report-md").FullName;
        try
        {
            IncidentReportFiles files = IncidentReport.Write(incident, Array.Empty<EvidenceBundle>(), null, plan, Redactor.Default, dir);
            string md = File.ReadAllText(files.MarkdownPath);
            string reasonRow = md.Split('\n').Single(l => l.StartsWith("| reason | ", StringComparison.Ordinal));
            Assert.Equal($"| reason | {MarkdownText.Inline(reason)} |", reasonRow);
            Assert.Equal(3, System.Text.RegularExpressions.Regex.Matches(reasonRow, @"(?<!\\)\|").Count); // two cells: the '|' in the reason is no cell
            Assert.DoesNotContain(" <img", md);
            Assert.DoesNotContain(" [click](", md);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void A_self_referencing_yaml_alias_is_refused_not_a_stack_overflow()
    {
        const string manifest = "---\n# Source: chart/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: kfm-api\nspec: &loop\n  template:\n    spec: *loop\n";
        var e = Assert.Throws<KfmException>(() => HelmManifest.Parse(manifest, "kfm-api"));
        Assert.Equal("HelmManifestMalformed", e.ErrorId);
        Assert.Contains("alias", e.Message);
    }

    [Fact]
    public void An_alias_bomb_is_refused_and_modest_aliases_still_read()
    {
        var bomb = new StringBuilder("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\ndata:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for (int i = 1; i < 9; i++) bomb.Append($"  a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]\n");
        Assert.Equal("HelmManifestMalformed", Assert.Throws<KfmException>(() => HelmManifest.Parse(bomb.ToString(), "kfm-api")).ErrorId);

        const string shared = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: kfm-api\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          env: &env\n            - name: LOG_LEVEL\n              value: info\n        - name: sidecar\n          env: *env\n";
        ManifestObject deployment = Assert.Single(HelmManifest.Parse(shared, "kfm-api"));
        Assert.Equal("info", deployment.Body["spec"]!["template"]!["spec"]!["containers"]![1]!["env"]![0]!["value"]!.GetValue<string>());
    }

    [Fact]
    public void A_gzip_bomb_in_a_release_secret_is_refused_before_it_fills_memory()
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            gzip.Write("{\"name\":\""u8);
            byte[] zeros = new byte[1024 * 1024];
            Array.Fill(zeros, (byte)'0');
            for (int i = 0; i < HelmReleaseCodec.MaxDecodedBytes / zeros.Length + 1; i++) gzip.Write(zeros);
            gzip.Write("\"}"u8);
        }
        Assert.True(buffer.Length < 1024 * 1024, "the bomb fits in a Secret");
        var e = Assert.Throws<KfmException>(() => HelmReleaseCodec.Decode(Convert.ToBase64String(buffer.ToArray()), "sh.helm.release.v1.kfm-api.v9"));
        Assert.Equal("HelmReleaseUndecodable", e.ErrorId);
        Assert.Contains("decompresses to more than", e.Message);

        JsonObject release = new() { ["name"] = "kfm-api", ["version"] = 1 };
        Assert.Equal("kfm-api", HelmReleaseCodec.Decode(HelmReleaseCodec.Encode(release), "sh.helm.release.v1.kfm-api.v1")["name"]!.GetValue<string>());
    }
}
