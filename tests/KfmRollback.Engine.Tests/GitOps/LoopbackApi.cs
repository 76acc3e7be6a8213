using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Tests.Support;

namespace KfmRollback.Engine.Tests.GitOps;

/// <summary>A request the fake API received, kept for assertions.</summary>
public sealed record ApiCall(string Method, string PathAndQuery, IReadOnlyDictionary<string, string> Headers, JsonNode? Body);

/// <summary>
/// A loopback HTTP server (HttpListener on a free 127.0.0.1 port) that answers through a
/// handler imitating a provider's documented API, and records every call.
/// </summary>
public sealed class LoopbackApi : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Func<ApiCall, (int Status, string Json)> _handler;
    private readonly Task _loop;

    public LoopbackApi(Func<ApiCall, (int Status, string Json)> handler)
    {
        _handler = handler;
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        Port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _loop = Task.Run(Loop);
    }

    public int Port { get; }
    public Uri BaseUrl => new($"http://127.0.0.1:{Port}/");
    public List<ApiCall> Calls { get; } = new();
    /// <summary>Requests that broke the provider's contract; tests assert this stays empty.</summary>
    public List<string> Failures { get; } = new();

    private async Task Loop()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
            string text = await new StreamReader(context.Request.InputStream).ReadToEndAsync();
            var headers = context.Request.Headers.AllKeys.Where(k => k is not null).ToDictionary(k => k!, k => context.Request.Headers[k]!, StringComparer.OrdinalIgnoreCase);
            var call = new ApiCall(context.Request.HttpMethod, context.Request.Url!.PathAndQuery, headers, text.Length > 0 ? JsonNode.Parse(text) : null);
            lock (Calls) Calls.Add(call);
            int status;
            string json;
            try
            {
                (status, json) = _handler(call);
            }
            catch (Exception e)
            {
                // A contract check failed: answer 400 (as a strict server would) and keep it for the test to report.
                lock (Failures) Failures.Add($"{call.Method} {call.PathAndQuery}: {e.Message}");
                (status, json) = (400, "{\"message\":\"contract violation\"}");
            }
            byte[] bytes = Encoding.UTF8.GetBytes(json);
            context.Response.StatusCode = status;
            context.Response.ContentType = "application/json; charset=utf-8";
            context.Response.ContentLength64 = bytes.Length;
            await context.Response.OutputStream.WriteAsync(bytes);
            context.Response.Close();
        }
    }

    public void Dispose()
    {
        LoopbackListeners.Release(_listener);
        _loop.Wait(TimeSpan.FromSeconds(5));
    }
}
