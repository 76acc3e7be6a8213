<#
.SYNOPSIS
    Last-known-good lookup in Git history: `Get-KfmApiRef -Source GitOps` on a generated repository
    of 20,000 commits (the GitOps file changed every 20th commit) against
    `git log --format=%H -- <file>` on the same repository, median of the runs.
    Prints 'bench: git-history ratio=<module time / git time> target<=1.5'.
#>
param(
    [string] $ModulePath = (Join-Path $PSScriptRoot '../out/KfmRollback'),
    [int] $Commits = 20000,
    [int] $Every = 20,
    [int] $Runs = 5
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchHelpers.ps1')
Import-Module (Join-Path (Resolve-Path $ModulePath) 'KfmRollback.psd1')

$work = Join-Path ([IO.Path]::GetTempPath()) ('kfm-bench-git-' + [Guid]::NewGuid().ToString('N').Substring(0, 8))
New-Item -ItemType Directory $work | Out-Null
try {
    # The generator (git fast-import) is a benchmark fixture, compiled here rather than shipped in the module.
    Add-Type -Path (Join-Path $PSScriptRoot 'GitOpsBenchRepository.cs')
    $generator = [KfmRollback.Bench.GitOpsBenchRepository]
    $repo = Join-Path $work 'repo'
    $null = $generator.GetMethod('Create').Invoke($null, [object[]] @([string] $repo, [int] $Commits, [int] $Every))
    $file = $generator.GetField('FilePath').GetValue($null)
    $imageName = $generator.GetField('ImageName').GetValue($null)

    $config = Join-Path $work 'kfm-rollback.yaml'
    $example = Get-Content -Raw (Join-Path (Resolve-Path $ModulePath) 'kfm-rollback.example.yaml')
    $example -replace '      url: https://git\.example\.org/kfm/kfm-infra\.git', "      path: $repo" `
        -replace '      file: infra/gitops/apps/kfm-api/overlays/prod/kustomization\.yaml', "      file: $file" `
        -replace '      image_name: kfm-api', "      image_name: $imageName" -replace '      token_env: KFM_GITOPS_TOKEN\r?\n', '' | Set-Content $config

    $first = Get-KfmApiRef -ConfigPath $config -Environment prod -Source GitOps   # warm-up (JIT, page cache)
    Write-Host "current $($first.CurrentRef.Substring(0, 19))…, last-known-good $($first.LastKnownGoodRef.Substring(0, 19))… ($($first.LastKnownGoodSource))"
    $module = [Collections.Generic.List[double]]::new()
    $git = [Collections.Generic.List[double]]::new()
    for ($i = 0; $i -lt $Runs; $i++) {
        $watch = [Diagnostics.Stopwatch]::StartNew()
        $null = Get-KfmApiRef -ConfigPath $config -Environment prod -Source GitOps
        $module.Add($watch.Elapsed.TotalMilliseconds)
        $git.Add((Measure-BenchCommand @('git') @('-C', $repo, 'log', '--format=%H', '--', $file)))
    }
    $m = Get-Median $module
    $g = Get-Median $git
    Write-Host ('{0} commits: module {1:N0} ms, git log {2:N0} ms (median of {3})' -f $Commits, $m, $g, $Runs)
    Write-BenchLine -Name 'git-history' -Ratio ($m / $g) -Target '<=1.5'
}
finally { Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue }
