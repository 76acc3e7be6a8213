using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Xunit;

namespace KfmRollback.Lab.Tests;

/// <summary>The lab as a separate process: start time, files, loopback-only binding, clean exit.</summary>
public class ProcessTests
{
    static string LabDll => Path.Combine(AppContext.BaseDirectory, "KfmRollback.Lab.dll");

    static Process StartLab(string dir, params string[] extra)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])[LabDll, "--out", dir, "--time-scale", "20", .. extra]) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine(); p.BeginErrorReadLine();
        return p;
    }

    static async Task Kill(Process p)
    {
        if (!p.HasExited) { p.Kill(true); await p.WaitForExitAsync(); }
    }

    /// <summary>Local listening sockets (address, port) from /proc/net/tcp and tcp6.</summary>
    static List<(string addr, int port)> Listeners()
    {
        var r = new List<(string, int)>();
        foreach (var f in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            if (!File.Exists(f)) continue;
            foreach (var line in File.ReadAllLines(f).Skip(1))
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length < 4 || parts[3] != "0A") continue;   // LISTEN
                var local = parts[1].Split(':');
                r.Add((local[0], int.Parse(local[1], NumberStyles.HexNumber)));
            }
        }
        return r;
    }

    [Fact]
    public async Task Starts_WritesFiles_BindsOnlyLoopback_ExitsOnSigterm()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kfm-lab-tests", "proc-" + Guid.NewGuid().ToString("N")[..8]);
        var p = StartLab(dir, "--parent-pid", Environment.ProcessId.ToString());
        try
        {
            await Lab.Eventually(() => File.Exists(Path.Combine(dir, "ready")) || p.HasExited, "ready file", 30);
            // No timed assertion: how fast the lab starts is not what this test is about, and a loaded CI
            // machine would make it fail for the wrong reason.
            Assert.False(p.HasExited, "lab exited during start");

            var labJson = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "lab.json")))!;
            Assert.Equal(p.Id, labJson.Long("pid"));
            var apiPort = (int)labJson.Long("apiserver.port")!.Value;
            var kfmPort = (int)labJson.Long("kfmApi.port")!.Value;
            Assert.StartsWith("https://127.0.0.1:", labJson.Str("apiserver.url"));
            Assert.Equal(21, ((JsonObject)labJson["catalogue"]!).Count);
            Assert.Matches("^sha256:[a-f0-9]{64}$", labJson["catalogue"]!["good-1.5.1"].Str("digest"));
            Assert.True(File.Exists(Path.Combine(dir, "kfm-api.openapi.json")));
            var kubeconfig = File.ReadAllText(Path.Combine(dir, "kubeconfig"));
            Assert.Contains("certificate-authority-data:", kubeconfig);
            Assert.Contains("name: lab-viewer", kubeconfig);

            // Both listeners are bound to 127.0.0.1 only (0100007F in /proc/net/tcp).
            var ls = Listeners();
            foreach (var port in new[] { apiPort, kfmPort })
            {
                var mine = ls.Where(l => l.port == port).ToList();
                Assert.NotEmpty(mine);
                Assert.All(mine, l => Assert.Equal("0100007F", l.addr));
            }

            // Real kubectl verifies the inline CA (no --insecure-skip-tls-verify).
            var r = await Lab.Exec(Lab.Kubectl, ["--kubeconfig", Path.Combine(dir, "kubeconfig"), "--cache-dir", Path.Combine(dir, "kube-cache"), "get", "ns", "kfm", "-o", "name"]);
            Assert.Equal("namespace/kfm", r.Ok().Out.Trim());

            (await Lab.Exec("/bin/kill", ["-TERM", p.Id.ToString()])).Ok();
            await Lab.Eventually(() => p.HasExited, "lab exits on SIGTERM", 20);
            Assert.Equal(0, p.ExitCode);
            Assert.False(File.Exists(Path.Combine(dir, "ready")));
        }
        finally { await Kill(p); try { Directory.Delete(dir, true); } catch (IOException) { } }
    }

    [Fact]
    public async Task ExitsWhenParentDies()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kfm-lab-tests", "proc-" + Guid.NewGuid().ToString("N")[..8]);
        var parent = Process.Start(new ProcessStartInfo("/bin/sleep", "3") { UseShellExecute = false })!;
        var p = StartLab(dir, "--parent-pid", parent.Id.ToString(), "--http");
        try
        {
            await Lab.Eventually(() => File.Exists(Path.Combine(dir, "ready")) || p.HasExited, "ready file", 30);
            Assert.Contains("server: http://127.0.0.1:", File.ReadAllText(Path.Combine(dir, "kubeconfig")));
            var r = await Lab.Exec(Lab.Kubectl, ["--kubeconfig", Path.Combine(dir, "kubeconfig"), "--cache-dir", Path.Combine(dir, "kube-cache"), "get", "deploy", "-n", "kfm", "-o", "name"]);
            Assert.Equal("deployment.apps/kfm-api", r.Ok().Out.Trim());
            await parent.WaitForExitAsync();
            await Lab.Eventually(() => p.HasExited, "lab exits after its parent", 20);
            Assert.Equal(0, p.ExitCode);
        }
        finally { await Kill(p); parent.Dispose(); try { Directory.Delete(dir, true); } catch (IOException) { } }
    }

    [Fact]
    public async Task PrometheusFlag_WithMissingBinary_FailsWithInstallHint()
    {
        var dir = Path.Combine(Path.GetTempPath(), "kfm-lab-tests", "proc-" + Guid.NewGuid().ToString("N")[..8]);
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => LabHost.StartAsync(new LabOptions
        {
            OutDir = dir, Prometheus = true, PrometheusBinary = "/nonexistent/prometheus",
        }));
        Assert.Contains("apt-get install -y prometheus", ex.Message);
        Assert.False(File.Exists(Path.Combine(dir, "ready")));
        try { Directory.Delete(dir, true); } catch (IOException) { }
    }
}
