# What the loopback stand-ins (LoopbackGitHub.ps1, LoopbackSlack.ps1) share: an HttpListener on a
# free 127.0.0.1 port, and stopping it with the thread job that serves it.

function New-KfmLoopbackListener {
    $probe = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
    $probe.Start(); $port = $probe.LocalEndpoint.Port; $probe.Stop()
    $listener = [System.Net.HttpListener]::new()
    $listener.Prefixes.Add("http://127.0.0.1:$port/")
    $listener.Start()
    [pscustomobject]@{ Listener = $listener; Port = $port }
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
