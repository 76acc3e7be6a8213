using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace KfmRollback.Engine.Tests.GitOps;

/// <summary>
/// A real smart-HTTP git server for tests: lighttpd (Debian package) running git http-backend as
/// CGI behind basic auth, on a free 127.0.0.1 port with its own config, htpasswd, pid and log
/// files under a temp dir. lighttpd is installed with apt-get when missing. Dispose kills exactly
/// the process this fixture started and waits for it, so no server outlives the tests.
/// </summary>
public sealed class GitHttpServer : IDisposable
{
    public const string User = "deployer";
    public const string Password = "s3cret-Pa55";
    private const string Backend = "/usr/lib/git-core/git-http-backend";
    private readonly Process _process;

    public GitHttpServer()
    {
        EnsureInstalled();
        Root = Path.Combine(Path.GetTempPath(), "kfm-githttp-" + Guid.NewGuid().ToString("N"));
        Repositories = Path.Combine(Root, "repos");
        Directory.CreateDirectory(Repositories);
        Port = KfmRollback.Lab.LoopbackPorts.Free();
        // {SHA} is base64(SHA-1(password)), a scheme lighttpd's htpasswd backend reads; fine for a throwaway test secret.
        File.WriteAllText(Path.Combine(Root, "htpasswd"), $"{User}:{{SHA}}{Convert.ToBase64String(SHA1.HashData(Encoding.UTF8.GetBytes(Password)))}\n");
        string config = Path.Combine(Root, "lighttpd.conf");
        File.WriteAllText(config, $$"""
            server.modules = ("mod_alias", "mod_setenv", "mod_auth", "mod_authn_file", "mod_cgi")
            server.document-root = "{{Root}}"
            server.bind = "127.0.0.1"
            server.port = {{Port}}
            server.pid-file = "{{Root}}/lighttpd.pid"
            server.errorlog = "{{Root}}/error.log"
            server.upload-dirs = ("{{Root}}")
            auth.backend = "htpasswd"
            auth.backend.htpasswd.userfile = "{{Root}}/htpasswd"
            auth.require = ("/git/" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
            alias.url = ("/git/" => "{{Backend}}/")
            $HTTP["url"] =~ "^/git/" {
              cgi.assign = ("" => "")
              setenv.add-environment = ("GIT_PROJECT_ROOT" => "{{Repositories}}", "GIT_HTTP_EXPORT_ALL" => "1")
            }
            """);
        var info = new ProcessStartInfo(LighttpdPath(), $"-D -f {config}") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        _process = Process.Start(info)!;
        WaitUntilListening();
    }

    public string Root { get; }
    public string Repositories { get; }
    public int Port { get; }

    public Uri UrlOf(string repositoryName) => new($"http://127.0.0.1:{Port}/git/{repositoryName}");

    /// <summary>Copies a bare repository into the served root and enables pushes over HTTP.</summary>
    public string Serve(string bareRepository, string name)
    {
        string target = Path.Combine(Repositories, name);
        Git.Run(Root, "clone", "-q", "--bare", bareRepository, target);
        Git.Run(target, "config", "http.receivepack", "true");
        return target;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(10_000);
            }
        }
        finally
        {
            _process.Dispose();
            try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
        }
    }

    private void WaitUntilListening()
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
                throw new InvalidOperationException("lighttpd exited: " + _process.StandardError.ReadToEnd() + ReadLog());
            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException)
            {
                Thread.Sleep(50);
            }
        }
        throw new TimeoutException("lighttpd did not listen within 15s. " + ReadLog());
    }

    private string ReadLog() => File.Exists(Path.Combine(Root, "error.log")) ? File.ReadAllText(Path.Combine(Root, "error.log")) : "";

    private static string LighttpdPath() => File.Exists("/usr/sbin/lighttpd") ? "/usr/sbin/lighttpd" : "lighttpd";

    private static readonly object InstallLock = new();

    private static void EnsureInstalled()
    {
        lock (InstallLock)
        {
            if (File.Exists("/usr/sbin/lighttpd"))
                return;
            foreach (var args in new[] { "update -qq", "install -y -qq lighttpd" })
            {
                var info = new ProcessStartInfo("apt-get", args) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
                info.Environment["DEBIAN_FRONTEND"] = "noninteractive";
                using var p = Process.Start(info)!;
                p.StandardOutput.ReadToEnd();
                p.WaitForExit();
            }
            if (!File.Exists("/usr/sbin/lighttpd"))
                throw new InvalidOperationException("lighttpd is needed for the git HTTP tests and could not be installed with apt-get (run as root).");
        }
    }
}
