using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Lab.Api;
using KfmRollback.Lab.Controllers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KfmRollback.Lab;

public sealed class LabOptions
{
    /// <summary>Directory for kubeconfig, lab.json, kfm-api.openapi.json and ready.</summary>
    public required string OutDir { get; set; }
    /// <summary>Apiserver port; 0 picks a free one.</summary>
    public int Port { get; set; }
    /// <summary>Stand-in KFM API port; 0 picks a free one.</summary>
    public int KfmApiPort { get; set; }
    /// <summary>Serve the apiserver over plain HTTP instead of HTTPS.</summary>
    public bool Http { get; set; }
    /// <summary>Simulated seconds per real second.</summary>
    public double TimeScale { get; set; } = 1;
    /// <summary>Simulated seconds from pod creation to Ready.</summary>
    public double PodStartSeconds { get; set; } = 2;
    /// <summary>Simulated seconds a GitOps controller waits before reverting drift.</summary>
    public double SelfHealSeconds { get; set; } = 3;
    public bool Seed { get; set; } = true;
    /// <summary>Synthetic requests per second sent to the stand-in API (0 disables).</summary>
    public double TrafficPerSecond { get; set; } = 4;
    /// <summary>Start a real Prometheus (/usr/bin/prometheus) scraping the stand-in API.</summary>
    public bool Prometheus { get; set; }
    public string PrometheusBinary { get; set; } = "/usr/bin/prometheus";
    /// <summary>Write the files (kubeconfig, lab.json, ready). LabHost in tests may skip the ready file.</summary>
    public bool WriteFiles { get; set; } = true;
}

/// <summary>The whole lab cluster in one process: apiserver, controllers, stand-in KFM API, optional Prometheus.</summary>
public sealed class LabHost : IAsyncDisposable
{
    public LabOptions Options { get; }
    public SimClock Clock { get; }
    public Store Store { get; }
    public Faults Faults { get; } = new();
    /// <summary>Denying validating admission webhooks registered by tests (POST /lab/admission).</summary>
    public ValidatingWebhooks Webhooks { get; } = new();
    /// <summary>Every write the apiserver accepted or refused, as kube-apiserver's audit log (also out/audit.log).</summary>
    public AuditLog Audit { get; private set; } = new(null);
    public ImageCatalogue Images { get; } = new();
    public Workloads Workloads { get; }
    public GitOps GitOps { get; }
    /// <summary>Flux ImageUpdateAutomation and Argo CD Image Updater stand-ins.</summary>
    public ImageAutomation ImageAutomation { get; }
    public KfmApi KfmApi { get; }
    public string AdminToken { get; } = Token();
    public string ViewerToken { get; } = Token();
    public string PublicToken { get; } = Token();
    public string StewardToken { get; } = Token();
    public Certs? Certs { get; private set; }
    public int Port { get; private set; }
    public int KfmApiPort { get; private set; }
    public string ApiServerUrl => $"{(Options.Http ? "http" : "https")}://127.0.0.1:{Port}";
    public string KfmApiUrl => $"http://127.0.0.1:{KfmApiPort}";
    public string KubeconfigPath => Path.Combine(Options.OutDir, "kubeconfig");
    public string? PrometheusUrl => _prometheus?.Url;
    public TimeSpan StartupTime { get; private set; }

    WebApplication? _api, _kfm, _zipkin;
    /// <summary>The in-lab trace store (Zipkin API v2 shape) the stand-in API exports its spans to.</summary>
    public ZipkinCollector Zipkin { get; } = new();
    public int ZipkinPort { get; private set; }
    public string ZipkinUrl => $"http://127.0.0.1:{ZipkinPort}";
    PrometheusProcess? _prometheus;
    readonly CancellationTokenSource _stop = new();
    readonly SemaphoreSlim _wake = new(0);
    Task? _loop, _traffic, _workloads;
    readonly List<string> _loopErrors = new();

