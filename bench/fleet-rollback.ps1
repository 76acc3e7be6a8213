<#
.SYNOPSIS
    Fleet rollback: 100 Deployments across 10 namespaces rolled back and waited on by ONE
    Invoke-KfmRollback call in this process (every environment planned first, then -ThrottleLimit
    at once, one shared client for the cluster), against a sequential loop of `kubectl rollout
    undo` + `kubectl rollout status` over the same lab. Prints
    'bench: fleet ratio=<kubectl time / module time> target>=30' and
    'bench: fleet-vs-one ratio=<fleet time / one rollout time> target<=3', where one rollout is the
    module rolling back a single Deployment on the same lab (the lab's simulated rollout time plus
    the module's own cost).
#>
param(
    [string] $ModulePath = (Join-Path $PSScriptRoot '../out/KfmRollback'),
    [int] $Namespaces = 10,
    [int] $PerNamespace = 10,
    [int] $ThrottleLimit = 100
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchHelpers.ps1')
$env:KFM_MODULE_PATH = (Resolve-Path $ModulePath).Path
. (Join-Path $PSScriptRoot '../tests/pester/LabHelpers.ps1')

$lab = Start-KfmTestLab -TimeScale 5 -PodStartSeconds 2 -ExtraArguments @('--traffic', '0')
try {
    $images = $lab.Facts.catalogue.PSObject.Properties.Value | Where-Object regression -EQ 'None' | ForEach-Object image
    $targets = foreach ($n in 1..$Namespaces) { foreach ($d in 1..$PerNamespace) { [pscustomobject]@{ Namespace = "fleet-$n"; Name = "api-$d" } } }
    $solo = [pscustomobject]@{ Namespace = 'solo'; Name = 'api' }

    # Two revisions per Deployment, applied in two kubectl calls over one multi-document manifest.
    foreach ($image in $images[0], $images[1]) {
        $docs = foreach ($n in @(1..$Namespaces | ForEach-Object { "fleet-$_" }) + 'solo') { "apiVersion: v1`nkind: Namespace`nmetadata: { name: $n }" }
        $docs += foreach ($t in @($targets) + $solo) {
            @"
apiVersion: apps/v1
kind: Deployment
metadata: { name: $($t.Name), namespace: $($t.Namespace) }
spec:
  replicas: 2
  selector: { matchLabels: { app: $($t.Name) } }
  template:
    metadata: { labels: { app: $($t.Name) } }
    spec: { containers: [ { name: api, image: '$image' } ] }
"@
        }
        $docs -join "`n---`n" | Set-Content (Join-Path $lab.Directory 'fleet.yaml')
        Invoke-KfmLabKubectl $lab apply -f (Join-Path $lab.Directory 'fleet.yaml') | Out-Null
    }
    foreach ($t in @($targets) + $solo) { Invoke-KfmLabKubectl $lab rollout status "deployment/$($t.Name)" -n $t.Namespace --timeout=120s | Out-Null }

    # One environment per Deployment; no GitOps controller manages the fleet, so nothing to freeze.
    $config = Join-Path $lab.Directory 'fleet-config.yaml'
    $blocks = foreach ($t in @($targets) + $solo) {
        @"
  $($t.Namespace)-$($t.Name):
    cluster: { kubeconfig_path: $($lab.Kubeconfig), context: lab, namespace: $($t.Namespace), deployment: $($t.Name), container: api }
    gitops: { path: gitops, branch: main, file: k.yaml, kind: kustomize, image_name: kfm-api, kill_switch_path: FREEZE }
    freeze: { mechanisms: [ { kind: killswitch } ] }
    prometheus: { url: 'http://127.0.0.1:9' }
    api: { base_url: 'http://127.0.0.1:9', openapi_path: /openapi.json, probe: { callers: { anon: { anonymous: true, role: public } }, endpoints: [ { path: /api/v1/datasets } ] } }
"@
    }
    "defaults: { incident_journal: state/incidents, receipt_store: state/receipts }`nenvironments:`n$($blocks -join "`n")" | Set-Content $config

    Import-Module (Join-Path $env:KFM_MODULE_PATH 'KfmRollback.psd1')
    # Warm the module (JIT, the shared client) on the solo Deployment so neither timing pays for it.
    Invoke-KfmRollback -ConfigPath $config -Environment solo-api -Method Cluster -WhatIf 6>$null | Out-Null
    $one = [Diagnostics.Stopwatch]::StartNew()
    $single = Invoke-KfmRollback -ConfigPath $config -Environment solo-api -Method Cluster -Wait -Timeout 300 -Confirm:$false
    $one.Stop()
    if ($single.Outcome -ne 'Succeeded') { throw "module single rollback: $($single.Outcome) $($single.Detail)" }

    $module = [Diagnostics.Stopwatch]::StartNew()
    $results = Invoke-KfmRollback -ConfigPath $config -Environment 'fleet-*' -Method Cluster -Wait -Timeout 300 -ThrottleLimit $ThrottleLimit -Confirm:$false
    $module.Stop()
    $failed = @($results | Where-Object Outcome -NE 'Succeeded')
    if ($failed.Count -or @($results).Count -ne $targets.Count) { throw "module fleet rollback: $(@($results).Count) results, $($failed.Count) not succeeded" }

    $kubectl = [Diagnostics.Stopwatch]::StartNew()
    foreach ($t in $targets) {
        Invoke-KfmLabKubectl $lab rollout undo "deployment/$($t.Name)" -n $t.Namespace | Out-Null
        Invoke-KfmLabKubectl $lab rollout status "deployment/$($t.Name)" -n $t.Namespace --timeout=120s | Out-Null
    }
    $kubectl.Stop()

    Write-Host ('{0} deployments: module {1:N1} s (one call, throttle {2}), kubectl loop {3:N1} s, one rollout {4:N1} s' -f $targets.Count, $module.Elapsed.TotalSeconds, $ThrottleLimit, $kubectl.Elapsed.TotalSeconds, $one.Elapsed.TotalSeconds)
    Write-BenchLine -Name 'fleet' -Ratio ($kubectl.Elapsed.TotalSeconds / $module.Elapsed.TotalSeconds) -Target '>=30'
    Write-BenchLine -Name 'fleet-vs-one' -Ratio ($module.Elapsed.TotalSeconds / $one.Elapsed.TotalSeconds) -Target '<=3'
}
finally { Stop-KfmTestLab $lab }
