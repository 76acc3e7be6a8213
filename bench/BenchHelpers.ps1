# Shared by bench/*.ps1: timing child processes and printing the one-line result format.

function Get-BenchPwsh {
    $process = [Environment]::ProcessPath
    if ([IO.Path]::GetFileNameWithoutExtension($process) -eq 'dotnet') {
        return @($process, (Join-Path $PSHOME 'pwsh.dll'))
    }
    @($process)
}

# Wall-clock milliseconds of one run of a command (array: executable then leading arguments).
function Measure-BenchCommand {
    param([string[]] $Command, [string[]] $Arguments)
    $exe = $Command[0]
    $all = @($Command | Select-Object -Skip 1) + $Arguments
    $watch = [Diagnostics.Stopwatch]::StartNew()
    & $exe @all | Out-Null
    $watch.Stop()
    if ($LASTEXITCODE -ne 0) { throw "benchmark command failed ($LASTEXITCODE): $exe $($all -join ' ')" }
    $watch.Elapsed.TotalMilliseconds
}

function Get-Median {
    param([double[]] $Values)
    $sorted = $Values | Sort-Object
    $n = $sorted.Count
    if ($n % 2) { return $sorted[($n - 1) / 2] }
    ($sorted[$n / 2 - 1] + $sorted[$n / 2]) / 2
}

function Write-BenchLine {
    param([string] $Name, [double] $Ratio, [string] $Target)
    $line = 'bench: {0} ratio={1} target{2}' -f $Name, $Ratio.ToString('0.###', [Globalization.CultureInfo]::InvariantCulture), $Target
    Write-Host "load average at the end of ${Name}: $(Get-BenchLoad)"
    Write-Host $line
}

# Watches the Deployment and records the wall-clock moment its status first says "complete"
# by kubectl's rules, so both waiters are measured from the same instant.
function Start-CompletionWatch($Lab, [long] $Generation) {
    $handler = [Net.Http.HttpClientHandler]::new()
    $handler.ServerCertificateCustomValidationCallback = [Net.Http.HttpClientHandler]::DangerousAcceptAnyServerCertificateValidator
    $client = [Net.Http.HttpClient]::new($handler)
    $client.DefaultRequestHeaders.Authorization = [Net.Http.Headers.AuthenticationHeaderValue]::new('Bearer', $Lab.AdminToken)
    $client.Timeout = [TimeSpan]::FromMinutes(5)
    Start-ThreadJob -ArgumentList $client, $Lab.Url, $Generation -ScriptBlock {
        param($client, $url, $generation)
        $stream = $client.GetStreamAsync("$url/apis/apps/v1/namespaces/kfm/deployments?watch=true&fieldSelector=metadata.name%3Dkfm-api").GetAwaiter().GetResult()
        $reader = [IO.StreamReader]::new($stream)
        while ($null -ne ($line = $reader.ReadLine())) {
            $d = ($line | ConvertFrom-Json -Depth 30).object
            $desired = if ($null -ne $d.spec.replicas) { $d.spec.replicas } else { 1 }
            if ($d.metadata.generation -ge $generation -and $d.status.observedGeneration -ge $d.metadata.generation -and
                $d.status.updatedReplicas -eq $desired -and $d.status.replicas -eq $desired -and $d.status.availableReplicas -eq $desired) {
                return [DateTime]::UtcNow
            }
        }
    }
}

# The load average (1, 5 and 15 minutes) and the core count: a figure taken on a busy machine says so.
function Get-BenchLoad {
    $load = if (Test-Path /proc/loadavg) { ((Get-Content -Raw /proc/loadavg) -split '\s+')[0..2] -join ' ' } else { 'unknown (no /proc/loadavg)' }
    '{0} on {1} cores' -f $load, [Environment]::ProcessorCount
}

# Every bench dot-sources this file first, so each prints the load before it starts.
Write-Host "load average before the bench: $(Get-BenchLoad) ($([IO.Path]::GetFileName($MyInvocation.PSCommandPath)))"
