using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;

namespace KfmRollback.Engine.Tests.Support;

/// <summary>
/// A real OCI registry for tests: Debian's docker-registry (CNCF Distribution 2.8), started on a free
/// loopback port with a temporary storage directory and, optionally, htpasswd (Basic) authentication.
/// Content is pushed as the OCI distribution spec v1.1 "Push" section describes it.
/// </summary>
public sealed class RegistryServer : IAsyncDisposable
{
    public const string Binary = "/usr/bin/docker-registry";
    public const string User = "kfm";
    /// <summary>The test user's password; <see cref="Htpasswd"/> is its bcrypt hash (the only kind Distribution reads).</summary>
    public const string Password = "kfm-test-pass";
    private const string Htpasswd = "kfm:$2b$12$oSzYPXWteXQhZyP/MsY7CedOVzEDVzkl/8BqEb328Kz0SUSO1eAHa";

    private readonly Process _process;
    private readonly TempDirectory _dir;
    private readonly HttpClient _http;

    private RegistryServer(Process process, TempDirectory dir, Uri url, bool authenticated)
    {
        _process = process;
        _dir = dir;
        Url = url;
        _http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(30) };
        if (authenticated)
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{User}:{Password}")));
        }
    }

    public Uri Url { get; }

    /// <summary>Every request the registry logged (its access log), to check what a client sent.</summary>
    public string Log => File.ReadAllText(_dir.File("registry.log"));

    public static async Task<RegistryServer> StartAsync(bool authenticated = false)
    {
        if (!File.Exists(Binary))
        {
            throw new InvalidOperationException($"{Binary} is missing: install Debian's docker-registry package (build.ps1 -Task Test does, as root).");
        }
        var dir = new TempDirectory();
        int port = LoopbackPorts.Free();
        string auth = authenticated ? $"auth:\n  htpasswd:\n    realm: kfm-test\n    path: {dir.File("htpasswd")}\n" : "";
        File.WriteAllText(dir.File("htpasswd"), Htpasswd + "\n");
        File.WriteAllText(dir.File("config.yml"), $"""
            version: 0.1
            log:
              level: info
              accesslog:
                disabled: false
            storage:
              filesystem:
                rootdirectory: {dir.File("data")}
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:{port}
              secret: kfm-lab-only
            {auth}
            """);
        var info = new ProcessStartInfo(Binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add("serve");
        info.ArgumentList.Add(dir.File("config.yml"));
        var process = Process.Start(info)!;
        var log = new StreamWriter(dir.File("registry.log")) { AutoFlush = true };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new RegistryServer(process, dir, new Uri($"http://127.0.0.1:{port}/"), authenticated);
        using var probe = new HttpClient();
        for (int i = 0; i < 200; i++)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"docker-registry exited with {process.ExitCode}:\n{server.Log}");
            }
            try
            {
                using HttpResponseMessage response = await probe.GetAsync(new Uri(server.Url, "v2/"));
                if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized)
                {
                    return server;
                }
            }
            catch (HttpRequestException) { }
            await Task.Delay(50);
        }
        await server.DisposeAsync();
        throw new InvalidOperationException("docker-registry did not answer /v2/ in time");
    }

    /// <summary>
    /// Pushes a one-layer OCI image manifest to <paramref name="repository"/> and returns its digest:
    /// "Pushing blobs" (POST /v2/&lt;name&gt;/blobs/uploads/ then PUT &lt;location&gt;?digest=, the
    /// monolithic POST-PUT), then "Pushing Manifests" (PUT /v2/&lt;name&gt;/manifests/&lt;tag&gt;).
    /// </summary>
    public async Task<string> PushImageAsync(string repository, string tag, string content)
    {
        byte[] layer = Encoding.UTF8.GetBytes(content);
        byte[] config = Encoding.UTF8.GetBytes("{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
        await PushBlobAsync(repository, layer);
        await PushBlobAsync(repository, config);
        string manifest = $$"""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
             "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{{Digest(config)}}","size":{{config.Length}}},
             "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{{Digest(layer)}}","size":{{layer.Length}}}]}
            """;
        byte[] bytes = Encoding.UTF8.GetBytes(manifest);
        using var put = new HttpRequestMessage(HttpMethod.Put, $"v2/{repository}/manifests/{tag}") { Content = new ByteArrayContent(bytes) };
        put.Content.Headers.ContentType = new MediaTypeHeaderValue("application/vnd.oci.image.manifest.v1+json");
        using HttpResponseMessage response = await _http.SendAsync(put);
        Ensure(response, HttpStatusCode.Created, "PUT manifest");
        string digest = Digest(bytes);
        if (response.Headers.TryGetValues("Docker-Content-Digest", out IEnumerable<string>? answered) && answered.First() != digest)
        {
            throw new InvalidOperationException($"the registry stored the manifest as {answered.First()}, not {digest}");
        }
        return digest;
    }

    /// <summary>"Deleting Manifests": DELETE /v2/&lt;name&gt;/manifests/&lt;digest&gt; (202), as a registry clean-up does.</summary>
    public async Task DeleteManifestAsync(string repository, string digest)
    {
        using HttpResponseMessage response = await _http.DeleteAsync($"v2/{repository}/manifests/{digest}");
        Ensure(response, HttpStatusCode.Accepted, "DELETE manifest");
    }

    /// <summary>"Pushing Manifests": PUT /v2/&lt;name&gt;/manifests/&lt;tag&gt; of <paramref name="manifest"/> as given (its blobs pushed first); returns its digest.</summary>
    public async Task<string> PushManifestAsync(string repository, string tag, byte[] manifest, string mediaType)
    {
        using var put = new HttpRequestMessage(HttpMethod.Put, $"v2/{repository}/manifests/{tag}") { Content = new ByteArrayContent(manifest) };
        put.Content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        using HttpResponseMessage response = await _http.SendAsync(put);
        Ensure(response, HttpStatusCode.Created, "PUT manifest");
        return Digest(manifest);
    }

    /// <summary>
    /// Overwrites a stored blob's bytes on disk, behind the registry's back (tampering at rest): the
    /// filesystem driver keeps a blob at docker/registry/v2/blobs/sha256/&lt;2 hex&gt;/&lt;hex&gt;/data and serves it as stored.
    /// </summary>
    public void OverwriteBlobAtRest(string digest, byte[] content)
    {
        string hex = digest["sha256:".Length..];
        string path = Path.Combine(_dir.File("data"), "docker", "registry", "v2", "blobs", "sha256", hex[..2], hex, "data");
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"no stored blob {digest} at {path}");
        }
        File.WriteAllBytes(path, content);
    }

    public async Task<string> PushBlobAsync(string repository, byte[] blob)
    {
        using HttpResponseMessage started = await _http.PostAsync($"v2/{repository}/blobs/uploads/", null);
        Ensure(started, HttpStatusCode.Accepted, "POST blob upload");
        Uri location = new(Url, started.Headers.Location!);
        string separator = location.Query.Length > 0 ? "&" : "?";
        using var put = new HttpRequestMessage(HttpMethod.Put, $"{location}{separator}digest={Uri.EscapeDataString(Digest(blob))}") { Content = new ByteArrayContent(blob) };
        put.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using HttpResponseMessage done = await _http.SendAsync(put);
        Ensure(done, HttpStatusCode.Created, "PUT blob");
        return Digest(blob);
    }

    public static string Digest(byte[] content) => "sha256:" + Convert.ToHexString(SHA256.HashData(content)).ToLowerInvariant();

    private static void Ensure(HttpResponseMessage response, HttpStatusCode expected, string what)
    {
        if (response.StatusCode != expected)
        {
            throw new InvalidOperationException($"{what} answered {(int)response.StatusCode} {response.StatusCode}, expected {(int)expected}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        _dir.Dispose();
    }
}
