<#
.SYNOPSIS
    Probe throughput: 10,000 policy probes by the module (Test-KfmPolicyInvariant with 5,000
    samples a side) against the same lab endpoint driven by wrk, and by a pwsh Invoke-RestMethod
    loop. Prints 'bench: probes-vs-wrk ratio=<module req/s / wrk req/s> target>=0.5' and
    'bench: probes-vs-irm ratio=<module req/s / loop req/s> target>=20'.
#>
param(
    [string] $ModulePath = (Join-Path $PSScriptRoot '../out/KfmRollback'),
    [int] $Samples = 5000,
    [int] $LoopRequests = 500
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchHelpers.ps1')
$env:KFM_MODULE_PATH = (Resolve-Path $ModulePath).Path
. (Join-Path $PSScriptRoot '../tests/pester/LabHelpers.ps1')
Import-Module (Join-Path $env:KFM_MODULE_PATH 'KfmRollback.psd1')
if (-not (Get-Command wrk -ErrorAction SilentlyContinue)) { throw 'wrk is not installed: apt-get install -y wrk (build.ps1 -Task Bench installs it).' }

$lab = Start-KfmTestLab -TimeScale 5 -ExtraArguments @('--traffic', '0')
try {
    $token = $lab.Facts.kfmApi.tokens.public
    $env:KFM_LAB_PUBLIC_TOKEN = $token
    $env:KFM_LAB_STEWARD_TOKEN = $lab.Facts.kfmApi.tokens.steward
    $env:KFM_LAB_RESTRICTED_IDS = 'burial_sites'
    $config = Join-Path $lab.Directory 'probes.yaml'
    (Get-Content -Raw $lab.Config) -replace '(restricted_ids_env: KFM_LAB_RESTRICTED_IDS)', "`$1`n        samples: $Samples`n        concurrency: 64" | Set-Content $config

    # Warm up (JIT, connection pool) with a small plan, as wrk's own start-up is not timed either.
    $warm = Join-Path $lab.Directory 'warm.yaml'
    (Get-Content -Raw $lab.Config) -replace '(restricted_ids_env: KFM_LAB_RESTRICTED_IDS)', "`$1`n        samples: 50" | Set-Content $warm
    $null = Test-KfmPolicyInvariant -ConfigPath $warm

    $watch = [Diagnostics.Stopwatch]::StartNew()
    $results = Test-KfmPolicyInvariant -ConfigPath $config
    $watch.Stop()
    $leak = $results | Where-Object Check -Like 'B.existence-leak*'
    $probes = 2 * $Samples + 8   # the leak comparison plus the other checks' few requests
    $moduleRate = $probes / $watch.Elapsed.TotalSeconds
    Write-Host ('module: {0} probes in {1:N1} s = {2:N0} req/s ({3})' -f $probes, $watch.Elapsed.TotalSeconds, $moduleRate, $leak.Verdict)

    $url = "$($lab.Facts.kfmApi.url)/api/v1/datasets/burial_sites"
    $wrkOut = & wrk -t2 -c16 -d10s -H "Authorization: Bearer $token" $url 2>&1
    $wrkRate = [double] (($wrkOut | Select-String 'Requests/sec:\s+([\d.]+)').Matches[0].Groups[1].Value)
    Write-Host ('wrk: {0:N0} req/s' -f $wrkRate)

    $headers = @{ Authorization = "Bearer $token" }
    $loop = [Diagnostics.Stopwatch]::StartNew()
    for ($i = 0; $i -lt $LoopRequests; $i++) { $null = Invoke-RestMethod -Uri $url -Headers $headers -SkipHttpErrorCheck }
    $loop.Stop()
    $loopRate = $LoopRequests / $loop.Elapsed.TotalSeconds
    Write-Host ('Invoke-RestMethod loop: {0:N0} req/s' -f $loopRate)

    Write-BenchLine -Name 'probes-vs-wrk' -Ratio ($moduleRate / $wrkRate) -Target '>=0.5'
    Write-BenchLine -Name 'probes-vs-irm' -Ratio ($moduleRate / $loopRate) -Target '>=20'
}
finally {
    Stop-KfmTestLab $lab
    Remove-Item env:KFM_LAB_PUBLIC_TOKEN, env:KFM_LAB_STEWARD_TOKEN, env:KFM_LAB_RESTRICTED_IDS -ErrorAction SilentlyContinue
}
