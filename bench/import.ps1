<#
.SYNOPSIS
    Cold import cost: 'pwsh -NoProfile -c Import-Module KfmRollback' against bare
    'pwsh -NoProfile -c exit', alternating, median of the runs. Target: ratio <= 1.15.

.DESCRIPTION
    Two references are measured in the same alternation, so the figure can be read against what
    pwsh itself costs: a manifest with nothing in it (pwsh's own first Import-Module), and the
    least a binary module can be, one cmdlet and no format or types file (bench/ImportFloor,
    built here against the same PowerShellStandard.Library). KfmRollback's own share is its
    time over that floor.
#>
param(
    [string] $ModulePath = (Join-Path $PSScriptRoot '../out/KfmRollback'),
    [int] $Runs = 7
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchHelpers.ps1')

$manifest = (Resolve-Path (Join-Path $ModulePath 'KfmRollback.psd1')).Path
$pwsh = Get-BenchPwsh

$references = Join-Path ([IO.Path]::GetTempPath()) "kfm-import-bench-$PID"
New-Item -ItemType Directory -Force (Join-Path $references 'floor') | Out-Null
try {
    $emptyManifest = Join-Path $references 'Empty.psd1'
    Set-Content $emptyManifest "@{ ModuleVersion = '1.0'; FunctionsToExport = @(); CmdletsToExport = @(); VariablesToExport = @(); AliasesToExport = @() }"
    $built = & dotnet build (Join-Path $PSScriptRoot 'ImportFloor/ImportFloor.csproj') -c Release -o (Join-Path $references 'floor') -nologo -v q 2>&1
    if ($LASTEXITCODE -ne 0) { throw "bench/ImportFloor did not build:`n$($built -join "`n")" }
    $floorManifest = Join-Path $references 'floor/ImportFloor.psd1'
    Set-Content $floorManifest "@{ RootModule = 'ImportFloor.dll'; ModuleVersion = '1.0'; CmdletsToExport = @('Get-ImportFloor'); FunctionsToExport = @(); VariablesToExport = @(); AliasesToExport = @() }"

    $contenders = [ordered]@{
        bare        = 'exit'
        empty       = "Import-Module '$emptyManifest'"
        floor       = "Import-Module '$floorManifest'"
        KfmRollback = "Import-Module '$manifest'"
    }
    # One warm-up of each so the OS file cache is equal for all.
    foreach ($script in $contenders.Values) { Measure-BenchCommand $pwsh @('-NoProfile', '-c', $script) | Out-Null }

    $times = [ordered]@{}
    foreach ($name in $contenders.Keys) { $times[$name] = [Collections.Generic.List[double]]::new() }
    for ($i = 0; $i -lt $Runs; $i++) {
        foreach ($name in $contenders.Keys) { $times[$name].Add((Measure-BenchCommand $pwsh @('-NoProfile', '-c', $contenders[$name]))) }
    }
    $median = [ordered]@{}
    foreach ($name in $times.Keys) { $median[$name] = Get-Median $times[$name] }
    Write-Host ('bare pwsh {0:N0} ms, with Import-Module KfmRollback {1:N0} ms (median of {2})' -f $median.bare, $median.KfmRollback, $Runs)
    Write-Host ('references: an empty manifest {0:N0} ms ({1:N3}x bare), a one-cmdlet binary module {2:N0} ms ({3:N3}x bare); KfmRollback over that floor: {4:N0} ms' -f
        $median.empty, ($median.empty / $median.bare), $median.floor, ($median.floor / $median.bare), ($median.KfmRollback - $median.floor))
    Write-BenchLine -Name 'import' -Ratio ($median.KfmRollback / $median.bare) -Target '<=1.15'
}
finally {
    Remove-Item $references -Recurse -Force -ErrorAction SilentlyContinue
}
