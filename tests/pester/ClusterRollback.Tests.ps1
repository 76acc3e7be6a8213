# Emergency cluster rollback against the lab cluster, as an operator runs it.

BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    Import-Module $KfmManifest -Force

    function Start-Lab {
        param([double] $PodStartSeconds = 2)
        $lab = Start-KfmTestLab -PodStartSeconds $PodStartSeconds
        $env:KFM_ROLLBACK_CONFIG = $lab.Config
        $lab
    }
    function Get-Revisions($Lab) {
        Invoke-KfmLabKubectl $Lab get rs -n kfm -o json | ConvertFrom-Json -Depth 30 | ForEach-Object items |
            ForEach-Object { [int] $_.metadata.annotations.'deployment.kubernetes.io/revision' } | Sort-Object
    }
}

AfterAll { Remove-Item env:KFM_ROLLBACK_CONFIG -ErrorAction SilentlyContinue }

Describe 'Refs and history' {
    BeforeAll {
        $lab = Start-Lab
        # The seeded pods start on the lab's clock; compare once they run, not while they are being created.
        Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api -n kfm --timeout=60s | Out-Null
    }
    AfterAll { Stop-KfmTestLab $lab }

    It 'reports the digest the pods run and the previous revision as last-known-good' {
        $ref = Get-KfmApiRef
        $podDigests = Invoke-KfmLabKubectl $lab get pods -n kfm -o 'jsonpath={.items[*].status.containerStatuses[*].imageID}'
        $expected = ($podDigests -split ' ' | ForEach-Object { $_ -replace '^.*@', '' } | Sort-Object -Unique)
        $ref.RunningDigests | Should -Be $expected
        $ref.CurrentRef | Should -Be $expected
        $ref.RolloutInFlight | Should -BeFalse
        $previous = Get-KfmRolloutHistory | Where-Object { $_.Revision -eq $ref.Revision - 1 }
        $ref.LastKnownGoodRef | Should -Be $previous.Digest
        $ref.LastKnownGoodSource | Should -Be 'previous-revision'
    }

    It 'lists the revisions and change-causes kubectl rollout history lists' {
        $kubectl = Invoke-KfmLabKubectl $lab rollout history deployment/kfm-api -n kfm | Select-Object -Skip 2 | Where-Object { $_ } |
            ForEach-Object { $revision, $cause = $_ -split '\s+', 2; '{0}={1}' -f $revision, $cause.Trim() }
        $module = Get-KfmRolloutHistory | ForEach-Object { '{0}={1}' -f $_.Revision, ($_.ChangeCause ?? '<none>') }
        $module | Should -Be $kubectl
        (Get-KfmRolloutHistory | Where-Object IsCurrent).Revision | Should -Be (Get-KfmApiRef).Revision
    }

    It 'uses a bearer token from cluster.token_env instead of the kubeconfig user' {
        $tokenConfig = Join-Path $lab.Directory 'token.yaml'
        (Get-Content -Raw $lab.Config) -replace '      context: lab\r?\n', "      context: lab`n      token_env: KFM_TEST_CLUSTER_TOKEN`n" | Set-Content $tokenConfig
        $env:KFM_TEST_CLUSTER_TOKEN = $lab.Facts.viewerToken
        try { Test-KfmAccess -ConfigPath $tokenConfig -Quiet | Should -BeFalse -Because 'the viewer token may not patch' }
        finally { Remove-Item env:KFM_TEST_CLUSTER_TOKEN }
        $env:KFM_TEST_CLUSTER_TOKEN = $lab.Facts.adminToken
        try { Test-KfmAccess -ConfigPath $tokenConfig -Quiet | Should -BeTrue } finally { Remove-Item env:KFM_TEST_CLUSTER_TOKEN }
        $err = { Test-KfmAccess -ConfigPath $tokenConfig } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ClusterTokenMissing,*'
    }

    It 'answers every permission a rollback needs' {
        $checks = Test-KfmAccess
        $checks.Count | Should -BeGreaterThan 5
        $checks.Allowed | Should -Not -Contain $false
        Test-KfmAccess -Quiet | Should -BeTrue
    }
}

