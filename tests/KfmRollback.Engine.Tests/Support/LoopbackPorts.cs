using System.Net;
using System.Net.Sockets;

namespace KfmRollback.Engine.Tests.Support;

/// <summary>Ports on 127.0.0.1 for test servers: the lab's rule (below the ephemeral range).</summary>
internal static class LoopbackPorts
{
    /// <summary>A port nobody listens on now, which no client connection of the run will take.</summary>
    public static int Free() => KfmRollback.Lab.LoopbackPorts.Free();
}

/// <summary>Shutting down the test servers' <see cref="HttpListener"/>s.</summary>
internal static class LoopbackListeners
{
    /// <summary>
    /// A started listener on a free 127.0.0.1 port. The port is free when the kernel hands it out, but
    /// another test or process may bind it before <see cref="HttpListener.Start"/> does (seen in CI:
    /// "Address already in use" from HostileApiTests), so a refused start is retried on a new port.
    /// </summary>
    public static HttpListener Open(out int port)
    {
        for (int attempt = 1; ; attempt++)
        {
            port = LoopbackPorts.Free();
            var listener = new HttpListener();
            listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            try
            {
                listener.Start();
                return listener;
            }
            catch (HttpListenerException) when (attempt < 10)
            {
                try { listener.Close(); } catch (HttpListenerException) { }
            }
        }
    }

    /// <summary>Stops <paramref name="listener"/> and frees its port, tolerating a port taken since.</summary>
    public static void Release(HttpListener listener)
    {
        listener.Stop();
        // On Linux, Close looks each prefix's endpoint up again to unregister it, which binds the port
        // anew (HttpEndPointManager.RemovePrefixInternal -> GetEPListener); when another process or test
        // has taken the freed port meanwhile, that throws "Address already in use" though Stop released
        // everything. Seen in full runs (CI, HostileApiTests); nothing is left to release then.
        try { listener.Close(); }
        catch (HttpListenerException) { }
    }
}
