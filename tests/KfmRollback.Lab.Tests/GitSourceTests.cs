using System.Diagnostics;
using System.Text.Json.Nodes;
using KfmRollback.Lab.Api;
using Xunit;

namespace KfmRollback.Lab.Tests;

/// <summary>A bare repository the lab's controllers read, seeded and moved on with the git CLI.</summary>
sealed class LabGitRepo
{
    public string Bare { get; }
    readonly string _work;

    public LabGitRepo(string dir)
    {
        Bare = Path.Combine(dir, "infra.git");
        _work = Path.Combine(dir, "infra-work");
        Directory.CreateDirectory(Bare);
        Directory.CreateDirectory(_work);
        Git(Bare, "init", "--bare", "-q", "-b", "main");
        Git(_work, "init", "-q", "-b", "main");
        Git(_work, "remote", "add", "origin", Bare);
    }

    /// <summary>Writes <paramref name="path"/>, commits and pushes main; returns the commit id.</summary>
    public string Commit(string path, string content)
    {
        var full = Path.Combine(_work, path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content);
        Git(_work, "add", "-A");
        Git(_work, "commit", "-q", "-m", "change " + path);
        Git(_work, "push", "-q", "origin", "main");
        return Git(_work, "rev-parse", "HEAD");
    }

    public static string Kustomization(string digest) =>
        $"resources: [deployment.yaml]\nimages:\n  - name: kfm-api\n    newName: registry.kfm.local/kfm-api\n    digest: {digest}\n";

    static string Git(string dir, params string[] args)
    {
        var info = new ProcessStartInfo("git") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (k, v) in new[] { ("GIT_AUTHOR_NAME", "Dev"), ("GIT_AUTHOR_EMAIL", "dev@example.test"), ("GIT_COMMITTER_NAME", "Dev"), ("GIT_COMMITTER_EMAIL", "dev@example.test"), ("GIT_CONFIG_NOSYSTEM", "1"), ("HOME", dir) })
            info.Environment[k] = v;
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"git {string.Join(' ', args)}: {stderr}");
        return stdout.Result.Trim();
    }
}

public class GitSourceTests
{
    static JsonObject App(Lab lab) => lab.Host.Store.Get(Resources.Applications, "argocd", "kfm-api")!;

    [Fact]
    public async Task Argo_DeploysTheBranchTip_FrozenIgnoresMerges_OperationSyncsOneRevision()
    {
        await using var lab = await Lab.Start();
        await lab.RolledOut();
        var repo = new LabGitRepo(lab.Dir);
        string Digest(string name) => lab.Host.Images.Get(name).Digest;
        repo.Commit("overlays/prod/kustomization.yaml", LabGitRepo.Kustomization(Digest("good-1.5.1")));
        var bad = repo.Commit("overlays/prod/kustomization.yaml", LabGitRepo.Kustomization(Digest("bad-5xx")));
        (await lab.K("patch", "application", "kfm-api", "-n", "argocd", "--type=merge", "-p",
            new JsonObject { ["spec"] = new JsonObject { ["source"] = new JsonObject { ["repoURL"] = repo.Bare, ["path"] = "overlays/prod", ["targetRevision"] = "main" } } }.ToJsonString())).Ok();

        // Auto-sync on: the tip of main decides the image, revisions are commit ids.
        await Lab.Eventually(() => lab.Image() == lab.Host.Images.Get("bad-5xx").Image, "Argo deploys the commit at the tip");
        Assert.Equal(bad, App(lab).Str("status.sync.revision"));
        Assert.Equal(bad, App(lab).Str("status.operationState.syncResult.revision"));
        Assert.Equal(bad, (App(lab).At("status.history") as JsonArray)!.Last().Str("revision"));

        // Frozen: a merged commit is compared (OutOfSync at the new revision) but not deployed.
        (await lab.K("patch", "application", "kfm-api", "-n", "argocd", "--type=merge", "-p", "{\"spec\":{\"syncPolicy\":{\"automated\":null}}}")).Ok();
        var fix = repo.Commit("overlays/prod/kustomization.yaml", LabGitRepo.Kustomization(Digest("good-1.5.0")));
        await Lab.Eventually(() => App(lab).Str("status.sync.revision") == fix, "Argo compares the new tip");
        await lab.Send(HttpMethod.Post, "/lab/advance?seconds=60");
        lab.Host.TickNow();
        Assert.Equal("OutOfSync", App(lab).Str("status.sync.status"));
        Assert.Equal(lab.Host.Images.Get("bad-5xx").Image, lab.Image());
        Assert.Equal(bad, App(lab).Str("status.operationState.syncResult.revision"));

        // One sync operation pinned to a revision runs while auto-sync stays off, and is cleared.
        (await lab.K("patch", "application", "kfm-api", "-n", "argocd", "--type=merge", "-p",
            $"{{\"operation\":{{\"initiatedBy\":{{\"username\":\"kfm\"}},\"sync\":{{\"revision\":\"{fix}\"}}}}}}")).Ok();
        await Lab.Eventually(() => lab.Image() == lab.Host.Images.Get("good-1.5.0").Image, "the operation syncs the pinned revision");
        await Lab.Eventually(() => App(lab)["operation"] is null, "operation cleared");
        Assert.Equal(fix, App(lab).Str("status.operationState.syncResult.revision"));
        Assert.Equal("kfm", App(lab).Str("status.operationState.operation.initiatedBy.username"));
        Assert.Null(App(lab).At("spec.syncPolicy.automated"));
        await lab.RolledOut();
        await Lab.Eventually(() => App(lab).Str("status.sync.status") == "Synced" && App(lab).Str("status.health.status") == "Healthy", "Synced and Healthy");

        // An unreadable tip is a ComparisonError, never a deploy.
        repo.Commit("overlays/prod/kustomization.yaml", "images: [ {name: kfm-api\n");
        await Lab.Eventually(() => (App(lab).At("status.conditions") as JsonArray)?.Any(c => c.Str("type") == "ComparisonError") == true, "ComparisonError");
        Assert.Equal(lab.Host.Images.Get("good-1.5.0").Image, lab.Image());
    }

