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
    Write-Host $line
}
