<#
.SYNOPSIS
    Fleet rollback: -Namespaces x -PerNamespace Deployments (1,000 by default, as issue 21 asks: under
    a minute in all since the lab's workload controllers are event-driven; the module and the lab then
    share the 2 cores, so the fleet's time is their CPU per Deployment; -Namespaces 10 for 100) rolled
    back and waited on by ONE Invoke-KfmRollback call
    in this process (every environment planned first, then -ThrottleLimit
    at once, one shared client for the cluster). Prints
    'bench: fleet-<count>-vs-one ratio=<fleet time / one rollout time> target<=3' with the process's
    peak working set, where one rollout is the median of -SingleRuns single-Deployment rollbacks by
    the module on the same lab (each a Deployment of its own, so each is a real rollout), and
    'bench: fleet ratio=<kubectl time / module time> target>=30' against a sequential loop of
    `kubectl rollout undo` + `kubectl rollout status` over -KubectlSample of the same Deployments,
    scaled to the fleet's size (the loop is sequential, so its time grows linearly).
#>
param(
    [string] $ModulePath = (Join-Path $PSScriptRoot '../out/KfmRollback'),
    [int] $Namespaces = 100,
    [int] $PerNamespace = 10,
    [int] $ThrottleLimit = 100,
    [int] $SingleRuns = 5,
    [int] $KubectlSample = 10
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchHelpers.ps1')
$env:KFM_MODULE_PATH = (Resolve-Path $ModulePath).Path
. (Join-Path $PSScriptRoot '../tests/pester/LabHelpers.ps1')

$lab = Start-KfmTestLab -TimeScale 5 -PodStartSeconds 2 -ExtraArguments @('--traffic', '0')
try {
    $images = $lab.Facts.catalogue.PSObject.Properties.Value | Where-Object regression -EQ 'None' | ForEach-Object image
    $targets = foreach ($n in 1..$Namespaces) { foreach ($d in 1..$PerNamespace) { [pscustomobject]@{ Namespace = "fleet-$n"; Name = "api-$d" } } }
    $solos = foreach ($i in 0..$SingleRuns) { [pscustomobject]@{ Namespace = 'solo'; Name = "api-$i" } }

    # Two revisions per Deployment, applied in two kubectl calls over one multi-document manifest.
    foreach ($image in $images[0], $images[1]) {
        $docs = foreach ($n in @(@(1..$Namespaces | ForEach-Object { "fleet-$_" }) + 'solo')) { "apiVersion: v1`nkind: Namespace`nmetadata: { name: $n }" }
        $docs += foreach ($t in @($targets) + @($solos)) {
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
    # Every Deployment rolled out (one list call a second, not a kubectl process per Deployment).
    $deadline = [DateTime]::UtcNow.AddMinutes(10)
    do {
        Start-Sleep -Seconds 1
        $items = ((Invoke-KfmLabKubectl $lab get deployments -A -o json) -join "`n" | ConvertFrom-Json -Depth 50).items
        $pending = @($items | Where-Object { $_.status.observedGeneration -lt $_.metadata.generation -or $_.status.updatedReplicas -ne $_.spec.replicas -or $_.status.availableReplicas -ne $_.spec.replicas })
        if ([DateTime]::UtcNow -gt $deadline) { throw "$($pending.Count) Deployments did not roll out in 10 minutes" }
    } while ($pending.Count -or @($items).Count -lt ($targets.Count + $solos.Count))

    # One environment per Deployment; no GitOps controller manages the fleet, so nothing to freeze.
    $config = Join-Path $lab.Directory 'fleet-config.yaml'
    $blocks = foreach ($t in @($targets) + @($solos)) {
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
    # Warm the module (JIT, the shared client) with a whole rollback of solo-api-0 so no timing pays for it.
    $warm = Invoke-KfmRollback -ConfigPath $config -Environment solo-api-0 -Method Cluster -Wait -Timeout 300 -Confirm:$false
    if ($warm.Outcome -ne 'Succeeded') { throw "module warm-up rollback: $($warm.Outcome) $($warm.Detail)" }
    # One rollout, honestly: the median of several, each a Deployment of its own.
    $singles = foreach ($i in 1..$SingleRuns) {
        $one = [Diagnostics.Stopwatch]::StartNew()
        $single = Invoke-KfmRollback -ConfigPath $config -Environment "solo-api-$i" -Method Cluster -Wait -Timeout 300 -Confirm:$false
        $one.Stop()
        if ($single.Outcome -ne 'Succeeded') { throw "module single rollback: $($single.Outcome) $($single.Detail)" }
        $one.Elapsed.TotalSeconds
    }
    $oneMedian = Get-Median $singles

    $module = [Diagnostics.Stopwatch]::StartNew()
    $results = Invoke-KfmRollback -ConfigPath $config -Environment 'fleet-*' -Method Cluster -Wait -Timeout 300 -ThrottleLimit $ThrottleLimit -Confirm:$false
    $module.Stop()
    $failed = @($results | Where-Object Outcome -NE 'Succeeded')
    if ($failed.Count -or @($results).Count -ne $targets.Count) { throw "module fleet rollback: $(@($results).Count) results, $($failed.Count) not succeeded" }

    $peakMiB = [Diagnostics.Process]::GetCurrentProcess().PeakWorkingSet64 / 1MB

    $sample = @($targets | Select-Object -First $KubectlSample)
    $kubectl = [Diagnostics.Stopwatch]::StartNew()
    foreach ($t in $sample) {
        Invoke-KfmLabKubectl $lab rollout undo "deployment/$($t.Name)" -n $t.Namespace | Out-Null
        Invoke-KfmLabKubectl $lab rollout status "deployment/$($t.Name)" -n $t.Namespace --timeout=120s | Out-Null
    }
    $kubectl.Stop()

    $kubectlFleet = $kubectl.Elapsed.TotalSeconds * $targets.Count / $sample.Count
    Write-Host ('{0} deployments: module {1:N1} s (one call, throttle {2}, peak working set {3:N0} MiB); one rollout {4:N2} s (median of {5}: {6}); kubectl loop {7:N1} s over {8}, {9:N1} s scaled to {0}' -f `
        $targets.Count, $module.Elapsed.TotalSeconds, $ThrottleLimit, $peakMiB, $oneMedian, $SingleRuns, (($singles | ForEach-Object { $_.ToString('0.00', [Globalization.CultureInfo]::InvariantCulture) }) -join ', '), `
        $kubectl.Elapsed.TotalSeconds, $sample.Count, $kubectlFleet)
    Write-BenchLine -Name 'fleet' -Ratio ($kubectlFleet / $module.Elapsed.TotalSeconds) -Target '>=30'
    Write-BenchLine -Name "fleet-$($targets.Count)-vs-one" -Ratio ($module.Elapsed.TotalSeconds / $oneMedian) -Target '<=3'
}
finally { Stop-KfmTestLab $lab }
