#Requires -Version 7.4
<#
.SYNOPSIS
    Builds, tests, packages and benchmarks the KfmRollback module.
.DESCRIPTION
    Every task works on a fresh machine: it installs what it needs (Pester from NuGet through a
    restore-only project, Debian packages through apt-get where a task needs them).
      Build    the importable module at out/KfmRollback/
      Test     Build, then every xUnit project and every Pester file (in a fresh pwsh against
               out/KfmRollback); ends with one line 'N passed, N failed, N skipped'. Also installs
               the npm package azurite (the Blob service the blob receipt store is tested against).
      Package  out/package/KfmRollback.zip (Azure Automation) and a .nupkg (Compress-PSResource)
      Bench    runs bench/*.ps1, each printing 'bench: <name> ratio=<x> target<=<goal>' lines
      Drill    the main job: the rollback runbook end to end, on the embedded lab (-Scenario
               Preferred|Emergency|Both, default Both)
      Lab      starts the lab cluster in the foreground, ready for the README's quick tour (out/lab/lab.env.ps1,
               out/lab/kfm-rollback.yaml, out/lab/kubeconfig)
.EXAMPLE
    dotnet tool restore && dotnet pwsh -NoProfile -File ./build.ps1 -Task Test
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Package', 'Bench', 'Drill', 'Lab')]
    [string] $Task = 'Build',
    [ValidateSet('Release', 'Debug')]
    [string] $Configuration = 'Release',
    # Pester files or xUnit filters to run instead of everything (for quick local loops).
    [string[]] $PesterPath,
    [string] $XunitFilter,
    # Drill: which runbook path to drill (the preferred GitOps path, the emergency cluster path with
    # the re-align PR, or both; see tests/drill/Invoke-KfmDrill.ps1).
    [ValidateSet('Preferred', 'Emergency', 'Both')]
    [string] $Scenario = 'Both'
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$Root = $PSScriptRoot
$Out = Join-Path $Root 'out'
$ModuleOut = Join-Path $Out 'KfmRollback'
$ResultsDir = Join-Path $Out 'test-results'
$LabBin = Join-Path $Out 'lab-bin'
# Debian packages the tests and the lab use: a real Prometheus for metrics, lighttpd to serve git over
# HTTP, a TrueType font for the plots' text (ScottPlot draws with the system's fonts), and a real OCI
# registry (docker-registry, Distribution 2.8) for the preflight's digest check.
$TestDebianPackages = @('prometheus', 'lighttpd', 'fonts-dejavu-core', 'docker-registry')
$PesterVersion = '5.7.1'
# Azurite (npm) is the Blob service the blob receipt store is tested against, installed under out/tools.
$AzuriteVersion = '3.37.0'
# The natives the package carries; others in LibGit2Sharp.NativeBinaries are pruned.
$NativeRids = @('linux-x64', 'linux-arm64', 'linux-musl-x64', 'win-x64', 'osx-arm64')

# Runs a program with its output on the console; throws on failure unless -AllowFailure.
function Invoke-Native {
    param([string] $FilePath, [string[]] $Arguments, [switch] $AllowFailure, [switch] $Quiet)
    if ($Quiet) { & $FilePath @Arguments | Out-Null } else { & $FilePath @Arguments | Out-Host }
    if ($LASTEXITCODE -ne 0 -and -not $AllowFailure) {
        throw "'$FilePath $($Arguments -join ' ')' failed with exit code $LASTEXITCODE."
    }
}

# The command that starts a fresh pwsh like the one running this script (a dotnet local tool runs
# as 'dotnet pwsh.dll', an installed pwsh as itself).
function Get-PwshCommand {
    $process = [Environment]::ProcessPath
    if ([IO.Path]::GetFileNameWithoutExtension($process) -eq 'dotnet') {
        return @($process, (Join-Path $PSHOME 'pwsh.dll'))
    }
    return @($process)
}

function Invoke-FreshPwsh {
    param([string[]] $Arguments, [switch] $AllowFailure, [switch] $Quiet)
    $command = Get-PwshCommand
    $exe = $command[0]
    $prefix = @($command | Select-Object -Skip 1)
    Invoke-Native -FilePath $exe -Arguments ($prefix + @('-NoProfile', '-NonInteractive') + $Arguments) -AllowFailure:$AllowFailure -Quiet:$Quiet
}

function Install-DebianPackage {
    param([string[]] $Name)
    $missing = @($Name | Where-Object { -not (& dpkg-query -W -f='${Status}' $_ 2>$null | Select-String 'install ok installed') })
    if ($missing.Count -eq 0) { return }
    if (-not (Get-Command apt-get -ErrorAction SilentlyContinue)) {
        throw "Debian packages $($missing -join ', ') are needed and apt-get is not available; install them with your package manager."
    }
    Write-Host "Installing Debian packages: $($missing -join ', ')"
    $env:DEBIAN_FRONTEND = 'noninteractive'
    Invoke-Native apt-get @('update', '-qq') -Quiet
    Invoke-Native apt-get (@('install', '-y', '-qq', '--no-install-recommends') + $missing) -Quiet
}

# Installs the npm package azurite under out/tools (Debian's nodejs/npm first when npm is missing) and
# tells the tests where its blob service is ($env:KFM_AZURITE_BLOB).
function Install-Azurite {
    $tools = Join-Path $Out 'tools'
    $package = Join-Path $tools 'node_modules/azurite/package.json'
    $installed = if (Test-Path $package) { (Get-Content -Raw $package | ConvertFrom-Json).version }
    if ($installed -ne $AzuriteVersion) {
        if (-not (Get-Command npm -ErrorAction SilentlyContinue)) { Install-DebianPackage @('nodejs', 'npm') }
        Write-Host "Installing azurite $AzuriteVersion from npm into $tools"
        New-Item -ItemType Directory -Force $tools | Out-Null
        Invoke-Native npm @('install', '--prefix', $tools, '--no-audit', '--no-fund', '--no-save', '--loglevel', 'error', "azurite@$AzuriteVersion") -Quiet
    }
    $env:KFM_AZURITE_BLOB = Join-Path $tools 'node_modules/.bin/azurite-blob'
}

function Get-NuGetPackagesFolder {
    if ($env:NUGET_PACKAGES) { return $env:NUGET_PACKAGES }
    Join-Path ([Environment]::GetFolderPath('UserProfile')) '.nuget/packages'
}

# Restores tests/tools (Pester, the YamlDotNet used by isolation tests) and returns Pester's psd1.
function Get-PesterModulePath {
    $packages = Get-NuGetPackagesFolder
    $psd1 = Join-Path $packages "pester/$PesterVersion/tools/Pester.psd1"
    $conflictingYaml = Join-Path $packages 'yamldotnet/16.3.0/lib/net8.0/YamlDotNet.dll'
    if (-not (Test-Path $psd1) -or -not (Test-Path $conflictingYaml)) {
        Write-Host "Restoring Pester $PesterVersion from NuGet"
        Invoke-Native dotnet @('restore', (Join-Path $Root 'tests/tools/TestTools.csproj'), '--nologo', '-v', 'q') -Quiet
    }
    if (-not (Test-Path $psd1)) { throw "Pester $PesterVersion was restored but '$psd1' is missing." }
    $psd1
}

function Invoke-Build {
    Write-Host "Building KfmRollback ($Configuration) into $ModuleOut"
    if (Test-Path $ModuleOut) { Remove-Item $ModuleOut -Recurse -Force }
    $dependencies = Join-Path $ModuleOut 'Dependencies'
    Invoke-Native dotnet @('publish', (Join-Path $Root 'src/KfmRollback.Engine/KfmRollback.Engine.csproj'),
        '-c', $Configuration, '-o', $dependencies, '--nologo', '-v', 'q', '-p:GenerateDocumentationFile=false')

    # Keep only the natives we promise; the rest only make the package bigger.
    Get-ChildItem (Join-Path $dependencies 'runtimes') -Directory |
        Where-Object Name -NotIn $NativeRids |
        Remove-Item -Recurse -Force

    $cmdletBin = Join-Path $Out "obj/cmdlets"
    Invoke-Native dotnet @('build', (Join-Path $Root 'src/KfmRollback.Cmdlets/KfmRollback.Cmdlets.csproj'),
        '-c', $Configuration, '-o', $cmdletBin, '--nologo', '-v', 'q')
    Copy-Item (Join-Path $cmdletBin 'KfmRollback.dll'), (Join-Path $cmdletBin 'KfmRollback.pdb') $ModuleOut

    Copy-Item (Join-Path $Root 'KfmRollback.psd1') $ModuleOut
    Copy-Item (Join-Path $Root 'module/*') $ModuleOut -Recurse

    # Cmdlet help comes from docs/cmdlets/*.md and the cmdlets' own metadata (a fresh pwsh, so
    # this build process never loads the module it just built).
    Invoke-FreshPwsh @('-File', (Join-Path $Root 'tools/New-KfmMamlHelp.ps1'), '-ModulePath', $ModuleOut,
        '-DocsPath', (Join-Path $Root 'docs/cmdlets'), '-OutFile', (Join-Path $ModuleOut 'en-US/KfmRollback.dll-Help.xml'))
    Write-Host "Built $ModuleOut"
}

# The lab cluster (tests/KfmRollback.Lab): an in-process apiserver subset with controllers.
function Invoke-BuildLab {
    Invoke-Native dotnet @('build', (Join-Path $Root 'tests/KfmRollback.Lab/KfmRollback.Lab.csproj'),
        '-c', $Configuration, '-o', $LabBin, '--nologo', '-v', 'q')
    $env:KFM_LAB_DLL = Join-Path $LabBin 'KfmRollback.Lab.dll'
}

function Read-TrxCounters {
    param([string] $Path)
    [xml] $trx = Get-Content -Raw $Path
    $counters = $trx.TestRun.ResultSummary.Counters
    # The names of failed tests are repeated at the very end: CI keeps only the tail of the log.
    $failedTests = @($trx.GetElementsByTagName('UnitTestResult') |
        Where-Object { $_.GetAttribute('outcome') -notin 'Passed', 'NotExecuted' } | ForEach-Object {
            $message = "$($_.GetElementsByTagName('Message') | Select-Object -First 1 -ExpandProperty InnerText)"
            "$($_.GetAttribute('testName')): $($message.Trim() -split "`n" | Select-Object -First 1)"
        })
    [pscustomobject]@{
        Passed  = [int] $counters.passed
        Failed  = [int] $counters.failed + [int] $counters.error + [int] $counters.timeout + [int] $counters.aborted
        Skipped = [int] $counters.notExecuted
        FailedTests = $failedTests
    }
}

function Invoke-Xunit {
    $projects = Get-ChildItem (Join-Path $Root 'tests') -Recurse -Filter '*.Tests.csproj'
    foreach ($project in $projects) {
        $name = $project.BaseName
        $trx = Join-Path $ResultsDir "$name.trx"
        if (Test-Path $trx) { Remove-Item $trx }
        $arguments = @('test', $project.FullName, '-c', $Configuration, '--nologo',
            '--logger', "trx;LogFileName=$trx", '--logger', 'console;verbosity=minimal')
        if ($XunitFilter) { $arguments += @('--filter', $XunitFilter) }
        Write-Host "xUnit: $name"
        Invoke-Native dotnet $arguments -AllowFailure
        if (-not (Test-Path $trx)) {
            # A build failure leaves no results: count it as a failure so nothing passes silently.
            Write-Host "xUnit: $name produced no results (build failure?)" -ForegroundColor Red
            [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0 }
            continue
        }
        Read-TrxCounters $trx
    }
}

function Invoke-PesterSuite {
    $pester = Get-PesterModulePath
    $resultFile = Join-Path $ResultsDir 'pester-summary.json'
    if (Test-Path $resultFile) { Remove-Item $resultFile }
    $paths = if ($PesterPath) { $PesterPath } else { @(Join-Path $Root 'tests/pester') }
    $runner = Join-Path $Root 'tests/pester/Invoke-KfmPester.ps1'
    Invoke-FreshPwsh -AllowFailure @('-File', $runner, '-PesterModule', $pester, '-ModulePath', $ModuleOut,
        '-SummaryPath', $resultFile, '-ResultsDir', $ResultsDir, '-Path', ($paths -join ','))
    if (-not (Test-Path $resultFile)) {
        Write-Host 'Pester produced no summary (the runner failed before running tests).' -ForegroundColor Red
        return [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0 }
    }
    Get-Content -Raw $resultFile | ConvertFrom-Json
}

function Invoke-Test {
    Install-DebianPackage $TestDebianPackages
    Install-Azurite
    Invoke-Build
    Invoke-BuildLab
    New-Item -ItemType Directory -Force $ResultsDir | Out-Null
    $env:KFM_MODULE_PATH = $ModuleOut
    $env:KFM_TEST_NUGET_PACKAGES = Get-NuGetPackagesFolder
    $results = @(Invoke-Xunit) + @(Invoke-PesterSuite)
    $passed = ($results | Measure-Object Passed -Sum).Sum
    $failed = ($results | Measure-Object Failed -Sum).Sum
    $skipped = ($results | Measure-Object Skipped -Sum).Sum
    $total = $passed + $failed + $skipped
    if ($total -eq 0) {
        Write-Host 'No test ran.' -ForegroundColor Red
        $failed = 1
    }
    Write-Host ''
    $failedTests = @($results | ForEach-Object { $_.FailedTests } | Where-Object { $_ })
    if ($failedTests) {
        Write-Host 'Failed:' -ForegroundColor Red
        $failedTests | ForEach-Object { Write-Host "  $_" -ForegroundColor Red }
    }
    Write-Host "$passed passed, $failed failed, $skipped skipped"
    if ($failed -gt 0) { exit 1 }
}

function Invoke-Package {
    Invoke-Build
    $packageDir = Join-Path $Out 'package'
    $result = & (Join-Path $Root 'tools/New-KfmPackage.ps1') -ModulePath $ModuleOut -DestinationPath $packageDir
    Write-Host ('Azure Automation package: {0} ({1} MB)' -f $result.Zip, $result.ZipMB)
    Write-Host "PowerShell Gallery package: $($result.Nupkg)"
}

function Invoke-Bench {
    Install-DebianPackage ($TestDebianPackages + @('wrk'))
    Invoke-Build
    Invoke-BuildLab
    $env:KFM_MODULE_PATH = $ModuleOut
    foreach ($bench in Get-ChildItem (Join-Path $Root 'bench') -Filter '*.ps1' | Where-Object Name -NotLike '*Helpers.ps1' | Sort-Object Name) {
        Write-Host "== $($bench.Name)"
        Invoke-FreshPwsh @('-File', $bench.FullName, '-ModulePath', $ModuleOut)
    }
}

function Invoke-Drill {
    # The drill starts the lab with a real Prometheus and draws plots: the same packages as the tests.
    Install-DebianPackage $TestDebianPackages
    Invoke-Build
    Invoke-BuildLab
    Invoke-FreshPwsh @('-File', (Join-Path $Root 'tests/drill/Invoke-KfmDrill.ps1'), '-ModulePath', $ModuleOut, '-LabDll', $env:KFM_LAB_DLL, '-Scenario', $Scenario)
}

# Runs the lab in the foreground until Ctrl+C or SIGTERM; the lab stops every process it started.
# Before it waits, it puts the lab where the README's quick tour starts (tests/lab/Initialize-KfmLabTour.ps1:
# the good build's contract recorded, then the bad build deployed through Argo CD) and prints, and
# writes to out/lab/, what the tour needs.
function Invoke-Lab {
    Install-DebianPackage $TestDebianPackages
    Invoke-Build
    Invoke-BuildLab
    $labDir = Join-Path $Out 'lab'
    if (Test-Path $labDir) { Remove-Item $labDir -Recurse -Force }
    New-Item -ItemType Directory -Force $labDir | Out-Null
    . (Join-Path $Root 'tests/lab/LabProcess.ps1')
    # The setup runs in a fresh pwsh, so this build process never loads the module it built.
    $process = Start-KfmTourLab -LabDll $env:KFM_LAB_DLL -Directory $labDir -ModulePath $ModuleOut -Foreground
    try {
        $lab = Get-Content -Raw (Join-Path $labDir 'lab.json') | ConvertFrom-Json
        $envScript = Join-Path $labDir 'lab.env.ps1'
        Write-Host ''
        Write-Host "The lab is running (apiserver $($lab.apiserver.url), KFM API $($lab.kfmApi.url)$(if ($lab.prometheus) { ", Prometheus $($lab.prometheus.url)" }))."
        Write-Host 'bad-5xx is serving after good-1.5.1: the incident the README''s quick tour rolls back. In another shell:'
        Write-Host "  dotnet pwsh -NoProfile"
        Write-Host "  . $envScript     # sets `$env:KFM_ROLLBACK_CONFIG and imports the module"
        Write-Host "  kubectl --kubeconfig $(Join-Path $labDir 'kubeconfig') get deploy,rs,pods -n kfm"
        Write-Host 'Press Ctrl+C to stop it.'
        $process.WaitForExit()
    }
    finally { Stop-KfmLabProcess $process }
}

switch ($Task) {
    'Build' { Invoke-Build }
    'Test' { Invoke-Test }
    'Package' { Invoke-Package }
    'Bench' { Invoke-Bench }
    'Drill' { Invoke-Drill }
    'Lab' { Invoke-Lab }
}
