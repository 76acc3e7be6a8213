<#
.SYNOPSIS
    Reaction time: one rollout waited on at once by `Invoke-KfmRollback -Wait` and by a
    `kubectl rollout status` started at the same moment; for each, the delay from the lab marking
    the rollout complete (seen by a raw watch on the apiserver) to the waiter returning. Median of
    the runs. Prints the module's delay and 'bench: reaction ratio=<module / kubectl> target<=1.5'.
#>
param(
    [string] $ModulePath = (Join-Path $PSScriptRoot '../out/KfmRollback'),
    [int] $Runs = 7
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchHelpers.ps1')
$env:KFM_MODULE_PATH = (Resolve-Path $ModulePath).Path
. (Join-Path $PSScriptRoot '../tests/pester/LabHelpers.ps1')
Import-Module (Join-Path $env:KFM_MODULE_PATH 'KfmRollback.psd1')

$lab = Start-KfmTestLab -TimeScale 1 -PodStartSeconds 2 -ExtraArguments @('--traffic', '0')
try {
    $env:KFM_ROLLBACK_CONFIG = $lab.Config
    Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api -n kfm --timeout=180s | Out-Null
    # Frozen first, so Argo CD does not undo the builds deployed by hand.
    New-KfmIncident -Id REACT-0 -Commander bench -Reason 'reaction bench' -Environment lab -Confirm:$false | Start-KfmFreeze -Confirm:$false | Out-Null
    $module = [Collections.Generic.List[double]]::new()
    $kubectl = [Collections.Generic.List[double]]::new()
    for ($i = 0; $i -lt $Runs; $i++) {
        # Each run is an incident of its own after a fresh bad deploy: a rerun of one incident is a NoOp
        # (its run record), and the build rolled away from is quarantined, never a later run's target.
        Deploy-KfmLabBuild $lab 'bad-5xx' -TimeoutSeconds 180
        $incident = "REACT-$i-" + [Guid]::NewGuid().ToString('N').Substring(0, 6)
        New-KfmIncident -Id $incident -Commander bench -Reason 'reaction bench' -Environment lab -Confirm:$false | Out-Null
        $generation = (Get-KfmLabDeployment $lab).metadata.generation + 1
        $complete = Start-CompletionWatch $lab $generation
        $rollback = Start-ThreadJob -ArgumentList (Join-Path $env:KFM_MODULE_PATH 'KfmRollback.psd1'), $lab.Config, $incident -ScriptBlock {
            param($manifest, $config, $incident)
            Import-Module $manifest
            $result = Invoke-KfmRollback -ConfigPath $config -Method Cluster -IncidentId $incident -Wait -Timeout 120 -Confirm:$false
            if ($result.Outcome -ne 'Succeeded') { throw "rollback $($result.Outcome): $($result.Detail)" }
            [DateTime]::UtcNow
        }
        # Start kubectl as soon as the rollout exists, so both are waiting long before it completes. A
        # rollback that fails before its patch never makes one: say so instead of waiting forever.
        $deadline = [DateTime]::UtcNow.AddSeconds(120)
        while ((Get-KfmLabDeployment $lab).metadata.generation -lt $generation) {
            if ($rollback.State -in 'Failed', 'Completed' -or [DateTime]::UtcNow -gt $deadline) {
                $why = $rollback | Receive-Job -ErrorAction Continue 2>&1 | Out-String
                throw "run ${i}: the rollback made no rollout: $why"
            }
            Start-Sleep -Milliseconds 10
        }
        $process = Start-Process /usr/bin/kubectl -ArgumentList @('--kubeconfig', $lab.Kubeconfig, 'rollout', 'status', 'deployment/kfm-api', '-n', 'kfm', '--timeout=120s') -PassThru -RedirectStandardOutput /dev/null
        $process.WaitForExit()
        $kubectlDone = [DateTime]::UtcNow
        $moduleDone = $rollback | Wait-Job -Timeout 180 | Receive-Job
        $completedAt = $complete | Wait-Job -Timeout 60 | Receive-Job
        Remove-Job $rollback, $complete -Force
        if (-not $completedAt) { throw 'the completion watch saw no completion' }
        if (-not $moduleDone) { throw "run ${i}: Invoke-KfmRollback -Wait did not return within 180 s" }
        $module.Add(($moduleDone - $completedAt).TotalMilliseconds)
        $kubectl.Add(($kubectlDone - $completedAt).TotalMilliseconds)
    }
    $m = Get-Median $module
    $k = Get-Median $kubectl
    Write-Host ('delay after completion (median of {0}): module {1:N0} ms, kubectl rollout status {2:N0} ms' -f $Runs, $m, $k)
    Write-BenchLine -Name 'reaction' -Ratio ($m / $k) -Target '<=1.5'
}
finally {
    Stop-KfmTestLab $lab
    Remove-Item env:KFM_ROLLBACK_CONFIG -ErrorAction SilentlyContinue
}
