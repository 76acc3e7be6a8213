#nullable enable
using System;
using System.Diagnostics;
using System.IO;
using System.Text;

namespace KfmRollback.Bench
{
    /// <summary>
    /// Builds a large GitOps repository for benchmarks (bench/git-history.ps1, which compiles this file
    /// with Add-Type: a benchmark fixture does not ship in the module):
    /// <c>commits</c> commits on main, the kustomization at <see cref="FilePath"/> changing every
    /// <c>every</c>-th commit to a new digest. Streams into git fast-import, which writes 20,000
    /// commits in seconds where one process per commit would take minutes.
    /// </summary>
    public static class GitOpsBenchRepository
    {
        public const string FilePath = "apps/api/kustomization.yaml";
        public const string ImageName = "kfm-api";

        /// <summary>The digest written at commit <paramref name="index"/> (1-based), so callers know what to expect.</summary>
        public static string DigestAt(int index) => "sha256:" + index.ToString("x64");

        public static void Create(string path, int commits, int every)
        {
            if (commits < 1 || every < 1)
                throw new ArgumentOutOfRangeException(commits < 1 ? nameof(commits) : nameof(every), "must be at least 1");
            Directory.CreateDirectory(path);
            RunGit(path, null, "init", "-q", "-b", "main");
            var stream = new StringBuilder();
            long when = 1_700_000_000;
            for (int i = 1; i <= commits; i++)
            {
                stream.Append("commit refs/heads/main\n");
                stream.Append($"mark :{i}\n");
                stream.Append($"committer Bench <bench@example.test> {when + i * 60} +0000\n");
                Data(stream, $"change {i}\n");
                if (i > 1)
                    stream.Append($"from :{i - 1}\n");
                Inline(stream, "counter.txt", $"{i}\n");
                if (i == 1 || i % every == 0)
                    Inline(stream, FilePath, $"# bench\nimages:\n  - name: {ImageName}\n    newName: registry.example.test/kfm/api\n    digest: {DigestAt(i)}\n");
            }
            stream.Append("done\n");
            RunGit(path, stream.ToString(), "fast-import", "--quiet", "--done");
            RunGit(path, null, "reset", "-q", "--hard", "main");
        }

        private static void Inline(StringBuilder stream, string file, string content)
        {
            stream.Append($"M 100644 inline {file}\n");
            Data(stream, content);
        }

        private static void Data(StringBuilder stream, string content) =>
            stream.Append($"data {Encoding.UTF8.GetByteCount(content)}\n").Append(content).Append('\n');

        private static void RunGit(string dir, string? input, params string[] args)
        {
            var info = new ProcessStartInfo("git") { WorkingDirectory = dir, RedirectStandardInput = input is not null, RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var a in args) info.ArgumentList.Add(a);
            using var p = Process.Start(info)!;
            if (input is not null)
            {
                p.StandardInput.Write(input);
                p.StandardInput.Close();
            }
            var stdout = p.StandardOutput.ReadToEndAsync();
            string stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            _ = stdout.Result;
            if (p.ExitCode != 0)
                throw new InvalidOperationException($"git {args[0]} failed: {stderr.Trim()}");
        }
    }
}
