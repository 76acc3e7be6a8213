using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Tests.Support;

namespace KfmRollback.Engine.Tests.GitOps;

/// <summary>A request the fake API received, kept for assertions.</summary>
public sealed record ApiCall(string Method, string PathAndQuery, IReadOnlyDictionary<string, string> Headers, JsonNode? Body);

/// <summary>An answer of the fake API: status, body, its media type and extra headers (Retry-After).</summary>
public sealed record ApiAnswer(int Status, string Body, string ContentType = "application/json; charset=utf-8", IReadOnlyDictionary<string, string>? Headers = null);

/// <summary>
/// A loopback HTTP server (HttpListener on a free 127.0.0.1 port) that answers through a
/// handler imitating a provider's documented API, and records every call.
/// </summary>
public sealed class LoopbackApi : IDisposable
{
    private readonly HttpListener _listener;
    private readonly Func<ApiCall, ApiAnswer> _handler;
    private readonly Task _loop;

    public LoopbackApi(Func<ApiCall, (int Status, string Json)> handler)
        : this(call => { var (status, json) = handler(call); return new ApiAnswer(status, json); })
    {
    }

    /// <summary>A server whose answers carry their own media type and headers (a text/plain "ok", a Retry-After).</summary>
    public LoopbackApi(Func<ApiCall, ApiAnswer> handler)
    {
        _handler = handler;
        _listener = LoopbackListeners.Open(out int port);
        Port = port;
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
            ApiAnswer answer;
            try
            {
                answer = _handler(call);
            }
            catch (Exception e)
            {
                // A contract check failed: answer 400 (as a strict server would) and keep it for the test to report.
                lock (Failures) Failures.Add($"{call.Method} {call.PathAndQuery}: {e.Message}");
                answer = new ApiAnswer(400, "{\"message\":\"contract violation\"}");
            }
            byte[] bytes = Encoding.UTF8.GetBytes(answer.Body);
            try
            {
                context.Response.StatusCode = answer.Status;
                context.Response.ContentType = answer.ContentType;
                foreach (var (name, value) in answer.Headers ?? new Dictionary<string, string>())
                    context.Response.Headers[name] = value;
                context.Response.ContentLength64 = bytes.Length;
                await context.Response.OutputStream.WriteAsync(bytes);
                context.Response.Close();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or IOException)
            {
                // The client hung up before the answer (a cancelled or timed-out call): serve the next one.
            }
        }
    }

    public void Dispose()
    {
        LoopbackListeners.Release(_listener);
        _loop.Wait(TimeSpan.FromSeconds(5));
    }
}
