<#
.SYNOPSIS
    Time to safe on the lab (issue 21): from "roll back" to "verified safe", for the module
    (`Invoke-KfmRollback -Method Cluster -Wait | Test-KfmRollback -Wait`) and for an operator's
    script (`kubectl rollout undo` + `kubectl rollout status` + curl polling), each after the same
    bad deploy, alternating, median of -Runs each. Prints
      'bench: time-to-safe ratio=<module time / physical limit> target<=1.10', where the physical
      limit is measured in the same run: the rollout itself (from the module's write-ahead record to
      the lab's Deployment status saying complete, seen by a raw watch) plus the shortest evidence
      the verdict needs: the time from that completion until Prometheus had counted, with the
      module's own request-count query, the requests the sequential 5xx test needs to pass
      (`sprt_requests_to_pass` of the passing round; never fewer than thresholds.min_requests); and
      'bench: time-to-safe-vs-manual ratio=<script time / module time> target>=1', where the script
      polls with curl once a second until the API has answered without a 5xx for as long as the lab's
      own traffic and the polling take to bring the same number of requests (the rate measured by
      Prometheus before the first run, while nothing else sent requests).
#>
param(
    [string] $ModulePath = (Join-Path $PSScriptRoot '../out/KfmRollback'),
    [int] $Runs = 3
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchHelpers.ps1')
$env:KFM_MODULE_PATH = (Resolve-Path $ModulePath).Path
. (Join-Path $PSScriptRoot '../tests/pester/LabHelpers.ps1')
Import-Module (Join-Path $env:KFM_MODULE_PATH 'KfmRollback.psd1')

$lab = Start-KfmVerificationLab
try {
    function Deploy([string] $Build) {
        Deploy-KfmLabBuild $lab $Build -TimeoutSeconds 120
    }
    # The environment's request count, as the module queries it, over any window ending at any time.
    $metrics = (Get-KfmEnvironment -Name lab).Prometheus
    function Get-RequestCount([DateTime] $From, [DateTime] $At) {
        $query = $metrics.Queries.RequestCount.Replace('{selector}', $metrics.Selector).Replace('{window}', "$([long]($At - $From).TotalMilliseconds)ms")
        $unix = ([DateTimeOffset] $At).ToUnixTimeMilliseconds() / 1000
        $answer = Invoke-RestMethod "$prometheus/api/v1/query?query=$([Uri]::EscapeDataString($query))&time=$unix"
        if ($answer.data.result.Count -eq 0) { return 0 }
        [double] $answer.data.result[0].value[1]
    }
    $prometheus = $lab.Facts.prometheus.url
    $api = $lab.Facts.kfmApi.url
    $token = $lab.Facts.kfmApi.tokens.public
    # Frozen first, so Argo CD does not undo the builds deployed by hand.
    Start-KfmFreeze -Confirm:$false | Out-Null
    Deploy 'good-1.5.1'
    Start-Sleep -Seconds 20   # a baseline for Prometheus
    # The lab's own traffic rate, measured while nothing else sends requests (the module's probes and the
    # script's curl would otherwise count as traffic and shorten the evidence time).
    $rate = [double]((Invoke-RestMethod "$prometheus/api/v1/query?query=$([Uri]::EscapeDataString('sum(rate(http_requests_total{job="kfm-api"}[20s]))'))").data.result[0].value[1])
    if ($rate -le 0) { throw "Prometheus measured no traffic on the lab ($rate requests/s)" }
    Test-KfmContract -RecordSnapshot | Out-Null

    $module = [Collections.Generic.List[double]]::new()
    $limit = [Collections.Generic.List[double]]::new()
    $manual = [Collections.Generic.List[double]]::new()
    $requests = [Collections.Generic.List[double]]::new()
    for ($i = 1; $i -le $Runs; $i++) {
        # --- the module --------------------------------------------------------------------
        Deploy 'bad-5xx'
        Start-Sleep -Seconds 5
        $incident = "TTS-$i-" + [Guid]::NewGuid().ToString('N').Substring(0, 6)
        New-KfmIncident -Id $incident -Commander bench -Reason 'time-to-safe bench' -Environment lab -Confirm:$false | Out-Null
        $generation = (Get-KfmLabDeployment $lab).metadata.generation + 1
        $complete = Start-CompletionWatch $lab $generation
        $watch = [Diagnostics.Stopwatch]::StartNew()
        $verified = Invoke-KfmRollback -Method Cluster -IncidentId $incident -Wait -Timeout 300 -Confirm:$false | Test-KfmRollback -Wait -Timeout 5m -WarningAction SilentlyContinue
        $watch.Stop()
        $completedAt = $complete | Wait-Job -Timeout 60 | Receive-Job
        Remove-Job $complete -Force
        if (-not $verified.Passed) { throw "module run ${i}: the verification did not pass: $(($verified.Results | Where-Object Verdict -NE 'Pass').Check -join ', ')" }
        if (-not $completedAt) { throw 'the completion watch saw no completion' }
        $apply = (Get-KfmIncident -Id $incident -Phases | Where-Object Phase -EQ 'apply').Start
        $rollout = ([DateTimeOffset] $completedAt - $apply).TotalSeconds
        # The evidence the verdict needed, and when Prometheus first held it (0.25 s steps from the completion).
        $needed = [double] ($verified.Results | Where-Object Check -EQ 'A.error-ratio').Evidence['sprt_requests_to_pass']
        if (-not $needed) { throw "module run ${i}: the passing 5xx test carries no sprt_requests_to_pass" }
        $done = ([DateTimeOffset] $completedAt).UtcDateTime
        $at = $done.AddSeconds(0.25)
        while ((Get-RequestCount $done $at) -lt $needed) {
            if ($at -gt [DateTime]::UtcNow) { throw "module run ${i}: Prometheus never counted the $needed requests the module's verdict rested on" }
            $at = $at.AddSeconds(0.25)
        }
        $evidence = ($at - $done).TotalSeconds
        $module.Add($watch.Elapsed.TotalSeconds)
        $limit.Add($rollout + $evidence)
        $requests.Add($needed)
        Write-Host ('run {0}: module {1:N1} s; physical limit {2:N1} s (rollout {3:N1} s + {4} requests counted in {5:N1} s)' -f $i, $watch.Elapsed.TotalSeconds, ($rollout + $evidence), $rollout, $needed, $evidence)

        # --- the operator's script -----------------------------------------------------------
        Deploy 'bad-5xx'
        Start-Sleep -Seconds 5
        $watch = [Diagnostics.Stopwatch]::StartNew()
        Invoke-KfmLabKubectl $lab rollout undo deployment/kfm-api -n kfm | Out-Null
        Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api -n kfm --timeout=300s | Out-Null
        # Poll as an operator would (curl once a second), until the API has answered without a 5xx for as
        # long as the lab's traffic and the polling take to bring the requests the module's verdict needed.
        $evidence = $needed / ($rate + 1)
        $cleanSince = $null
        $deadline = [DateTime]::UtcNow.AddMinutes(5)
        while ($true) {
            $code = [int](& curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$api/api/v1/meta")
            $now = [DateTime]::UtcNow
            if ($code -ge 200 -and $code -lt 500) { $cleanSince ??= $now } else { $cleanSince = $null }
            if ($cleanSince -and ($now - $cleanSince).TotalSeconds -ge $evidence) { break }
            if ($now -gt $deadline) { throw "manual run ${i}: the API did not answer without a 5xx for $([Math]::Round($evidence, 1)) s in 5 minutes" }
            Start-Sleep -Seconds 1
        }
        $watch.Stop()
        $manual.Add($watch.Elapsed.TotalSeconds)
        Write-Host ('run {0}: kubectl undo + status + curl polling {1:N1} s' -f $i, $watch.Elapsed.TotalSeconds)
    }
    $m = Get-Median $module
    $l = Get-Median $limit
    $k = Get-Median $manual
    Write-Host ('time to safe (median of {0}): module {1:N1} s, physical limit {2:N1} s, kubectl + curl script {3:N1} s; the verdict needed {4} requests, the lab serves {5:N1}/s' -f $Runs, $m, $l, $k, (Get-Median $requests), $rate)
    Write-BenchLine -Name 'time-to-safe' -Ratio ($m / $l) -Target '<=1.10'
    Write-BenchLine -Name 'time-to-safe-vs-manual' -Ratio ($k / $m) -Target '>=1'
}
finally {
    Stop-KfmVerificationLab $lab
}