Describe 'Freeze, then roll back' {
    BeforeAll {
        $lab = Start-Lab
        $journal = Join-Path $lab.Directory 'state/incidents/incidents.ndjson'
        $incident = New-KfmIncident -Id INC-77 -Commander alice -Reason '5xx spike after deploy' -Environment lab -Confirm:$false
    }
    AfterAll { Stop-KfmTestLab $lab }

    It 'refuses while Argo CD can self-heal, and changes nothing' {
        $before = (Get-KfmLabDeployment $lab).metadata.generation
        $err = { $incident | Invoke-KfmRollback -Method Cluster -Confirm:$false } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'RollbackGitOpsNotFrozen,*'
        $err.Exception.Message | Should -Match 'Start-KfmFreeze'
        $err.Exception.Message | Should -Match '-Force'
        (Get-KfmLabDeployment $lab).metadata.generation | Should -Be $before
    }

    It 'freezes Argo CD, recording incident, who and the prior sync policy on the Application' {
        $summary = $incident | Start-KfmFreeze -Confirm:$false
        $summary.Complete | Should -BeTrue
        $app = (Invoke-KfmLabKubectl $lab get application kfm-api -n argocd -o json) -join "`n" | ConvertFrom-Json -Depth 30
        $app.spec.syncPolicy.automated | Should -BeNullOrEmpty
        $record = $app.metadata.annotations.'kfm.dev/freeze' | ConvertFrom-Json
        $record.incident | Should -Be 'INC-77'
        $record.prior.selfHeal | Should -BeTrue
        (Get-KfmFreeze).Frozen | Should -BeTrue
        ($incident | Start-KfmFreeze -Confirm:$false).Mechanisms.Changed | Should -BeFalse -Because 'freezing twice is a no-op'
    }

    It '-WhatIf shows the exact patch and changes nothing' {
        $before = Invoke-KfmLabKubectl $lab get 'deploy,rs' -n kfm -o 'jsonpath={.items[*].metadata.generation}'
        # What-if text goes to the host, so read it from a child pwsh's console output.
        $output = Invoke-KfmChildPwsh -Script "Import-Module '$KfmManifest'; Invoke-KfmRollback -ConfigPath '$($lab.Config)' -Method Cluster -WhatIf" | Out-String
        $output | Should -Match 'What if:'
        $output | Should -Match '"op": "test"'
        $output | Should -Match '/spec/template'
        Invoke-KfmLabKubectl $lab get 'deploy,rs' -n kfm -o 'jsonpath={.items[*].metadata.generation}' | Should -Be $before
    }

    It 'rolls back, waits, and self-heal does not revert it' {
        $ref = Get-KfmApiRef
        $result = $ref | Invoke-KfmRollback -Method Cluster -Wait -Timeout 60 -IncidentId INC-77 -Confirm:$false
        $result.Outcome | Should -Be 'Succeeded'
        $result.RollbackTargetRef | Should -Be $ref.LastKnownGoodRef
        $result.CurrentRef | Should -Be $ref.CurrentRef
        Start-Sleep -Seconds 2   # several self-heal periods at the lab's time scale
        (Get-KfmApiRef).CurrentRef | Should -Be $ref.LastKnownGoodRef
        $timeline = (Get-KfmIncident INC-77).Timeline.Event
        $timeline | Should -Contain ($timeline | Where-Object { $_ -like 'Cluster rollback of kfm/kfm-api*' })
        $timeline | Where-Object { $_ -like 'Rollout of kfm/kfm-api complete*' } | Should -Not -BeNullOrEmpty
    }

    It 'says so, and changes nothing, when already at the target' {
        $current = (Get-KfmApiRef).Revision
        $result = Invoke-KfmRollback -Method Cluster -ToRevision $current -IncidentId INC-77 -Confirm:$false -WarningVariable warnings -WarningAction SilentlyContinue
        $result.Outcome | Should -Be 'NoOp'
        $warnings | Should -Match 'skipped rollback'
        (Get-KfmApiRef).Revision | Should -Be $current
    }

    It 'restores exactly the prior sync policy on Stop-KfmFreeze' {
        Stop-KfmFreeze -IncidentId INC-77 -Force | Out-Null
        $app = (Invoke-KfmLabKubectl $lab get application kfm-api -n argocd -o json) -join "`n" | ConvertFrom-Json -Depth 30
        $app.spec.syncPolicy.automated.selfHeal | Should -BeTrue
        $app.spec.syncPolicy.automated.prune | Should -BeTrue
        $app.metadata.annotations.'kfm.dev/freeze' | Should -BeNullOrEmpty
    }
}

