<#
.SYNOPSIS
    Cold import cost: 'pwsh -NoProfile -c Import-Module KfmRollback' against bare
    'pwsh -NoProfile -c exit', alternating, median of the runs. Target: ratio <= 1.15.
#>
param(
    [string] $ModulePath = (Join-Path $PSScriptRoot '../out/KfmRollback'),
    [int] $Runs = 7
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchHelpers.ps1')

$manifest = (Resolve-Path (Join-Path $ModulePath 'KfmRollback.psd1')).Path
$pwsh = Get-BenchPwsh
$importScript = "Import-Module '$manifest'"

# One warm-up of each so the OS file cache is equal for both.
Measure-BenchCommand $pwsh @('-NoProfile', '-c', 'exit') | Out-Null
Measure-BenchCommand $pwsh @('-NoProfile', '-c', $importScript) | Out-Null

$bare = [Collections.Generic.List[double]]::new()
$import = [Collections.Generic.List[double]]::new()
for ($i = 0; $i -lt $Runs; $i++) {
    $bare.Add((Measure-BenchCommand $pwsh @('-NoProfile', '-c', 'exit')))
    $import.Add((Measure-BenchCommand $pwsh @('-NoProfile', '-c', $importScript)))
}
$bareMedian = Get-Median $bare
$importMedian = Get-Median $import
Write-Host ('bare pwsh {0:N0} ms, with Import-Module {1:N0} ms (median of {2})' -f $bareMedian, $importMedian, $Runs)
Write-BenchLine -Name 'import' -Ratio ($importMedian / $bareMedian) -Target '<=1.15'
