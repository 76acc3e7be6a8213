<#
.SYNOPSIS
    Probe throughput: 10,000 policy probes by the module (Test-KfmPolicyInvariant, 5,000 samples a
    side for the existence-leak comparison) against the same lab endpoint driven by wrk, and by a
    pwsh Invoke-RestMethod loop that keeps what a probe keeps (status, latency, body). Prints
    'bench: probes-vs-wrk ratio=<module req/s / wrk req/s> target>=0.5' and
    'bench: probes-vs-irm ratio=<module req/s / loop req/s> target>=10'. The module's probes go
    through .NET's HttpClient: the hand-written HTTP/1.1 lanes it had were removed when this bench
    measured HttpClient at 0.904 of their rate (median of 5 alternating runs, commit c629c1b), above
    the 0.8 below which they were worth their code.
    Every contender sends the same request (bearer token, a sampled W3C traceparent, User-Agent,
    Accept), so the lab does the same work for each, a trace span included.
    A bare HttpClient on the same two paths, with the module's handler settings and concurrency
    (BareHttpClientProbes.cs), is timed too and printed as a reference: the module's rate against it
    is the module's own cost per probe; its rate against the loop is the most any HttpClient-based
    prober reaches here.

.DESCRIPTION
    All three share one warmed lab: wrk runs first untimed so the lab's own JIT is done before any
    timing, and each contender gets an untimed warm-up run of its own. The module and the loop are
    timed $Rounds times each (the module after $WarmupRounds untimed runs, when the JIT has
    optimised its hot paths; its cold first run is printed too) and their median rates compared
    with wrk's 10-second rate.
