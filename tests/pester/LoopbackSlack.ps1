# A loopback stand-in for a Slack incoming webhook (api.slack.com/messaging/webhooks), for the
# Pester tests and the drill. It checks the documented request shape (POST to the webhook's path,
# Content-Type application/json, a JSON object with a non-empty "text", blocks of plain_text or
# mrkdwn text objects) and answers as Slack does: 200 with the body "ok", or 400 "invalid_payload"
# / "no_text", 404 "no_service" for another path. -FailFirst answers the first N requests 500;
# -HoldFirst accepts the first message and holds its answer back that many seconds (a client killed meanwhile).
# Every request (method, path, content type, text) is recorded for the caller to read.

. (Join-Path $PSScriptRoot 'LoopbackListener.ps1')

function Start-KfmLoopbackSlack {
    param([int] $FailFirst = 0, [int] $HoldFirst = 0)
    $path = '/services/T0KFMDRILL/B0COMMS/' + [Guid]::NewGuid().ToString('N').Substring(0, 24)
    $listening = New-KfmLoopbackListener
    $listener = $listening.Listener; $port = $listening.Port
    $calls = [System.Collections.Concurrent.ConcurrentQueue[object]]::new()
    $job = Start-ThreadJob -ArgumentList $listener, $calls, $path, $FailFirst, $HoldFirst -ScriptBlock {
        param($listener, $calls, $path, $failFirst, $holdFirst)
        $held = $false
        $seen = 0
        while ($listener.IsListening) {
            try { $context = $listener.GetContext() } catch { break }
            $request = $context.Request
            $raw = [IO.StreamReader]::new($request.InputStream).ReadToEnd()
            $seen++
            $text = $null
            $status = 200; $answer = 'ok'
            try { $body = $raw | ConvertFrom-Json -ErrorAction Stop } catch { $body = $null }
            if ($request.HttpMethod -ne 'POST' -or $request.Url.AbsolutePath -ne $path) { $status = 404; $answer = 'no_service' }
            elseif ($request.ContentType -notlike 'application/json*' -or $body -isnot [pscustomobject]) { $status = 400; $answer = 'invalid_payload' }
            elseif (-not $body.text) { $status = 400; $answer = 'no_text' }
            elseif (@($body.blocks | Where-Object { $_.text.type -notin 'plain_text', 'mrkdwn' }).Count -gt 0) { $status = 400; $answer = 'invalid_blocks' }
            elseif ($seen -le $failFirst) { $status = 500; $answer = 'internal_error' }
            else { $text = $body.text }
            $calls.Enqueue([pscustomobject]@{ Method = $request.HttpMethod; Path = $request.Url.AbsolutePath; ContentType = $request.ContentType; Status = $status; Text = $text })
            if ($status -eq 200 -and $holdFirst -gt 0 -and -not $held) { $held = $true; Start-Sleep -Seconds $holdFirst }
            try {
                $bytes = [Text.Encoding]::UTF8.GetBytes($answer)
                $context.Response.StatusCode = $status
                $context.Response.ContentType = 'text/plain; charset=utf-8'
                $context.Response.ContentLength64 = $bytes.Length
                $context.Response.OutputStream.Write($bytes, 0, $bytes.Length)
                $context.Response.Close()
            }
            catch { }   # the client is gone (killed mid-post): Slack posted the message all the same
        }
    }
    [pscustomobject]@{ WebhookUrl = "http://127.0.0.1:$port$path"; Listener = $listener; Calls = $calls; Job = $job }
}

# The messages the webhook accepted (status 200), in order.
function Get-KfmLoopbackSlackMessage {
    param($Slack)
    @($Slack.Calls.ToArray() | Where-Object Status -eq 200 | ForEach-Object Text)
}

function Stop-KfmLoopbackSlack {
    param($Slack)
    Stop-KfmLoopbackListener $Slack
}
