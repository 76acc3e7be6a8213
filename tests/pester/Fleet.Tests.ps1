# Many environments in one Invoke-KfmRollback call: planned whole, refused whole, run in parallel.

BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    Import-Module $KfmManifest -Force
    $lab = Start-KfmTestLab
    $images = $lab.Facts.catalogue.PSObject.Properties.Value | Where-Object regression -EQ 'None' | ForEach-Object image
    # A second API Deployment ("eu") with two revisions, which no GitOps controller manages.
    foreach ($image in $images[0], $images[1]) {
        @"
apiVersion: apps/v1
kind: Deployment
metadata: { name: kfm-api-eu, namespace: kfm }
spec:
  replicas: 2
  selector: { matchLabels: { app: kfm-api-eu } }
  template:
    metadata: { labels: { app: kfm-api-eu } }
    spec: { containers: [ { name: api, image: '$image' } ] }
"@ | Set-Content (Join-Path $lab.Directory 'eu.yaml')
        Invoke-KfmLabKubectl $lab apply -f (Join-Path $lab.Directory 'eu.yaml') | Out-Null
        Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api-eu -n kfm --timeout=60s | Out-Null
    }
    $config = Join-Path $lab.Directory 'fleet.yaml'
    (Get-Content -Raw $lab.Config) + @"
  eu:
    cluster: { kubeconfig_path: $($lab.Kubeconfig), context: lab, namespace: kfm, deployment: kfm-api-eu, container: api }
    gitops: { path: gitops, branch: main, file: k.yaml, kind: kustomize, image_name: kfm-api, kill_switch_path: FREEZE }
    freeze: { mechanisms: [ { kind: killswitch } ] }
    prometheus: { url: 'http://127.0.0.1:9' }
    api: { base_url: 'http://127.0.0.1:9', openapi_path: /openapi.json, probe: { callers: { anon: { anonymous: true, role: public } }, endpoints: [ { path: /api/v1/datasets } ] } }
    approval_required: false
fleets:
  verified:
    waves:
      - environments: [eu]
      - environments: [lab]
    bake_time: 1s
  unverified:
    waves:
      - environments: [eu]
      - environments: [lab]
    verify: false
"@ | Set-Content $config
    $env:KFM_ROLLBACK_CONFIG = $config
    New-KfmIncident -Id INC-FLEET -Commander alice -Reason 'bad deploy everywhere' -Environment lab -Confirm:$false | Out-Null
    function Get-Generation([string] $Name) { [int] (Invoke-KfmLabKubectl $lab get deployment $Name -n kfm -o 'jsonpath={.metadata.generation}') }
    # A new (bad) deploy to both Deployments, so the next fleet rollback has something to do: after a
    # rollback, running it again changes nothing (the build it moved away from is quarantined).
    function Deploy-Everywhere([string] $Build) {
        $image = $lab.Facts.catalogue.$Build.image
        foreach ($name in 'kfm-api', 'kfm-api-eu') {
            Invoke-KfmLabKubectl $lab set image "deployment/$name" -n kfm "api=$image" | Out-Null
            Invoke-KfmLabKubectl $lab rollout status "deployment/$name" -n kfm --timeout=60s | Out-Null
        }
    }
    function Get-Image([string] $Name) { Invoke-KfmLabKubectl $lab get deployment $Name -n kfm -o 'jsonpath={.spec.template.spec.containers[0].image}' }
}

AfterAll {
    Stop-KfmTestLab $lab
    Remove-Item env:KFM_ROLLBACK_CONFIG -ErrorAction SilentlyContinue
}

