# The runbook's decision tree (Get-KfmRollbackPlan) on the lab: each "what changed?" branch, the
# data-only stop and the default-deny refusals, each asserted by its error id.

BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    Import-Module $KfmManifest -Force

    # A lab whose configuration knows where the policy bundle ref lives and where OPA reports, frozen
    # (which snapshots the running configuration) at revision 4, as an operator starts an incident.
    function Start-PlanLab {
        param([switch] $TwoEnvironments)
        $lab = Start-KfmTestLab -TimeScale 20
        $config = Join-Path $lab.Directory 'plan.yaml'
        $yaml = (Get-Content -Raw $lab.Config) -replace 'configmaps: \[kfm-api-config\]',
            "configmaps: [kfm-api-config]`n    policy_surface:`n      configmap: kfm-api-config`n      key: policy_bundle`n      opa_status_url: $($lab.Facts.kfmApi.url)/v1/status"
        if ($TwoEnvironments) { $yaml = $yaml -replace '(?ms)^  lab:\r?\n(.*)\z', "  lab:`n`$1  lab-copy:`n`$1" }
        $yaml | Set-Content $config
        $env:KFM_ROLLBACK_CONFIG = $config
        New-KfmIncident -Id INC-1 -Commander alice -Reason 'errors after deploy' -Environment lab -Confirm:$false | Out-Null
        Start-KfmFreeze -IncidentId INC-1 -Environment lab -Confirm:$false | Out-Null
        $lab
    }
    # "Now" on the lab's clock (it runs ahead of the wall clock and starts a day behind it).
    function Get-LabNow($Lab) { [DateTime]::Parse((Invoke-KfmLabAdmin $Lab state).simTime, [Globalization.CultureInfo]::InvariantCulture, 'AdjustToUniversal') }
    function Deploy($Lab, [string] $Build) {
        Deploy-KfmLabBuild $Lab $Build -TimeoutSeconds 60
    }
    function Restart($Lab) {
        Invoke-KfmLabKubectl $Lab rollout restart deployment/kfm-api -n kfm | Out-Null
        Invoke-KfmLabKubectl $Lab rollout status deployment/kfm-api -n kfm --timeout=60s | Out-Null
    }
    function Set-Config($Lab, [string] $Key, [string] $Value) {
        Invoke-KfmLabKubectl $Lab patch configmap kfm-api-config -n kfm --type merge -p (@{ data = @{ $Key = $Value } } | ConvertTo-Json -Compress) | Out-Null
    }
}

AfterAll { Remove-Item env:KFM_ROLLBACK_CONFIG -ErrorAction SilentlyContinue }

Describe 'Image only' {
    BeforeAll { $lab = Start-PlanLab; Deploy $lab 'bad-5xx' }
    AfterAll { Stop-KfmTestLab $lab }

    It 'plans an image rollback to the previous revision, from the incident in the journal' {
        # The incident began after the bad deploy, on the lab's clock.
        New-KfmIncident -Id INC-2 -Commander alice -Reason '5xx after deploy' -Environment lab -StartedAt (Get-LabNow $lab) -Confirm:$false | Out-Null
        $plan = Get-KfmRollbackPlan -IncidentId INC-2
        $plan.Surface | Should -Be @('Image')
        $plan.CurrentRef | Should -Be $lab.Facts.catalogue.'bad-5xx'.digest
        $plan.RollbackTargetRef | Should -Be $lab.Facts.catalogue.'good-1.5.1'.digest
        $plan.ToRevision | Should -Be 4
        $plan.IncidentId | Should -Be 'INC-2'
        $plan.Method | Should -Be 'Cluster' -Because 'the lab configuration names a GitOps path that is no repository'
        $plan.MethodReason | Should -Match 'GitOps not usable'
        $plan.MostRecentDeploySuspect | Should -BeTrue
        ($plan.Evidence | Where-Object Surface -eq 'Policy').Changed | Should -Not -Contain $true
        $table = $plan | Out-String -Width 250
        $table | Should -Match 'Method'
        $table | Should -Match ([regex]::Escape($plan.RollbackTargetRef.Substring(0, 19)))
    }

    It 'reports, not refuses, a deploy that came after the incident began' {
        $since = (Invoke-KfmLabKubectl $lab get rs -n kfm -o json | ConvertFrom-Json -Depth 30).items |
            Sort-Object { [int] $_.metadata.annotations.'deployment.kubernetes.io/revision' } | Select-Object -Last 1 |
            ForEach-Object { ([DateTime] $_.metadata.creationTimestamp).ToUniversalTime().AddMinutes(-1) }
        $plan = Get-KfmRollbackPlan -Since $since -WarningVariable warned 3>$null
        $plan.DeployAfterIncidentStart | Should -BeTrue
        $plan.Summary | Should -Match 'not the cause'
        $warned | Should -Match 'not the cause'
    }

    It 'refuses without an incident start' {
        $err = { Get-KfmRollbackPlan -IncidentId INC-NOPE } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'RollbackPlanIncidentStartUnknown,*'
        $err.Exception.Message | Should -Match '-Since'
    }
}