Describe '-Fast: the rollout surges every pod at once, within the quota' {
    BeforeAll {
        $lab = Start-Lab
        Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api -n kfm --timeout=60s | Out-Null
        # Frozen (which snapshots the running configuration) before the bad deploy, as the decision tree needs.
        New-KfmIncident -Id INC-F0 -Commander alice -Reason 'change freeze' -Environment lab -Confirm:$false | Start-KfmFreeze -Confirm:$false | Out-Null
        function Deploy([string] $Build) {
            Deploy-KfmLabBuild $lab $Build -TimeoutSeconds 60
        }
        function Get-LabNow { [DateTime]::Parse((Invoke-KfmLabAdmin $lab state).simTime, [Globalization.CultureInfo]::InvariantCulture, 'AdjustToUniversal') }
        Deploy 'bad-5xx'
        $incident = New-KfmIncident -Id INC-F -Commander alice -Reason '5xx spike after deploy' -Environment lab -StartedAt (Get-LabNow) -Confirm:$false
        function Get-Strategy { (Get-KfmLabDeployment $lab).spec.strategy.rollingUpdate }
    }
    AfterAll { Stop-KfmTestLab $lab }

    It 'refuses -Fast without -Wait or with another method, naming the parameter, and changes nothing' {
        $generation = (Get-KfmLabDeployment $lab).metadata.generation
        { Invoke-KfmRollback -IncidentId INC-F -Method Cluster -Fast -Confirm:$false } | Should -Throw -ErrorId 'RollbackFastNeedsWait,*'
        $err = { Invoke-KfmRollback -IncidentId INC-F -Method GitOps -ToRef (Get-KfmApiRef).LastKnownGoodRef -Fast -Wait -Confirm:$false } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'RollbackFastNeedsCluster,*'
        $err.Exception.Message | Should -Match 'Drop -Fast'
        (Get-KfmLabDeployment $lab).metadata.generation | Should -Be $generation
        $fastNeeds = Test-KfmAccess -Fast | Where-Object Why -Match -- '-Fast'
        $fastNeeds.Verb | Should -Be @('list', 'create')
        $fastNeeds.Allowed | Should -Not -Contain $false
        @(Test-KfmAccess | Where-Object Why -Match -- '-Fast').Count | Should -Be 0
    }

    It 'Get-KfmRollbackPlan -Fast and -WhatIf show the raise and the restore, and change nothing' {
        $before = Invoke-KfmLabKubectl $lab get 'deploy,rs' -n kfm -o 'jsonpath={.items[*].metadata.generation}'
        $plan = Get-KfmRollbackPlan -IncidentId INC-F -Fast
        $check = $plan.Preflight | Where-Object Check -EQ 'fast-rollout'
        $check.Verdict | Should -Be 'Passed'
        $check.Saw | Should -Match 'admitted \(dryRun=All\)'
        ($plan.Preflight | Where-Object Check -EQ 'plan').Saw | Should -Match '-Fast: raise maxSurge 25% → 100% for the rollout, then restore'
        $output = Invoke-KfmChildPwsh -Script "Import-Module '$KfmManifest'; Invoke-KfmRollback -ConfigPath '$($lab.Config)' -IncidentId INC-F -Method Cluster -Wait -Fast -WhatIf" | Out-String
        $output | Should -Match '/spec/strategy/rollingUpdate/maxSurge'
        $output | Should -Match '"100%"'
        $output | Should -Match 'json-patch \(strategy restore, once the rollout converged\) deployment kfm/kfm-api \[rollout\]'
        $output | Should -Match 'preflight fast-rollout Passed'
        Invoke-KfmLabKubectl $lab get 'deploy,rs' -n kfm -o 'jsonpath={.items[*].metadata.generation}' | Should -Be $before
        (Get-Strategy).maxSurge | Should -Be '25%'
    }

    It 'raises maxSurge for the rollback only, restores the own strategy once converged, and journals both' {
        $ref = Get-KfmApiRef
        $result = $ref | Invoke-KfmRollback -Method Cluster -Wait -Fast -Timeout 60 -IncidentId INC-F -Confirm:$false
        $result.Outcome | Should -Be 'Succeeded' -Because $result.Detail
        $result.Changes.Surface | Should -Be @('image', 'rollout')
        (Get-KfmApiRef).CurrentRef | Should -Be $ref.LastKnownGoodRef
        (Get-Strategy).maxSurge | Should -Be '25%'
        (Get-KfmLabDeployment $lab).metadata.annotations.'kfm.dev/fast-rollout' | Should -BeNullOrEmpty
        $events = (Invoke-KfmLabKubectl $lab get events -n kfm -o json) -join "`n" | ConvertFrom-Json -Depth 30
        $events.items.message | Should -Contain "Scaled up replica set $($result.RolloutTarget) from 0 to 3" -Because 'the whole target set starts at once'
        $timeline = (Get-KfmIncident INC-F).Timeline.Event
        $timeline | Where-Object { $_ -like '-Fast: raised maxSurge 25% → 100% on deployment kfm/kfm-api for this rollback, restored once it converges (a pod of the target was admitted (dryRun=All)*); by *: 5xx spike after deploy' } | Should -Not -BeNullOrEmpty
        $timeline | Where-Object { $_ -like 'Restored the rollout strategy of kfm/kfm-api after the -Fast rollback converged (maxSurge 100% → 25%; run INC-F/lab/cluster#1, raised by * at *) by *' } | Should -Not -BeNullOrEmpty
    }

    It 'falls back to the own strategy with a warning when the quota has no room for the surge, and never exceeds it' {
        Deploy 'bad-shift'
        @"
apiVersion: v1
kind: ResourceQuota
metadata: { name: kfm-pods, namespace: kfm }
spec: { hard: { pods: '4' } }
"@ | Set-Content (Join-Path $lab.Directory 'quota.yaml')
        Invoke-KfmLabKubectl $lab apply -f (Join-Path $lab.Directory 'quota.yaml') | Out-Null
        $deadline = [DateTime]::UtcNow.AddSeconds(30)
        while (((Invoke-KfmLabKubectl $lab get resourcequota kfm-pods -n kfm -o json) -join "`n" | ConvertFrom-Json).status.used.pods -ne '3') {
            if ([DateTime]::UtcNow -gt $deadline) { throw 'the quota never reported usage' }
            Start-Sleep -Milliseconds 100
        }
        $skip = @(Get-Content (Join-Path $lab.Directory 'audit.log')).Count
        New-KfmIncident -Id INC-FQ -Commander alice -Reason 'second bad deploy' -Environment lab -Confirm:$false | Out-Null
        $result = Invoke-KfmRollback -IncidentId INC-FQ -Method Cluster -Wait -Fast -Timeout 90 -Confirm:$false -WarningVariable warnings -WarningAction SilentlyContinue
        $result.Outcome | Should -Be 'Succeeded' -Because $result.Detail
        $warnings | Where-Object { "$_" -match '-Fast falls back to the Deployment''s own rollout strategy: quota kfm-pods has room for 1 more pods, and a surge of all 3 pods needs 3' } | Should -Not -BeNullOrEmpty -Because ($warnings -join '; ')
        @($result.Changes).Surface | Should -Not -Contain 'rollout'
        (Get-Strategy).maxSurge | Should -Be '25%'
        $patches = Get-KfmLabStoredWrites $lab -Skip $skip | Where-Object { $_.objectRef.resource -eq 'deployments' -and $_.verb -eq 'patch' }
        $patches.Count | Should -BeGreaterThan 0
        $patches | ForEach-Object { $_.requestObject | ConvertTo-Json -Depth 50 -Compress } | Should -Not -Match 'strategy|fast-rollout' -Because 'the rollback patch and the quarantine mark only'
        $used = ((Invoke-KfmLabKubectl $lab get resourcequota kfm-pods -n kfm -o json) -join "`n" | ConvertFrom-Json).status.used.pods
        [int] $used | Should -BeLessOrEqual 4
    }
}