#>
param(
    [string] $ModulePath = (Join-Path $PSScriptRoot '../out/KfmRollback'),
    [int] $Samples = 5000,
    [int] $LoopRequests = 500,
    [int] $Rounds = 7,
    [int] $WarmupRounds = 15
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchHelpers.ps1')
$env:KFM_MODULE_PATH = (Resolve-Path $ModulePath).Path
. (Join-Path $PSScriptRoot '../tests/pester/LabHelpers.ps1')
Import-Module (Join-Path $env:KFM_MODULE_PATH 'KfmRollback.psd1')
Add-Type -Path (Join-Path $PSScriptRoot 'BareHttpClientProbes.cs')
if (-not (Get-Command wrk -ErrorAction SilentlyContinue)) { throw 'wrk is not installed: apt-get install -y wrk (build.ps1 -Task Bench installs it).' }

# CPU seconds a process has used so far (user + system), from /proc.
function Get-CpuSeconds([int] $ProcessId) {
    $fields = (Get-Content "/proc/$ProcessId/stat" -Raw).Split(') ')[1].Split(' ')
    ([long] $fields[11] + [long] $fields[12]) / 100
}

# The headers every probe sends besides its token: a sampled traceparent (so the lab records a span
# for each request, as it does for the module's), User-Agent and Accept.
$probeHeaders = @{ traceparent = '00-{0}-{1}-01' -f [Diagnostics.ActivityTraceId]::CreateRandom().ToHexString(), [Diagnostics.ActivitySpanId]::CreateRandom().ToHexString(); 'User-Agent' = 'KfmRollback-probe'; Accept = 'application/json' }

function Get-WrkRate([string] $Url, [string] $Token, [int] $Seconds) {
    $headerArgs = foreach ($h in $probeHeaders.GetEnumerator()) { '-H'; "$($h.Key): $($h.Value)" }
    $out = & wrk -t2 -c16 "-d$($Seconds)s" -H "Authorization: Bearer $Token" @headerArgs $Url 2>&1
    [double] (($out | Select-String 'Requests/sec:\s+([\d.]+)').Matches[0].Groups[1].Value)
}

$lab = Start-KfmTestLab -TimeScale 5 -ExtraArguments @('--traffic', '0')
try {
    $token = $lab.Facts.kfmApi.tokens.public
    $env:KFM_LAB_PUBLIC_TOKEN = $token
    $env:KFM_LAB_STEWARD_TOKEN = $lab.Facts.kfmApi.tokens.steward
    $env:KFM_LAB_RESTRICTED_IDS = 'burial_sites'
    $config = Join-Path $lab.Directory 'probes.yaml'
    (Get-Content -Raw $lab.Config) -replace '(restricted_ids_env: KFM_LAB_RESTRICTED_IDS)', "`$1`n        samples: $Samples" | Set-Content $config
    $url = "$($lab.Facts.kfmApi.url)/api/v1/datasets/burial_sites"

    $null = Get-WrkRate $url $token 3                        # warms the lab, untimed
    # Steady-state throughput, as wrk measures it: .NET compiles first calls quickly and recompiles
    # hot code optimised in the background, which under full load takes a dozen runs. The first
    # (cold) run is reported too, as an operator's single verification meets it.
    $probes = 2 * $Samples + 3   # the leak comparison, plus one anonymous probe per governed endpoint and one listing
    $cold = [Diagnostics.Stopwatch]::StartNew()
    $null = Test-KfmPolicyInvariant -ConfigPath $config
    $cold.Stop()
    foreach ($warm in 2..$WarmupRounds) { $null = Test-KfmPolicyInvariant -ConfigPath $config }

    $clientCpu = Get-CpuSeconds $PID; $labCpu = Get-CpuSeconds $lab.Process.Id
    $moduleRates = foreach ($round in 1..$Rounds) {
        $watch = [Diagnostics.Stopwatch]::StartNew()
        $results = Test-KfmPolicyInvariant -ConfigPath $config
        $watch.Stop()
        $leak = $results | Where-Object Check -Like 'B.existence-leak*'
        if ($leak.Verdict -ne 'Pass') { throw "The good build's existence-leak check did not pass ($($leak.Verdict)): the benchmark would time a wrong run." }
        $probes / $watch.Elapsed.TotalSeconds
    }
    $clientCpu = ((Get-CpuSeconds $PID) - $clientCpu) * 1e6 / ($probes * $Rounds)
    $labCpu = ((Get-CpuSeconds $lab.Process.Id) - $labCpu) * 1e6 / ($probes * $Rounds)
    $moduleRate = Get-Median $moduleRates
    Write-Host ('module: {0} probes a run; cold first run {1:N0} req/s; steady median {2:N0} req/s (runs: {3}); CPU per probe: module {4:N0} us, lab {5:N0} us' -f $probes, ($probes / $cold.Elapsed.TotalSeconds), $moduleRate, (($moduleRates | ForEach-Object { '{0:N0}' -f $_ }) -join ', '), $clientCpu, $labCpu)

    $labCpu = Get-CpuSeconds $lab.Process.Id
    $wrkRate = Get-WrkRate $url $token 10
    $labCpu = ((Get-CpuSeconds $lab.Process.Id) - $labCpu) * 1e6 / ($wrkRate * 10)
    Write-Host ('wrk: {0:N0} req/s; CPU per request: lab {1:N0} us' -f $wrkRate, $labCpu)

    # The floor .NET sets: the same requests (the leak comparison's two paths, alternating) through a
    # bare HttpClient with the module's handler settings and concurrency (the lab's plan: the defaults,
    # 8 in flight, missing ids as kfm_probe_missing_<random>), nothing kept but the body.
    $bareUrls = @($url, "$($lab.Facts.kfmApi.url)/api/v1/datasets/kfm_probe_missing_$([Guid]::NewGuid().ToString('N').Substring(0, 12))")
    $null = [KfmRollback.Bench.BareHttpClientProbes]::RequestsPerSecond($bareUrls, $token, $probes, 8)
    $bareRates = foreach ($round in 1..$Rounds) { [KfmRollback.Bench.BareHttpClientProbes]::RequestsPerSecond($bareUrls, $token, $probes, 8) }
    $bareRate = Get-Median $bareRates
    Write-Host ('bare HttpClient, same requests: median {0:N0} req/s; the module runs at {1:N3} of it' -f $bareRate, ($moduleRate / $bareRate))

    # What a script would write to compare two latency samples: status, latency and body per call.
    $headers = @{ Authorization = "Bearer $token" } + $probeHeaders
    $loop = {
        param([int] $Count)
        $kept = [Collections.Generic.List[object]]::new($Count)
        for ($i = 0; $i -lt $Count; $i++) {
            $call = [Diagnostics.Stopwatch]::StartNew()
            $body = Invoke-RestMethod -Uri $url -Headers $headers -SkipHttpErrorCheck -StatusCodeVariable status
            $kept.Add([pscustomobject]@{ Status = $status; Milliseconds = $call.Elapsed.TotalMilliseconds; Body = $body })
        }
        $kept.Count
    }
    # Warmed as long as the module was: PowerShell compiles the loop and .NET tiers up the
    # cmdlet's code over the first few thousand calls, after which the rate levels off.
    $null = & $loop (8 * $LoopRequests)
    $loopRates = foreach ($round in 1..$Rounds) {
        $watch = [Diagnostics.Stopwatch]::StartNew()
        $null = & $loop $LoopRequests
        $watch.Stop()
        $LoopRequests / $watch.Elapsed.TotalSeconds
    }
    $loopRate = Get-Median $loopRates
    Write-Host ('Invoke-RestMethod loop: median {0:N0} req/s (runs: {1})' -f $loopRate, (($loopRates | ForEach-Object { '{0:N0}' -f $_ }) -join ', '))

    Write-BenchLine -Name 'probes-vs-wrk' -Ratio ($moduleRate / $wrkRate) -Target '>=0.5'
    Write-BenchLine -Name 'probes-vs-irm' -Ratio ($moduleRate / $loopRate) -Target '>=10'
}
finally {
    Stop-KfmTestLab $lab
    Remove-Item env:KFM_LAB_PUBLIC_TOKEN, env:KFM_LAB_STEWARD_TOKEN, env:KFM_LAB_RESTRICTED_IDS -ErrorAction SilentlyContinue
}
