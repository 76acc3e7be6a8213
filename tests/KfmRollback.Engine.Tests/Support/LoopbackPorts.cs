using System.Net;
using System.Net.Sockets;

namespace KfmRollback.Engine.Tests.Support;

/// <summary>Ports on 127.0.0.1 for test servers, or for addresses where nothing must listen.</summary>
internal static class LoopbackPorts
{
    /// <summary>A port the kernel just handed out and released: free now, and nobody listens on it.</summary>
    public static int Free()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