Describe 'Config only' {
    BeforeAll { $lab = Start-PlanLab }
    AfterAll { Stop-KfmTestLab $lab }

    It 'counts a reused ConfigMap name with new content, by hash only' {
        Set-Config $lab 'log_level' 'trace-canary-7d1f'
        Restart $lab
        $plan = Get-KfmRollbackPlan -Since (Get-LabNow $lab)
        $plan.Surface | Should -Be @('Config')
        $plan.ToRef | Should -BeNullOrEmpty
        $plan.ToRevision | Should -Be 4
        $item = $plan.Evidence | Where-Object Item -eq 'configmap kfm/kfm-api-config'
        $item.Changed | Should -BeTrue
        $item.Current | Should -Match '^sha256:[0-9a-f]{64}$'
        $plan | ConvertTo-Json -Depth 5 | Should -Not -Match 'trace-canary-7d1f'
    }

    It 'counts a hash-suffixed new ConfigMap the new template references' {
        Start-KfmFreeze -IncidentId INC-1 -Confirm:$false | Out-Null   # snapshots the revision now running
        # (kubectl create configmap sends protobuf, which the lab refuses; apply sends JSON.)
        "apiVersion: v1`nkind: ConfigMap`nmetadata: { name: kfm-api-config-7f8d9, namespace: kfm }`ndata: { log_level: debug }" | Set-Content (Join-Path $lab.Directory 'cm.yaml')
        Invoke-KfmLabKubectl $lab apply -f (Join-Path $lab.Directory 'cm.yaml') | Out-Null
        Invoke-KfmLabKubectl $lab set env deployment/kfm-api -n kfm --from=configmap/kfm-api-config-7f8d9 | Out-Null
        Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api -n kfm --timeout=60s | Out-Null
        $plan = Get-KfmRollbackPlan -Since (Get-LabNow $lab)
        $plan.Surface | Should -Be @('Config')
        ($plan.Evidence | Where-Object Item -eq 'configmap kfm/kfm-api-config-7f8d9').Changed | Should -BeTrue
        ($plan.Evidence | Where-Object Item -eq 'configmap kfm/kfm-api-config').Changed | Should -BeFalse
    }
}

Describe 'Policy only' {
    BeforeAll { $lab = Start-PlanLab }
    AfterAll { Stop-KfmTestLab $lab }

    It 'sees the bundle ref and OPA''s active revision change' {
        Set-Config $lab 'policy_bundle' ('kfm-policy@sha256-' + ('b' * 64))
        Restart $lab
        $plan = Get-KfmRollbackPlan -Since (Get-LabNow $lab)
        $plan.Surface | Should -Be @('Policy')
        $opa = $plan.Evidence | Where-Object Item -like 'OPA bundle kfm-policy*'
        $opa.Current | Should -Be ('sha256:' + ('b' * 64))
        $opa.Changed | Should -BeTrue
    }
}

