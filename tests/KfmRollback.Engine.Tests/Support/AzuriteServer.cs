using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Azure.Storage.Blobs;
using Azure.Storage.Sas;
using KfmRollback.Engine.Tests.Configuration;

namespace KfmRollback.Engine.Tests.Support;

/// <summary>
/// Azurite's blob service (npm package azurite, installed by build.ps1 under out/tools) on a free
/// 127.0.0.1 port with a temporary workspace and telemetry off, so nothing leaves the machine. Dispose
/// kills exactly the process this fixture started.
/// </summary>
public sealed class AzuriteServer : IDisposable
{
    /// <summary>Azurite's documented development account and key (public, accepted by Azurite only).</summary>
    public const string Account = "devstoreaccount1";
    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private readonly Process _process;
    private readonly TempDirectory _workspace = new();

    public AzuriteServer()
    {
        var binary = Binary();
        Port = LoopbackPorts.Free();
        var info = new ProcessStartInfo(binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "--blobHost", "127.0.0.1", "--blobPort", Port.ToString(), "--location", _workspace.Path, "--disableTelemetry", "--silent", "--skipApiVersionCheck" })
            info.ArgumentList.Add(argument);
        _process = Process.Start(info)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        WaitUntilListening();
    }

    public int Port { get; }

    public Uri ServiceUrl => new($"http://127.0.0.1:{Port}/{Account}");

    public string ConnectionString =>
        $"DefaultEndpointsProtocol=http;AccountName={Account};AccountKey={AccountKey};BlobEndpoint={ServiceUrl};";

    /// <summary>A new, empty container (a store's container is made by its administrator, never by the module).</summary>
    public string NewContainer()
    {
        var name = "receipts-" + Guid.NewGuid().ToString("N")[..12];
        new BlobContainerClient(ConnectionString, name).Create();
        return name;
    }

    /// <summary>The account-key client, as an administrator (or an attacker with the key) uses it.</summary>
    public BlobContainerClient Admin(string container) => new(ConnectionString, container);

    /// <summary>A container SAS with exactly <paramref name="permissions"/>, valid for an hour.</summary>
    public string Sas(string container, BlobContainerSasPermissions permissions) =>
        Admin(container).GenerateSasUri(permissions, DateTimeOffset.UtcNow.AddHours(1)).Query.TrimStart('?');

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        finally
        {
            _process.Dispose();
            _workspace.Dispose();
        }
    }

    private static string Binary()
    {
        var configured = Environment.GetEnvironmentVariable("KFM_AZURITE_BLOB");
        var path = !string.IsNullOrEmpty(configured) ? configured
            : Path.Combine(ConfigTestSupport.RepoRoot(), "out", "tools", "node_modules", ".bin", "azurite-blob");
        if (!File.Exists(path))
            throw new InvalidOperationException($"Azurite is not installed at {path}: run build.ps1 -Task Test (it installs the npm package azurite under out/tools).");
        return path;
    }

    private void WaitUntilListening()
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"azurite-blob exited with {_process.ExitCode}");
            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException)
            {
                Thread.Sleep(100);
            }
        }
        throw new TimeoutException("azurite-blob did not listen within 30 s");
    }
}