    [Fact]
    public async Task Flux_GitRepositorySource_SuspendedIgnoresMerges_ResumeAndRequestedAtDeploys()
    {
        await using var lab = await Lab.Start();
        var repo = new LabGitRepo(lab.Dir);
        repo.Commit("apps/web/kustomization.yaml", "resources: [deployment.yaml]\nimages:\n  - name: nginx\n    newTag: \"1.25\"\n");
        var file = Manifests.NginxDeployment(lab.Dir, "web", extraDocuments: $"""
            ---
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: GitRepository
            metadata: {"{"}name: infra, namespace: flux-system{"}"}
            spec: {"{"}interval: 1m, url: "{repo.Bare}", ref: {"{"}branch: main{"}"}{"}"}
            ---
            apiVersion: kustomize.toolkit.fluxcd.io/v1
            kind: Kustomization
            metadata: {"{"}name: web, namespace: flux-system{"}"}
            spec:
              interval: 1m
              path: ./apps/web
              targetNamespace: default
              sourceRef: {"{"}kind: GitRepository, name: infra{"}"}
            """);
        (await lab.K("apply", "-f", file)).Ok();
        JsonObject Ks() => lab.Host.Store.Get(Resources.Kustomizations, "flux-system", "web")!;
        await Lab.Eventually(() => Ks().Str("status.lastAppliedRevision")?.StartsWith("main@sha1:") == true, "applied from Git");
        var gitrepo = (await lab.K("get", "gitrepository", "infra", "-n", "flux-system", "-o", "json")).Ok();
        Assert.Equal(Ks().Str("status.lastAppliedRevision"), JsonNode.Parse(gitrepo.Out).Str("status.artifact.revision"));

        (await lab.K("patch", "kustomization", "web", "-n", "flux-system", "--type=merge", "-p", "{\"spec\":{\"suspend\":true}}")).Ok();
        var sha = repo.Commit("apps/web/kustomization.yaml", "resources: [deployment.yaml]\nimages:\n  - name: nginx\n    newTag: \"1.27\"\n");
        await Lab.Eventually(() => lab.Host.Store.Get(Resources.GitRepositories, "flux-system", "infra").Str("status.artifact.revision") == "main@sha1:" + sha, "source-controller fetches while suspended");
        await lab.Send(HttpMethod.Post, "/lab/advance?seconds=60");
        lab.Host.TickNow();
        Assert.Equal("nginx:1.25", lab.Image("default", "web"));
        Assert.NotEqual("main@sha1:" + sha, Ks().Str("status.lastAppliedRevision"));

        (await lab.K("patch", "kustomization", "web", "-n", "flux-system", "--type=merge", "-p", "{\"spec\":{\"suspend\":false}}")).Ok();
        (await lab.K("annotate", "kustomization", "web", "-n", "flux-system", "--overwrite", "reconcile.fluxcd.io/requestedAt=2026-11-28T12:00:00.000000000Z")).Ok();
        await Lab.Eventually(() => lab.Image("default", "web") == "nginx:1.27", "resumed Kustomization applies the new commit");
        Assert.Equal("main@sha1:" + sha, Ks().Str("status.lastAppliedRevision"));
        Assert.Equal(Ks().Long("metadata.generation"), Ks().Long("status.observedGeneration"));
    }
}