Describe 'Image and config' {
    BeforeAll { $lab = Start-PlanLab }
    AfterAll { Stop-KfmTestLab $lab }

    It 'plans both surfaces' {
        Set-Config $lab 'log_level' 'warn'
        Deploy $lab 'bad-latency'
        $plan = Get-KfmRollbackPlan -Since (Get-LabNow $lab)
        $plan.Surface | Should -Be @('Image', 'Config')
        $plan.RollbackTargetRef | Should -Be $lab.Facts.catalogue.'good-1.5.1'.digest
    }

    It 'pipes into Invoke-KfmRollback, which rolls back exactly the planned surfaces, and its evidence into the receipt' {
        $plan = Get-KfmRollbackPlan -IncidentId INC-1 -Since (Get-LabNow $lab).AddMinutes(-5)
        $result = $plan | Invoke-KfmRollback -Wait -Timeout 60 -Confirm:$false
        $result.Outcome | Should -Be 'Succeeded'
        $result.Method | Should -Be $plan.Method
        $result.ChangedSurfaces | Should -Be @('api', 'config')
        $result.ToRevision | Should -Be $plan.ToRevision
        $result.RollbackTargetRef | Should -Be $plan.RollbackTargetRef
        Invoke-KfmLabKubectl $lab get configmap kfm-api-config -n kfm -o 'jsonpath={.data.log_level}' | Should -Be 'info' -Because 'the config surface was planned, so it was restored'
        $receipt = $result | New-KfmRollbackReceipt -ApprovedBy bob -Health pass -PolicyInvariants pass -ContractSmoke pass
        $receipt.KfmIntegrity.Decision.Count | Should -Be $plan.Evidence.Count
        ($receipt.KfmIntegrity.Decision | Where-Object changed).surface | Sort-Object -Unique | Should -Be @('Config', 'Image')
    }
}

Describe 'Data only' {
    BeforeAll {
        $lab = Start-PlanLab -TwoEnvironments
        # The API ran for hours; then a new dataset version is published, with no deploy.
        Invoke-KfmLabAdmin $lab 'advance?seconds=10800' -Method POST | Out-Null
        $published = Invoke-KfmLabAdmin $lab datasets -Method POST -Body @{ dataset_id = 'kansas_counties'; slice = '2026-03' }
        $since = Get-LabNow $lab
    }
    AfterAll { Stop-KfmTestLab $lab }

    It 'really changed the data and not the API' {
        $served = Invoke-RestMethod "$($lab.Facts.kfmApi.url)/api/v1/datasets/kansas_counties" -Headers @{ Authorization = "Bearer $($lab.Facts.kfmApi.tokens.public)" }
        $served.dataset_version_id | Should -Be $published.dataset_version_id
        (Get-KfmApiRef -Environment lab).Revision | Should -Be 4
    }

    It 'stops and names the dataset and catalog runbooks' {
        $err = { Get-KfmRollbackPlan -Environment lab -Since $since -DeployWindow 1h } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'RollbackPlanApiUnchanged,*'
        $err.Exception.Message | Should -Match 'did not change'
        $err.Exception.Message | Should -Match 'data/catalog'
        $err.Exception.Message | Should -Match ([regex]::Escape('docs/runbooks/data/rb-dataset-rollback.md'))
        $err.Exception.Message | Should -Match ([regex]::Escape('docs/runbooks/catalog/rb-catalog-recover.md'))
    }

    It 'reports each environment''s stop as its own error when several are asked' {
        $plans = Get-KfmEnvironment | Get-KfmRollbackPlan -Since $since -DeployWindow 1h -ErrorVariable errs -ErrorAction SilentlyContinue
        $plans | Should -BeNullOrEmpty
        $errs.Count | Should -Be 2
        $errs | ForEach-Object { $_.FullyQualifiedErrorId | Should -BeLike 'RollbackPlanApiUnchanged,*' }
        $errs.TargetObject | Should -Be @('lab', 'lab-copy')

        $plans = Get-KfmRollbackPlan -Environment 'lab*', 'nope' -Since $since -DeployWindow 1h -ErrorVariable errs2 -ErrorAction SilentlyContinue
        $errs2.Count | Should -Be 3
    }
}

Describe 'No last-known-good' {
    BeforeAll { $lab = Start-PlanLab }
    AfterAll { Stop-KfmTestLab $lab }

    It 'refuses (default deny) when history has no earlier revision and no receipt is verified' {
        Invoke-KfmLabKubectl $lab patch deployment kfm-api -n kfm -p '{"spec":{"revisionHistoryLimit":0}}' | Out-Null
        $deadline = [DateTime]::UtcNow.AddSeconds(30)
        while (@((Invoke-KfmLabKubectl $lab get rs -n kfm -o json | ConvertFrom-Json -Depth 30).items).Count -gt 1 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
        $err = { Get-KfmRollbackPlan -Since (Get-LabNow $lab) } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'RollbackPlanNoLastKnownGood,*'
        $err.Exception.Message | Should -Match '-ToRef'
    }
}
