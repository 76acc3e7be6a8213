using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace KfmRollback.Lab;

/// <summary>
/// A real Prometheus on a free loopback port scraping the stand-in API every second, with its own storage
/// directory. It runs under a small shell watchdog that kills it if the lab process disappears.
/// </summary>
public sealed class PrometheusProcess : IAsyncDisposable
{
    Process? _proc;
    public string Url { get; private set; } = "";
    public int Pid => _proc?.Id ?? 0;
    public string Dir { get; private set; } = "";

    public static async Task<PrometheusProcess> StartAsync(string binary, string outDir, int kfmApiPort, CancellationToken ct)
    {
        for (int attempt = 1; ; attempt++)
        {
            try { return await StartOnceAsync(binary, outDir, kfmApiPort, ct); }
            // Another server may bind the picked port first; pick a new one (LoopbackPorts).
            catch (PortTakenException) when (attempt < 5) { }
        }
    }

    sealed class PortTakenException(string message) : InvalidOperationException(message);

    static async Task<PrometheusProcess> StartOnceAsync(string binary, string outDir, int kfmApiPort, CancellationToken ct)
    {
        var pp = new PrometheusProcess { Dir = Path.Combine(outDir, "prometheus") };
        Directory.CreateDirectory(pp.Dir);
        var data = Path.Combine(pp.Dir, "data");
        if (Directory.Exists(data)) Directory.Delete(data, true);
        var cfg = Path.Combine(pp.Dir, "prometheus.yml");
        File.WriteAllText(cfg, $"""
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: kfm-api
                scrape_interval: 1s
                scrape_timeout: 900ms
                metrics_path: /metrics
                static_configs:
                  - targets: ["127.0.0.1:{kfmApiPort}"]
                    labels:
                      service: kfm-api
                      namespace: kfm

            """);
        var port = LoopbackPorts.Free();
        pp.Url = $"http://127.0.0.1:{port}";
        var args = $"--config.file={cfg} --storage.tsdb.path={data} --web.listen-address=127.0.0.1:{port} --storage.tsdb.retention.time=2h --log.level=warn";
        // Watchdog: prometheus dies with the lab even if the lab is killed with SIGKILL.
        var script = $"\"{binary}\" {args} > \"{Path.Combine(pp.Dir, "prometheus.log")}\" 2>&1 & P=$!; trap 'kill $P 2>/dev/null; wait $P; exit 0' TERM INT; "
                     + $"while kill -0 {Environment.ProcessId} 2>/dev/null && kill -0 $P 2>/dev/null; do sleep 0.5; done; kill $P 2>/dev/null; wait $P";
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, RedirectStandardInput = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        pp._proc = Process.Start(psi) ?? throw new InvalidOperationException("could not start prometheus");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var until = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < until)
        {
            if (pp._proc.HasExited)
            {
                var log = File.ReadAllText(Path.Combine(pp.Dir, "prometheus.log"));
                await pp.DisposeAsync();
                if (log.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
                    throw new PortTakenException($"prometheus could not bind 127.0.0.1:{port}: {log}");
                throw new InvalidOperationException($"prometheus exited: {log}");
            }
            try
            {
                using var r = await http.GetAsync(pp.Url + "/-/ready", ct);
                if (r.IsSuccessStatusCode) return pp;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested) { }
            await Task.Delay(200, ct);
        }
        await pp.DisposeAsync();
        throw new TimeoutException("prometheus did not become ready within 30 s");
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    static extern int SysKill(int pid, int sig);

    public async ValueTask DisposeAsync()
    {
        if (_proc == null) return;
        try
        {
            if (!_proc.HasExited)
            {
                // SIGTERM to the watchdog: it stops prometheus and reaps it (no zombie left behind).
                _ = SysKill(_proc.Id, 15);
                try { await _proc.WaitForExitAsync(new CancellationTokenSource(8000).Token); }
                catch (OperationCanceledException)
                {
                    _proc.Kill(entireProcessTree: true);
                    await _proc.WaitForExitAsync(new CancellationTokenSource(5000).Token);
                }
            }
        }
        catch (Exception) { }
        _proc.Dispose();
        _proc = null;
    }
}
