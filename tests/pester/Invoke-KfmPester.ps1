<#
.SYNOPSIS
    Runs the Pester suite against a built module, in this (fresh) pwsh process, and writes a
    summary of counts for build.ps1.
#>
param(
    [Parameter(Mandatory)] [string] $PesterModule,
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $SummaryPath,
    [Parameter(Mandatory)] [string] $ResultsDir,
    [Parameter(Mandatory)] [string] $Path
)
$ErrorActionPreference = 'Stop'
Import-Module $PesterModule -Force
$env:KFM_MODULE_PATH = $ModulePath
# Child pwsh processes the tests start print plain text: escape codes in a failure message are
# invalid XML and would break the NUnit report.
$env:NO_COLOR = '1'

$configuration = New-PesterConfiguration
$configuration.Run.Path = $Path -split ','
$configuration.Run.PassThru = $true
$configuration.Output.Verbosity = 'Normal'
$configuration.TestResult.Enabled = $true
$configuration.TestResult.OutputFormat = 'NUnitXml'
$configuration.TestResult.OutputPath = Join-Path $ResultsDir 'pester.xml'
# Every test directory of this run (New-KfmTestDirectory, in this process and the pwsh children the tests
# start) goes under one root, removed when the run ends: a run leaves nothing behind in the temp folder.
$env:KFM_TEST_ROOT = Join-Path ([IO.Path]::GetTempPath()) ('kfm-pester-' + [Guid]::NewGuid().ToString('N').Substring(0, 8))
New-Item -ItemType Directory -Path $env:KFM_TEST_ROOT | Out-Null
$result = $null
try { $result = Invoke-Pester -Configuration $configuration }
catch { Write-Host "Pester failed after running: $($_.Exception.Message)" -ForegroundColor Red }
finally { Remove-Item -LiteralPath $env:KFM_TEST_ROOT -Recurse -Force -ErrorAction SilentlyContinue }
if ($null -eq $result) {
    # No result is never a pass: count the whole run as failed.
    [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0 } | ConvertTo-Json | Set-Content -Path $SummaryPath
    exit 1
}

# Container failures (a broken BeforeAll, a syntax error) count as failures, never as silence.
$failed = $result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount
$failedTests = @($result.Failed | ForEach-Object {
        $message = "$($_.ErrorRecord | Select-Object -First 1)".Trim() -split "`n" | Select-Object -First 1
        "$($_.ExpandedPath): $message"
    }) + @($result.Containers | Where-Object { $_.ErrorRecord.Count -gt 0 } |
        ForEach-Object { "$($_.Item): $("$($_.ErrorRecord[0])" -split "`n" | Select-Object -First 1)" })
[pscustomobject]@{ Passed = $result.PassedCount; Failed = $failed; Skipped = $result.SkippedCount + $result.NotRunCount; FailedTests = $failedTests } |
    ConvertTo-Json | Set-Content -Path $SummaryPath
exit ([Math]::Min($failed, 1))