    static string Token() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));

    LabHost(LabOptions o)
    {
        Options = o;
        Clock = new SimClock(o.TimeScale);
        Store = new Store(Clock);
        Workloads = new Workloads(Store, Images, new WorkloadOptions { PodStartSeconds = o.PodStartSeconds });
        GitOps = new GitOps(Store, o.SelfHealSeconds, new GitSource(Path.Combine(o.OutDir, "git-sources")));
        ImageAutomation = new ImageAutomation(Store);
        KfmApi = new KfmApi(Store, Images, PublicToken, StewardToken);
        Store.Changed += () => { if (_wake.CurrentCount == 0) _wake.Release(); };
    }

    public IReadOnlyList<string> LoopErrors
    {
        get
        {
            lock (_loopErrors) lock (Workloads.Errors) return _loopErrors.Concat(Workloads.Errors).ToList();
        }
    }

    public static async Task<LabHost> StartAsync(LabOptions o, CancellationToken ct = default)
    {
        var sw = Stopwatch.StartNew();
        Directory.CreateDirectory(o.OutDir);
        try { File.Delete(Path.Combine(o.OutDir, "ready")); } catch (IOException) { }
        var lab = new LabHost(o);
        try
        {
            await lab.StartInner(ct);
        }
        catch
        {
            await lab.DisposeAsync();
            throw;
        }
        lab.StartupTime = sw.Elapsed;
        return lab;
    }

    async Task StartInner(CancellationToken ct)
    {
        if (Options.Prometheus && !File.Exists(Options.PrometheusBinary))
            throw new InvalidOperationException($"--prometheus needs {Options.PrometheusBinary}; install it with: apt-get install -y prometheus");
        if (!Options.Http) Certs = Certs.Create();
        if (Options.Seed) Seeder.Seed(this);

        var tokens = new Dictionary<string, string> { [AdminToken] = "admin", [ViewerToken] = "viewer" };
        Audit = new AuditLog(Options.WriteFiles ? Path.Combine(Options.OutDir, "audit.log") : null);
        var apiServer = new ApiServer(Store, Faults, tokens, () => $"127.0.0.1:{Port}", Options.Http, (pod, grace) => Workloads.DeletePod(pod, grace), Audit, Webhooks);
        var admin = new LabAdmin(this);

        _api = Build(Options.Port, Certs?.Server);
        _api.Map("/lab/{**rest}", admin.Handle);
        _api.Map("/{**path}", apiServer.Handle);
        await _api.StartAsync(ct);
        Port = BoundPort(_api);

        _zipkin = Build(0, null);
        Zipkin.Map(_zipkin);
        await _zipkin.StartAsync(ct);
        ZipkinPort = BoundPort(_zipkin);
        KfmApi.StartTracing(new Uri(ZipkinUrl + "/api/v2/spans"));

        _kfm = Build(Options.KfmApiPort, null);
        KfmApi.Map(_kfm);
        await _kfm.StartAsync(ct);
        KfmApiPort = BoundPort(_kfm);

        _workloads = Workloads.Start(_stop.Token);
        _loop = Task.Run(ControllerLoop);
        if (Options.TrafficPerSecond > 0) _traffic = Task.Run(() => KfmApi.DriveTraffic(KfmApiUrl, Options.TrafficPerSecond, _stop.Token));

        if (Options.Prometheus)
            _prometheus = await PrometheusProcess.StartAsync(Options.PrometheusBinary, Options.OutDir, KfmApiPort, ct);

        if (Options.WriteFiles) WriteFiles();
    }

    static WebApplication Build(int port, System.Security.Cryptography.X509Certificates.X509Certificate2? cert)
    {
        var b = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        b.Logging.ClearProviders();
        b.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, port, lo => { if (cert != null) lo.UseHttps(cert); });
            k.Limits.MinResponseDataRate = null;
        });
        return b.Build();
    }

    static int BoundPort(WebApplication app)
    {
        var addr = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new Uri(addr.Replace("[::]", "127.0.0.1")).Port;
    }

    async Task ControllerLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            try { await _wake.WaitAsync(TimeSpan.FromMilliseconds(40), _stop.Token); }
            catch (OperationCanceledException) { break; }
            try
            {
                ImageAutomation.Tick();
                GitOps.Tick();
            }
            catch (Exception e)
            {
                lock (_loopErrors) { if (_loopErrors.Count < 50) _loopErrors.Add(e.ToString()); }
            }
        }
    }

    /// <summary>Runs the controllers once, synchronously (tests and /lab/tick).</summary>
    public void TickNow() { Workloads.Tick(); ImageAutomation.Tick(); GitOps.Tick(); }

    public string KubeconfigText()
    {
        var cluster = Options.Http
            ? $"    server: {ApiServerUrl}\n"
            : $"    server: {ApiServerUrl}\n    certificate-authority-data: {Convert.ToBase64String(Encoding.ASCII.GetBytes(Certs!.CaPem))}\n";
        return $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: lab
              cluster:
            {cluster}contexts:
            - name: lab
              context:
                cluster: lab
                user: admin
            - name: lab-viewer
              context:
                cluster: lab
                user: viewer
            current-context: lab
            preferences: {"{}"}
            users:
            - name: admin
              user:
                token: {AdminToken}
            - name: viewer
              user:
                token: {ViewerToken}

            """;
    }

    public JsonObject LabJson() => new()
    {
        ["pid"] = Environment.ProcessId,
        ["apiserver"] = new JsonObject { ["url"] = ApiServerUrl, ["port"] = Port, ["scheme"] = Options.Http ? "http" : "https" },
        ["kfmApi"] = new JsonObject
        {
            ["url"] = KfmApiUrl, ["port"] = KfmApiPort, ["metrics"] = KfmApiUrl + "/metrics",
            ["openapi"] = Path.Combine(Options.OutDir, "kfm-api.openapi.json"),
            ["tokens"] = new JsonObject { ["public"] = PublicToken, ["steward"] = StewardToken },
        },
        ["zipkin"] = new JsonObject { ["url"] = ZipkinUrl, ["port"] = ZipkinPort },
        ["prometheus"] = _prometheus == null ? null : new JsonObject { ["url"] = _prometheus.Url, ["pid"] = _prometheus.Pid },
        ["adminToken"] = AdminToken,
        ["viewerToken"] = ViewerToken,
        ["kubeconfig"] = KubeconfigPath,
        ["timeScale"] = Options.TimeScale,
        ["catalogue"] = Images.ToJson(),
        ["admin"] = new JsonObject { ["base"] = ApiServerUrl + "/lab/", ["auth"] = "Authorization: Bearer <adminToken>" },
    };

    void WriteFiles()
    {
        var dir = Options.OutDir;
        WriteAtomic(Path.Combine(dir, "kubeconfig"), KubeconfigText());
        WriteAtomic(Path.Combine(dir, "kfm-api.openapi.json"), KfmApi.OpenApi().ToJsonString(J.Pretty));
        WriteAtomic(Path.Combine(dir, "lab.json"), LabJson().ToJsonString(J.Pretty));
        WriteAtomic(Path.Combine(dir, "ready"), DateTimeOffset.UtcNow.ToString("O") + "\n");
    }

    static void WriteAtomic(string path, string text)
    {
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, text);
        File.Move(tmp, path, true);
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        try { File.Delete(Path.Combine(Options.OutDir, "ready")); } catch (IOException) { }
        if (_prometheus != null) await _prometheus.DisposeAsync();
        KfmApi.StopTracing();
        foreach (var app in new[] { _api, _kfm, _zipkin })
            if (app != null)
            {
                try { await app.StopAsync(TimeSpan.FromSeconds(2) is var t ? new CancellationTokenSource(t).Token : default); } catch (Exception) { }
                await app.DisposeAsync();
            }
        try { if (_loop != null) await _loop; } catch (Exception) { }
        try { if (_workloads != null) await _workloads; } catch (Exception) { }
        try { if (_traffic != null) await _traffic; } catch (Exception) { }
    }
}
