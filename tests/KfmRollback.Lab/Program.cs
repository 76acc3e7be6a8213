using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using KfmRollback.Lab;

// dotnet KfmRollback.Lab.dll --out <dir> [--port N] [--kfm-port N] [--http] [--time-scale X]
//   [--pod-start-seconds S] [--self-heal-seconds S] [--prometheus] [--parent-pid PID] [--no-seed] [--traffic RPS]
string? outDir = null; int port = 0, kfmPort = 0; bool http = false, prom = false, seed = true;
double scale = 1, podStart = 2, traffic = 4, selfHeal = 3; int? parent = null;
try
{
    for (int i = 0; i < args.Length; i++)
    {
        string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
        switch (args[i])
        {
            case "--out": outDir = Next(); break;
            case "--port": port = int.Parse(Next(), CultureInfo.InvariantCulture); break;
            case "--kfm-port": kfmPort = int.Parse(Next(), CultureInfo.InvariantCulture); break;
            case "--http": http = true; break;
            case "--time-scale": scale = double.Parse(Next(), CultureInfo.InvariantCulture); break;
            case "--pod-start-seconds": podStart = double.Parse(Next(), CultureInfo.InvariantCulture); break;
            case "--self-heal-seconds": selfHeal = double.Parse(Next(), CultureInfo.InvariantCulture); break;
            case "--traffic": traffic = double.Parse(Next(), CultureInfo.InvariantCulture); break;
            case "--prometheus": prom = true; break;
            case "--parent-pid": parent = int.Parse(Next(), CultureInfo.InvariantCulture); break;
            case "--no-seed": seed = false; break;
            case "-h" or "--help":
                Console.WriteLine("usage: KfmRollback.Lab --out <dir> [--port N] [--kfm-port N] [--http] [--time-scale X] [--pod-start-seconds S] [--self-heal-seconds S] [--traffic RPS] [--prometheus] [--parent-pid PID] [--no-seed]");
                return 0;
            default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
        }
    }
}
catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
{
    Console.Error.WriteLine($"bad arguments: {e.Message} (see --help)");
    return 2;
}
if (outDir == null) { Console.Error.WriteLine("--out <dir> is required"); return 2; }

LabHost lab;
try
{
    lab = await LabHost.StartAsync(new LabOptions
    {
        OutDir = Path.GetFullPath(outDir), Port = port, KfmApiPort = kfmPort, Http = http, TimeScale = scale,
        PodStartSeconds = podStart, SelfHealSeconds = selfHeal, Prometheus = prom, Seed = seed, TrafficPerSecond = traffic,
    });
}
catch (Exception e)
{
    Console.Error.WriteLine($"lab failed to start: {e.Message}");
    return 1;
}

Console.WriteLine($"lab ready in {lab.StartupTime.TotalMilliseconds:F0} ms: apiserver {lab.ApiServerUrl}, kfm-api {lab.KfmApiUrl}{(lab.PrometheusUrl != null ? ", prometheus " + lab.PrometheusUrl : "")}; kubeconfig {lab.KubeconfigPath}");
var stop = new TaskCompletionSource();
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
if (parent is int ppid)
{
    _ = Task.Run(async () =>
    {
        while (!stop.Task.IsCompleted)
        {
            try { using var p = Process.GetProcessById(ppid); if (p.HasExited) break; }
            catch (ArgumentException) { break; }
            await Task.Delay(500);
        }
        stop.TrySetResult();
    });
}
await stop.Task;
await lab.DisposeAsync();
Console.WriteLine("lab stopped");
return 0;
