using System.Diagnostics;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Tests.GitOps;

/// <summary>Runs the git CLI for test setup, so fixtures are made by the same tool operators use.</summary>
internal static class Git
{
    public static string Run(string dir, params string[] args) => RunWithInput(dir, null, args);

    public static string RunWithInput(string dir, string? input, params string[] args)
    {
        var info = new ProcessStartInfo("git") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = input is not null };
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["GIT_AUTHOR_NAME"] = "Dev";
        info.Environment["GIT_AUTHOR_EMAIL"] = "dev@example.test";
        info.Environment["GIT_COMMITTER_NAME"] = "Dev";
        info.Environment["GIT_COMMITTER_EMAIL"] = "dev@example.test";
        info.Environment["GIT_CONFIG_NOSYSTEM"] = "1";
        info.Environment["HOME"] = dir;
        using var p = Process.Start(info)!;
        if (input is not null)
        {
            p.StandardInput.Write(input);
            p.StandardInput.Close();
        }
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"git {string.Join(' ', args)} failed: {stderr}");
        return stdout.Result.Trim();
    }
}

/// <summary>
/// A bare "remote" plus a working clone that seeds it: the deploy branch main with a kustomization
/// whose API digest moved D1 -> D2 -> D3 (D3 is current, D2 the last-known-good).
/// </summary>
internal sealed class GitTestRepo : IDisposable
{
    public const string D1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    public const string D2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    public const string D3 = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
    public const string File = "apps/api/kustomization.yaml";

    private readonly Receipts.TempDir _dir = new();

    public GitTestRepo(bool seed = true)
    {
        Bare = _dir.Sub("remote.git");
        Seed = _dir.Sub("seed");
        Directory.CreateDirectory(Bare);
        Directory.CreateDirectory(Seed);
        Git.Run(Bare, "init", "--bare", "-q", "-b", "main");
        Git.Run(Seed, "init", "-q", "-b", "main");
        Git.Run(Seed, "remote", "add", "origin", Bare);
        if (!seed) return;
        foreach (var (digest, message) in new[] { (D1, "deploy api 1.0"), (D2, "deploy api 1.1"), (D3, "deploy api 1.2") })
        {
            Write(File, Kustomization(digest));
            Commit(message);
            Write("README.md", "docs " + message);
            Commit("docs: " + message);
        }
        Git.Run(Seed, "push", "-q", "origin", "main");
    }

    public string Bare { get; }
    public string Seed { get; }
    public string Root => _dir.Path;

    public static string Kustomization(string digest) =>
        $"# prod\nimages:\n  - name: kfm-api\n    newName: registry.example.test/kfm/api\n    digest: {digest} # pinned\n";

    public void Write(string path, string content)
    {
        string full = Path.Combine(Seed, path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        System.IO.File.WriteAllText(full, content);
    }

    public string Commit(string message)
    {
        Git.Run(Seed, "add", "-A");
        Git.Run(Seed, "commit", "-q", "-m", message);
        return Git.Run(Seed, "rev-parse", "HEAD");
    }

    public void Push() => Git.Run(Seed, "push", "-q", "origin", "main");

    /// <summary>A fresh clone of the remote, as an operator's gitops.path.</summary>
    public string Clone(string? name = null)
    {
        string dir = _dir.Sub(name ?? "clone-" + Guid.NewGuid().ToString("N")[..8]);
        Git.Run(Root, "clone", "-q", Bare, dir);
        return dir;
    }

    public GitOpsConfig Config(string? path = null, Uri? url = null, bool allowDirectPush = false, string? killSwitch = null) => new()
    {
        Path = url is null ? path ?? Clone() : null,
        Url = url,
        File = File,
        Kind = GitOpsKind.Kustomize,
        ImageName = "kfm-api",
        AllowDirectPush = allowDirectPush,
        KillSwitchPath = killSwitch,
    };

    public string RemoteBranchTip(string branch) => Git.Run(Bare, "rev-parse", "refs/heads/" + branch);

    public string[] RemoteBranches() => Git.Run(Bare, "for-each-ref", "--format=%(refname:short)", "refs/heads").Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public void Dispose() => _dir.Dispose();
}
