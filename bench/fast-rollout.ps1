<#
.SYNOPSIS
    The rollout of a cluster rollback with and without -Fast (issue 21 item 3), on the lab: the same
    bad deploy rolled back by `Invoke-KfmRollback -Method Cluster -Wait` and by the same with `-Fast`,
    alternating, median of -Runs each. The rollout time is measured from the run's apply phase (the
    write-ahead record before the patch) to the moment a raw watch sees the Deployment's status say
    complete, so the module's planning and the -Fast restore (sent after convergence) are not in it.
    The lab's deployment controller follows kubernetes' rolling.go (maxSurge/maxUnavailable), and each
    pod takes -PodStartSeconds of lab time to become ready, so the default strategy (maxSurge 25% of 3
    = 1 pod, maxUnavailable 0) needs three steps where -Fast (maxSurge 100%) needs one. Prints
      'bench: fast-vs-default ratio=<fast rollout time / default rollout time> target<=0.7'.
#>
param(
    [string] $ModulePath = (Join-Path $PSScriptRoot '../out/KfmRollback'),
    [int] $Runs = 3,
    [double] $PodStartSeconds = 10
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchHelpers.ps1')
$env:KFM_MODULE_PATH = (Resolve-Path $ModulePath).Path
. (Join-Path $PSScriptRoot '../tests/pester/LabHelpers.ps1')
Import-Module (Join-Path $env:KFM_MODULE_PATH 'KfmRollback.psd1')

$lab = Start-KfmTestLab -TimeScale 20 -PodStartSeconds $PodStartSeconds
$env:KFM_ROLLBACK_CONFIG = $lab.Config
try {
    function Deploy([string] $Build) {
        Deploy-KfmLabBuild $lab $Build -TimeoutSeconds 180
    }
    Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api -n kfm --timeout=180s | Out-Null
    # Frozen first, so Argo CD does not undo the builds deployed by hand.
    New-KfmIncident -Id FAST-0 -Commander bench -Reason 'fast-rollout bench' -Environment lab -Confirm:$false | Start-KfmFreeze -Confirm:$false | Out-Null

    $times = @{ default = [Collections.Generic.List[double]]::new(); fast = [Collections.Generic.List[double]]::new() }
    for ($i = 1; $i -le $Runs; $i++) {
        foreach ($kind in 'default', 'fast') {
            Deploy 'bad-5xx'
            $incident = "FAST-$i-$kind-" + [Guid]::NewGuid().ToString('N').Substring(0, 6)
            New-KfmIncident -Id $incident -Commander bench -Reason 'fast-rollout bench' -Environment lab -Confirm:$false | Out-Null
            $generation = (Get-KfmLabDeployment $lab).metadata.generation + 1
            $complete = Start-CompletionWatch $lab $generation
            $result = Invoke-KfmRollback -Method Cluster -IncidentId $incident -Wait -Fast:($kind -eq 'fast') -Timeout 300 -Confirm:$false -WarningAction SilentlyContinue
            $completedAt = $complete | Wait-Job -Timeout 60 | Receive-Job
            Remove-Job $complete -Force
            if ($result.Outcome -ne 'Succeeded') { throw "$kind run ${i}: $($result.Outcome): $($result.Detail)" }
            if (($kind -eq 'fast') -ne (@($result.Changes).Surface -contains 'rollout')) { throw "$kind run ${i}: the strategy was $(if ($kind -eq 'fast') { 'not ' })raised" }
            if (-not $completedAt) { throw 'the completion watch saw no completion' }
            $apply = (Get-KfmIncident -Id $incident -Phases | Where-Object Phase -EQ 'apply').Start
            $rollout = ([DateTimeOffset] $completedAt - $apply).TotalSeconds
            $times[$kind].Add($rollout)
            Write-Host ('run {0}: {1} rollout {2:N2} s' -f $i, $kind, $rollout)
        }
    }
    $default = Get-Median $times.default
    $fast = Get-Median $times.fast
    Write-Host ('rollout of the rollback (median of {0}): default strategy {1:N2} s, -Fast {2:N2} s' -f $Runs, $default, $fast)
    Write-BenchLine -Name 'fast-vs-default' -Ratio ($fast / $default) -Target '<=0.7'
}
finally {
    Stop-KfmTestLab $lab
    Remove-Item env:KFM_ROLLBACK_CONFIG -ErrorAction SilentlyContinue
}
