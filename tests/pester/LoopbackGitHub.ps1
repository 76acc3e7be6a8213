# A loopback stand-in for the parts of GitHub's REST API the module calls through Octokit on an
# Enterprise base URL (/api/v3): pull requests (list by head, create) and issues (list by label,
# create). It records every request (method, path, Authorization, body) for the test to read, and
# answers in GitHub's documented shapes. Runs on a thread job inside the test's pwsh.

. (Join-Path $PSScriptRoot 'LoopbackListener.ps1')

function Start-KfmLoopbackGitHub {
    $listening = New-KfmLoopbackListener
    $listener = $listening.Listener; $port = $listening.Port
    $calls = [System.Collections.Concurrent.ConcurrentQueue[object]]::new()
    $job = Start-ThreadJob -ArgumentList $listener, $calls, $port -ScriptBlock {
        param($listener, $calls, $port)
        $pulls = [System.Collections.Generic.List[object]]::new()
        $issues = [System.Collections.Generic.List[object]]::new()
        $web = "https://github.loopback.test"
        while ($listener.IsListening) {
            try { $context = $listener.GetContext() } catch { break }
            $request = $context.Request
            $text = [IO.StreamReader]::new($request.InputStream).ReadToEnd()
            $calls.Enqueue([pscustomobject]@{ Method = $request.HttpMethod; Path = $request.RawUrl; Authorization = $request.Headers['Authorization']; Body = $text })
            $body = if ($text) { $text | ConvertFrom-Json } else { $null }
            $status = 404; $answer = @{ message = 'Not Found' }
            $path = $request.Url.AbsolutePath
            $query = [Uri]::UnescapeDataString($request.Url.Query)
            if ($path -match '^/api/v3/repos/([^/]+)/([^/]+)/pulls$') {
                $repo = "$($Matches[1])/$($Matches[2])"
                if ($request.HttpMethod -eq 'GET') {
                    $head = if ($query -match 'head=[^:&]+:([^&]+)') { $Matches[1] } else { $null }
                    $status = 200; $answer = @($pulls | Where-Object { $_.repo -eq $repo -and (-not $head -or $_.head.ref -eq $head) } | ForEach-Object { $_.pr })
                }
                elseif ($request.HttpMethod -eq 'POST') {
                    $number = $pulls.Count + 1
                    $pr = [ordered]@{
                        id = 500 + $number; number = $number; state = 'open'; title = $body.title; body = $body.body
                        html_url = "$web/$repo/pull/$number"; url = "http://127.0.0.1:$port/api/v3/repos/$repo/pulls/$number"
                        head = [ordered]@{ ref = $body.head; sha = ('a' * 40); label = "$($Matches[1]):$($body.head)" }
                        base = [ordered]@{ ref = $body.base; sha = ('b' * 40); label = "$($Matches[1]):$($body.base)" }
                    }
                    $pulls.Add([pscustomobject]@{ repo = $repo; head = $pr.head; pr = $pr })
                    $status = 201; $answer = $pr
                }
            }
            elseif ($path -match '^/api/v3/repos/([^/]+)/([^/]+)/issues$') {
                $repo = "$($Matches[1])/$($Matches[2])"
                if ($request.HttpMethod -eq 'GET') {
                    $status = 200; $answer = @($issues | Where-Object { $_.repo -eq $repo } | ForEach-Object { $_.issue })
                }
                elseif ($request.HttpMethod -eq 'POST') {
                    $number = $issues.Count + 7
                    $issue = [ordered]@{
                        id = 1000 + $number; number = $number; state = 'open'; title = $body.title; body = $body.body
                        html_url = "$web/$repo/issues/$number"; url = "http://127.0.0.1:$port/api/v3/repos/$repo/issues/$number"
                        labels = @($body.labels | ForEach-Object { @{ name = $_ } })
                    }
                    $issues.Add([pscustomobject]@{ repo = $repo; issue = $issue })
                    $status = 201; $answer = $issue
                }
            }
            $json = ConvertTo-Json -InputObject $answer -Depth 10 -Compress
            if ($answer -is [array] -and $answer.Count -eq 0) { $json = '[]' }
            $bytes = [Text.Encoding]::UTF8.GetBytes($json)
            $context.Response.StatusCode = $status
            $context.Response.ContentType = 'application/json; charset=utf-8'
            $context.Response.ContentLength64 = $bytes.Length
            $context.Response.OutputStream.Write($bytes, 0, $bytes.Length)
            $context.Response.Close()
        }
    }
    [pscustomobject]@{ Url = "http://127.0.0.1:$port/"; Listener = $listener; Calls = $calls; Job = $job }
}

function Stop-KfmLoopbackGitHub {
    param($GitHub)
    Stop-KfmLoopbackListener $GitHub
}
