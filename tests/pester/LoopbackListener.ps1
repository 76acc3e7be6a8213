# What the loopback stand-ins (LoopbackGitHub.ps1, LoopbackSlack.ps1) share: an HttpListener on a
# free 127.0.0.1 port, and stopping it with the thread job that serves it.

# The port is free when the kernel hands it out, but another process may bind it before Start does
# ("Address already in use", seen in CI from the xUnit servers): a refused start tries a new port.
function New-KfmLoopbackListener {
    for ($attempt = 1; ; $attempt++) {
        $probe = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $probe.Start(); $port = $probe.LocalEndpoint.Port; $probe.Stop()
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
