using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace KfmRollback.Lab;

/// <summary>
/// Ports on 127.0.0.1 for servers that must be told their port before they bind it (Prometheus,
/// lighttpd, Azurite, docker-registry, HttpListener), or for addresses where nothing must listen.
/// </summary>
/// <remarks>
/// A port the kernel hands out for port 0 comes from the ephemeral range, the same range it takes
/// outgoing connections' local ports from: between releasing such a port and the server binding it,
/// any client connection in the run may take it (seen in CI: "Address already in use"). Ports are
/// therefore picked at random below that range, where only another server picking the same port
/// could collide; callers still retry a refused start on a new port.
/// </remarks>
public static class LoopbackPorts
{
    const int Window = 12_000;

    /// <summary>A port nobody listens on now, outside the kernel's ephemeral range when it can be.</summary>
    public static int Free()
    {
        var (low, _) = EphemeralRange();
        int from = Math.Max(1_025, low - Window);
        if (low - from >= 1_000)
        {
            for (int attempt = 0; attempt < 50; attempt++)
            {
                int port = Random.Shared.Next(from, low);
                if (TryBind(port)) return port;
            }
        }
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    static bool TryBind(int port)
    {
        try
        {
            using var probe = new TcpListener(IPAddress.Loopback, port);
            probe.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>The kernel's ephemeral port range (Linux default when it cannot be read).</summary>
    static (int Low, int High) EphemeralRange()
    {
        try
        {
            var parts = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range")
                .Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            return (int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return (32_768, 60_999);
        }
    }
}