Describe 'Freeze edge cases' {
    BeforeAll { $lab = Start-Lab }
    AfterAll { Stop-KfmTestLab $lab }

    It 'reports an ApplicationSet-owned Application as not freezable, and leaves it alone' {
        "apiVersion: argoproj.io/v1alpha1`nkind: ApplicationSet`nmetadata: { name: kfm-apps, namespace: argocd }`nspec: { generators: [], template: { metadata: { name: kfm-api-generated }, spec: {} } }" |
            Set-Content (Join-Path $lab.Directory 'appset.yaml')
        Invoke-KfmLabKubectl $lab apply -f (Join-Path $lab.Directory 'appset.yaml') | Out-Null
        $setUid = Invoke-KfmLabKubectl $lab get applicationsets kfm-apps -n argocd -o 'jsonpath={.metadata.uid}'
        @"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: kfm-api-generated
  namespace: argocd
  ownerReferences: [ { apiVersion: argoproj.io/v1alpha1, kind: ApplicationSet, name: kfm-apps, uid: $setUid, controller: true } ]
spec:
  project: default
  destination: { namespace: kfm, server: https://kubernetes.default.svc }
  source: { repoURL: https://git.kfm.local/kfm/infra.git, path: apps/kfm-api, targetRevision: main }
  syncPolicy: { automated: { selfHeal: true, prune: true } }
"@ | Set-Content (Join-Path $lab.Directory 'appset-app.yaml')
        Invoke-KfmLabKubectl $lab apply -f (Join-Path $lab.Directory 'appset-app.yaml') | Out-Null
        $config = Join-Path $lab.Directory 'appset-config.yaml'
        (Get-Content -Raw $lab.Config) -replace 'name: kfm-api\r?\n(\s+)namespace: argocd', "name: kfm-api-generated`n`$1namespace: argocd" | Set-Content $config
        $summary = Start-KfmFreeze -ConfigPath $config -Confirm:$false -WarningVariable warnings -WarningAction SilentlyContinue
        $summary.Complete | Should -BeFalse
        $summary.Mechanisms[0].Freezable | Should -BeFalse
        ($warnings -join ' ') | Should -Match 'ApplicationSet'
        $app = (Invoke-KfmLabKubectl $lab get application kfm-api-generated -n argocd -o json) -join "`n" | ConvertFrom-Json -Depth 30
        $app.spec.syncPolicy.automated.selfHeal | Should -BeTrue
    }

    It 'takes the last-known-good from the receipt store when history has none' {
        $ref = Get-KfmApiRef
        # A store that records a verified rollback to an older build.
        $verified = $lab.Facts.catalogue.'good-1.4.0'.digest
        New-KfmRollbackReceipt -IncidentId INC-OLD -RequestedBy a -ApprovedBy b -Environment lab -Reason 'earlier incident' -StartedAt (Get-Date) `
            -CurrentRef $lab.Facts.catalogue.'bad-5xx'.digest -RollbackTargetRef $verified -ChangedSurface api -Health pass -PolicyInvariants pass -ContractSmoke pass |
            Save-KfmRollbackReceipt -Confirm:$false | Out-Null
        # Remove every older ReplicaSet, so the history has no previous revision.
        $rs = (Invoke-KfmLabKubectl $lab get rs -n kfm -o json) -join "`n" | ConvertFrom-Json -Depth 30
        $rs.items | Where-Object { $_.metadata.annotations.'deployment.kubernetes.io/revision' -ne "$($ref.Revision)" } |
            ForEach-Object { Invoke-KfmLabKubectl $lab delete rs $_.metadata.name -n kfm | Out-Null }
        $after = Get-KfmApiRef
        $after.LastKnownGoodRef | Should -Be $verified
        $after.LastKnownGoodSource | Should -Be 'receipt-store'
    }
}

Describe 'Safety refusals and the lock' {
    BeforeAll {
        $lab = Start-Lab -PodStartSeconds 20
        Start-KfmFreeze -IncidentId INC-8 -Confirm:$false | Out-Null
    }
    AfterAll { Stop-KfmTestLab $lab }

    It 'refuses a paused deployment, and -Force needs a reason' {
        Invoke-KfmLabKubectl $lab rollout pause deployment/kfm-api -n kfm | Out-Null
        try {
            { Invoke-KfmRollback -Method Cluster -Confirm:$false } | Should -Throw -ErrorId 'RollbackDeploymentPaused,KfmRollback.Cmdlets.Rollback.InvokeKfmRollbackCommand'
            { Invoke-KfmRollback -Method Cluster -Force -Confirm:$false } | Should -Throw -ErrorId 'ForceReasonMissing,KfmRollback.Cmdlets.Rollback.InvokeKfmRollbackCommand'
        }
        finally { Invoke-KfmLabKubectl $lab rollout resume deployment/kfm-api -n kfm | Out-Null }
    }

    It 'names the holder and since when while another operator holds the lock' {
        $now = [DateTime]::UtcNow.ToString('yyyy-MM-ddTHH:mm:ss.ffffffZ')
        @"
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: { name: kfm-rollback-kfm-api, namespace: kfm }
spec: { holderIdentity: bob@laptop (INC-9), leaseDurationSeconds: 600, acquireTime: '$now', renewTime: '$now' }
"@ | Set-Content (Join-Path $lab.Directory 'lease.yaml')
        Invoke-KfmLabKubectl $lab apply -f (Join-Path $lab.Directory 'lease.yaml') | Out-Null
        try {
            $before = (Get-KfmLabDeployment $lab).metadata.generation
            # A single environment's failed run is an error record plus its Failed result: -ErrorAction Stop makes it terminate.
            $err = { Invoke-KfmRollback -Method Cluster -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            $err.FullyQualifiedErrorId | Should -BeLike 'RollbackLocked,*'
            $err.Exception.Message | Should -Match 'bob@laptop \(INC-9\)'
            $err.Exception.Message | Should -Match '-BreakLock -Reason'
            $err.Exception.Message | Should -Match 'since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC'
            $err.CategoryInfo.Category | Should -Be 'ResourceBusy'
            (Get-KfmLabDeployment $lab).metadata.generation | Should -Be $before
        }
        finally { Invoke-KfmLabKubectl $lab delete lease kfm-rollback-kfm-api -n kfm | Out-Null }
    }

    It 'lets exactly one of two concurrent rollbacks proceed' {
        $config = $lab.Config
        $jobs = 1..2 | ForEach-Object {
            Start-ThreadJob -ArgumentList $KfmManifest, $config -ScriptBlock {
                param($manifest, $config)
                Import-Module $manifest
                try {
                    $r = Invoke-KfmRollback -ConfigPath $config -Method Cluster -Wait -Timeout 120 -Confirm:$false -ErrorAction Stop
                    "ok:$($r.Outcome)"
                }
                catch { "error:$($_.FullyQualifiedErrorId.Split(',')[0])" }
            }
        }
        $results = $jobs | Wait-Job -Timeout 150 | Receive-Job
        $jobs | Remove-Job -Force
        ($results | Where-Object { $_ -eq 'ok:Succeeded' }).Count | Should -Be 1 -Because ($results -join '; ')
        # The other is locked out, finds the Deployment changed under it, or (planned after the first
        # finished) finds it already on the last-known-good the first one recorded: never a second undo.
        ($results | Where-Object { $_ -in 'error:RollbackLocked', 'error:RollbackConcurrentChange', 'error:RollbackPlanChanged', 'ok:NoOp' }).Count | Should -Be 1 -Because ($results -join '; ')
    }
}

Describe 'Faults' {
    BeforeAll {
        $lab = Start-Lab
        Start-KfmFreeze -IncidentId INC-9 -Confirm:$false | Out-Null
        $script:fresh = [Collections.Generic.Queue[string]]::new([string[]] @('bad-latency', 'bad-leak', 'bad-audit', 'bad-dvid', 'bad-contract', 'bad-contract-field', 'bad-contract-param'))
    }
    AfterAll { Stop-KfmTestLab $lab }
    # Each test rolls back a deploy of its own: after a rollback, running it again changes nothing
    # (the build rolled away from is quarantined; the last-known-good is what runs).
    BeforeEach {
        $image = $lab.Facts.catalogue.($script:fresh.Dequeue()).image
        Invoke-KfmLabKubectl $lab set image deployment/kfm-api -n kfm "api=$image" | Out-Null
        Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api -n kfm --timeout=60s | Out-Null
    }
    AfterEach { Invoke-KfmLabAdmin $lab faults -Method DELETE | Out-Null }

    It 'retries a 409 on the patch from a fresh read' {
        Invoke-KfmLabAdmin $lab faults -Method POST -Body @{ resource = 'deployments'; verb = 'patch'; dryRun = $false; conflictCount = 1 } | Out-Null
        $before = (Get-KfmApiRef).Revision
        $result = Invoke-KfmRollback -Method Cluster -Confirm:$false -Verbose 4>&1 | Tee-Object -Variable all | Where-Object { $_ -isnot [Management.Automation.VerboseRecord] }
        $result.Outcome | Should -Be 'Succeeded'
        (($all | Where-Object { $_ -is [Management.Automation.VerboseRecord] }).Message -join "`n") | Should -Match '409 Conflict'
        (Get-KfmApiRef).Revision | Should -Be ($before + 1)
    }

    It 'fails clearly on a 500, changes nothing, and returns a failed result' {
        Invoke-KfmLabAdmin $lab faults -Method POST -Body @{ resource = 'deployments'; verb = 'patch'; dryRun = $false; errorRate = '1'; errorCode = 500 } | Out-Null
        $before = (Get-KfmLabDeployment $lab).metadata.generation
        $result = Invoke-KfmRollback -Method Cluster -Confirm:$false -ErrorVariable failures -ErrorAction SilentlyContinue
        $result.Outcome | Should -Be 'Failed'
        $failures[0].FullyQualifiedErrorId | Should -BeLike 'ClusterServerError,*'
        $failures[0].Exception.Message | Should -Match 'Nothing was changed'
        (Get-KfmLabDeployment $lab).metadata.generation | Should -Be $before
    }

    It 'refuses in the preflight when the apiserver fails the dry run, and changes nothing' {
        Invoke-KfmLabAdmin $lab faults -Method POST -Body @{ resource = 'deployments'; verb = 'patch'; dryRun = $true; errorRate = '1'; errorCode = 500 } | Out-Null
        $before = (Get-KfmLabDeployment $lab).metadata.generation
        $thrown = { Invoke-KfmRollback -Method Cluster -Confirm:$false } |
            Should -Throw -ErrorId 'PreflightDryRunRefused,KfmRollback.Cmdlets.Rollback.InvokeKfmRollbackCommand' -PassThru
        $thrown.Exception.Message | Should -Match 'refused the dry run \(500 InternalServerError\).*Nothing was changed'
        (Get-KfmLabDeployment $lab).metadata.generation | Should -Be $before
    }

    It 'still completes the wait when watch streams drop mid-way' {
        Invoke-KfmLabAdmin $lab faults -Method POST -Body @{ resource = 'deployments'; verb = 'watch'; dropWatchAfterEvents = 1 } | Out-Null
        $result = Invoke-KfmRollback -Method Cluster -Wait -Timeout 60 -Confirm:$false
        $result.Outcome | Should -Be 'Succeeded'
        $result.Detail | Should -Match 'successfully rolled out'
    }

    It 'copes with a slow apiserver' {
        Invoke-KfmLabAdmin $lab faults -Method POST -Body @{ globalLatencyMs = 300 } | Out-Null
        (Invoke-KfmRollback -Method Cluster -Wait -Timeout 90 -Confirm:$false).Outcome | Should -Be 'Succeeded'
    }

    It 'stops waiting at once when the target crash-loops' {
        $target = (Get-KfmApiRef).LastKnownGoodRef
        Invoke-KfmLabAdmin $lab images -Method POST -Body @{ digest = $target; state = 'CrashLoopBackOff' } | Out-Null
        try {
            $watch = [Diagnostics.Stopwatch]::StartNew()
            $result = Invoke-KfmRollback -Method Cluster -Wait -Timeout 120 -Confirm:$false -ErrorVariable failures -ErrorAction SilentlyContinue
            $watch.Elapsed.TotalSeconds | Should -BeLessThan 60 -Because 'it must not wait for the progress deadline'
            $result.Outcome | Should -Be 'Failed'
            $result.Detail | Should -Match 'CrashLoopBackOff'
            $failures[0].FullyQualifiedErrorId | Should -BeLike 'RollbackRolloutFailed,*'
        }
        finally { Invoke-KfmLabAdmin $lab images -Method POST -Body @{ digest = $target; state = 'None' } | Out-Null }
    }

    It 'changes nothing when a permission is missing' {
        $viewerConfig = Join-Path $lab.Directory 'viewer.yaml'
        (Get-Content -Raw $lab.Config) -replace 'context: lab\b', 'context: lab-viewer' | Set-Content $viewerConfig
        $before = (Get-KfmLabDeployment $lab).metadata.generation
        $err = { Invoke-KfmRollback -ConfigPath $viewerConfig -Method Cluster -Confirm:$false } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'RollbackAccessDenied,*'
        $err.Exception.Message | Should -Match 'patch deployments.apps'
        $err.CategoryInfo.Category | Should -Be 'PermissionDenied'
        (Get-KfmLabDeployment $lab).metadata.generation | Should -Be $before
        Test-KfmAccess -ConfigPath $viewerConfig -Quiet | Should -BeFalse
    }
}
