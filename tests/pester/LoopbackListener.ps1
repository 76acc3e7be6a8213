# What the loopback stand-ins (LoopbackGitHub.ps1, LoopbackSlack.ps1) share: an HttpListener on a
# free 127.0.0.1 port, and stopping it with the thread job that serves it.

# A free 127.0.0.1 port for a server told its port before it binds. Port 0 hands out a port of the
# kernel's ephemeral range, where any outgoing connection may take it before the server binds it
# ("Address already in use", seen in CI): ports are picked at random below that range instead, as
# tests/KfmRollback.Lab/LoopbackPorts.cs does for the xUnit servers.
function Get-KfmFreePort {
    $low = 32768
    try { $low = [int] ((Get-Content -Raw /proc/sys/net/ipv4/ip_local_port_range) -split '\s+')[0] } catch { }
    $from = [Math]::Max(1025, $low - 12000)
    for ($attempt = 0; $low - $from -ge 1000 -and $attempt -lt 50; $attempt++) {
        $port = Get-Random -Minimum $from -Maximum $low
        $probe = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, $port)
        try { $probe.Start(); return $port }
        catch [System.Net.Sockets.SocketException] { }
        finally { $probe.Stop() }
    }
    $probe = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
    try { $probe.Start(); $probe.LocalEndpoint.Port } finally { $probe.Stop() }
}

# Another server may still bind the port before Start does: a refused start tries a new port.
function New-KfmLoopbackListener {
    for ($attempt = 1; ; $attempt++) {
        $port = Get-KfmFreePort
        $listener = [System.Net.HttpListener]::new()
        $listener.Prefixes.Add("http://127.0.0.1:$port/")
        try {
            $listener.Start()
            return [pscustomobject]@{ Listener = $listener; Port = $port }
        } catch [System.Net.HttpListenerException] {
            try { $listener.Close() } catch [System.Net.HttpListenerException] { }
            if ($attempt -ge 10) { throw }
        }
    }
}

# Stops a server made of .Listener and .Job. Close re-binds each prefix's port to unregister it and
# throws when another process took the freed port meanwhile; nothing is left to release then.
function Stop-KfmLoopbackListener {
    param($Server)
    if (-not $Server) { return }
    $Server.Listener.Stop()
    try { $Server.Listener.Close() } catch [System.Net.HttpListenerException] { }
    $Server.Job | Wait-Job -Timeout 5 | Out-Null
    $Server.Job | Remove-Job -Force
}