Describe 'Invoke-KfmRollback on a fleet' {
    It 'refuses the whole fleet, changing nothing, when one environment cannot be planned' {
        $before = (Get-Generation kfm-api), (Get-Generation kfm-api-eu)
        $planErrors = $null
        $err = try { Invoke-KfmRollback -Environment lab, eu -IncidentId INC-FLEET -Method Cluster -Confirm:$false -ErrorVariable planErrors -ErrorAction SilentlyContinue; $null } catch { $_ }
        $err | Should -Not -BeNullOrEmpty
        $err.FullyQualifiedErrorId | Should -BeLike 'FleetPlanFailed,*'
        $err.Exception.Message | Should -Match '1 of 2 environments could not be planned \(lab\)' -Because ($planErrors | ForEach-Object { $_.Exception.Message } | Out-String)
        $planErrors.FullyQualifiedErrorId | Where-Object { $_ -like 'RollbackGitOpsNotFrozen,*' } | Should -Not -BeNullOrEmpty -Because "lab's Argo CD is not frozen"
        ((Get-Generation kfm-api), (Get-Generation kfm-api-eu)) | Should -Be $before -Because 'nothing may change when any environment is refused'
    }

    It 'shows every environment''s changes under -WhatIf and changes nothing' {
        Start-KfmFreeze -Environment lab -IncidentId INC-FLEET -Confirm:$false | Out-Null
        $before = (Get-Generation kfm-api), (Get-Generation kfm-api-eu)
        $output = Invoke-KfmChildPwsh -Script "`$env:KFM_ROLLBACK_CONFIG = '$config'; Import-Module '$KfmManifest'; Invoke-KfmRollback -Environment lab, eu -Method Cluster -WhatIf" | Out-String -Width 500
        $output | Should -Match 'lab: json-patch deployment kfm/kfm-api \[image\]'
        $output | Should -Match 'eu: json-patch deployment kfm/kfm-api-eu \[image\]'
        ((Get-Generation kfm-api), (Get-Generation kfm-api-eu)) | Should -Be $before
    }

    It 'rolls back every environment from the pipeline, each with its own result and timeline line' {
        $eu = Get-KfmApiRef -Environment eu
        $results = @(Get-KfmEnvironment | Invoke-KfmRollback -IncidentId INC-FLEET -Method Cluster -Wait -Timeout 60 -ThrottleLimit 2 -Confirm:$false)
        $results.Count | Should -Be 2
        ($results.Environment | Sort-Object) | Should -Be @('eu', 'lab')
        $results.Outcome | Should -Be @('Succeeded', 'Succeeded')
        Get-Image kfm-api-eu | Should -BeLike "*$($eu.LastKnownGoodRef)"
        $timeline = (Get-KfmIncident INC-FLEET).Timeline.Event
        $timeline | Where-Object { $_ -like 'Cluster rollback of kfm/kfm-api (*' } | Should -Not -BeNullOrEmpty
        $timeline | Where-Object { $_ -like 'Cluster rollback of kfm/kfm-api-eu (*' } | Should -Not -BeNullOrEmpty
    }

    It 'expands wildcards and says when a pattern matches nothing' {
        Deploy-Everywhere 'bad-latency'
        $plan = Invoke-KfmChildPwsh -Script "`$env:KFM_ROLLBACK_CONFIG = '$config'; Import-Module '$KfmManifest'; Invoke-KfmRollback -Environment 'e*' -Method Cluster -WhatIf" | Out-String -Width 500
        $plan | Should -Match 'eu: json-patch deployment kfm/kfm-api-eu'
        $plan | Should -Not -Match 'lab: json-patch'
        { Invoke-KfmRollback -Environment 'nowhere-*' -Method Cluster -Confirm:$false } | Should -Throw -ErrorId 'EnvironmentNotFound,KfmRollback.Cmdlets.Rollback.InvokeKfmRollbackCommand'
    }

    It 'keeps single-environment cmdlets to one environment' {
        $err = { Get-KfmApiRef -Environment lab, eu } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'EnvironmentNotSingle,*'
        $err.Exception.Message | Should -Match 'Get-KfmApiRef acts on one environment'
    }

    It 'runs -Fleet wave by wave and stops at the first wave that fails verification' {
        $labBefore = Get-Generation kfm-api
        $euBefore = Get-Generation kfm-api-eu
        $results = $null
        New-KfmIncident -Id INC-FLEET-W -Commander alice -Reason 'bad deploy again' -Environment lab -Confirm:$false | Out-Null
        $err = try { Invoke-KfmRollback -Fleet verified -IncidentId INC-FLEET-W -Method Cluster -Wait -Timeout 60 -Confirm:$false -OutVariable results -ErrorAction SilentlyContinue; $null } catch { $_ }
        $err.FullyQualifiedErrorId | Should -BeLike 'FleetVerificationFailed,*' -Because ($err.Exception.ToString())
        $err.Exception.Message | Should -Match 'Wave 1 failed verification in eu: .*Waves 2-2 were not started'
        @($results).Environment | Should -Be @('eu')
        Get-Generation kfm-api-eu | Should -BeGreaterThan $euBefore
        Get-Generation kfm-api | Should -Be $labBefore -Because 'wave 2 never starts after a failed verification'
    }

    It 'runs every wave in order when verification is off' {
        Deploy-Everywhere 'bad-leak'
        New-KfmIncident -Id INC-FLEET-U -Commander alice -Reason 'bad deploy once more' -Environment lab -Confirm:$false | Out-Null
        $results = @(Invoke-KfmRollback -Fleet unverified -IncidentId INC-FLEET-U -Method Cluster -Wait -Timeout 60 -Confirm:$false)
        $results.Environment | Should -Be @('eu', 'lab')
        $results.Outcome | Should -Be @('Succeeded', 'Succeeded')
        # The same fleet again: every run is finished, nothing is sent twice.
        $again = @(Invoke-KfmRollback -Fleet unverified -IncidentId INC-FLEET-U -Method Cluster -Wait -Timeout 60 -Confirm:$false -WarningAction SilentlyContinue)
        $again.Outcome | Should -Be @('NoOp', 'NoOp')
        $again.Detail | ForEach-Object { $_ | Should -Match '^already rolled back from sha256:' }
        { Invoke-KfmRollback -Fleet nope -Method Cluster -Confirm:$false } | Should -Throw -ErrorId 'FleetNotFound,KfmRollback.Cmdlets.Rollback.InvokeKfmRollbackCommand'
        { Invoke-KfmRollback -Fleet unverified -Environment lab -Method Cluster -Confirm:$false } | Should -Throw -ErrorId 'FleetWithEnvironment,KfmRollback.Cmdlets.Rollback.InvokeKfmRollbackCommand'
    }
}
