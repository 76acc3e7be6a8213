# The preflight of a rollback (issue 20 item 5), as an operator meets it on the lab: an admission
# policy that refuses the undo (kyverno/kyverno#5363) shows in Get-KfmRollbackPlan and -WhatIf, and
# Invoke-KfmRollback refuses before anything changes; a Helm release stuck in pending-upgrade
# (helm/helm#9548) is refused with helm's remedy.

BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    Import-Module $KfmManifest -Force
    $lab = Start-KfmTestLab
    $env:KFM_ROLLBACK_CONFIG = $lab.Config
    $audit = Join-Path $lab.Directory 'audit.log'
    function Get-StoredWrites([int] $Skip) { Get-KfmLabStoredWrites $lab -Skip $Skip }
    function Get-Image { Invoke-KfmLabKubectl $lab get deployment kfm-api -n kfm -o 'jsonpath={.spec.template.spec.containers[0].image}' }

    New-KfmIncident -Id INC-PRE -Commander alice -Reason '5xx after deploy' -Environment lab | Out-Null
    Start-KfmFreeze -IncidentId INC-PRE -Confirm:$false | Out-Null
    $bad = $lab.Facts.catalogue.'bad-5xx'.image
    Invoke-KfmLabKubectl $lab set image deployment/kfm-api -n kfm "api=$bad" | Out-Null
    Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api -n kfm --timeout=60s | Out-Null
    $policy = @{
        name = 'validate.kyverno.svc-fail'; operations = @('UPDATE'); resources = @('deployments'); namespace = 'kfm'; objectSelector = 'app=kfm-api'
        message = 'policy Deployment/kfm/kfm-api for resource violation: block-rollbacks: only signed images may be deployed'
    }
}

AfterAll {
    Stop-KfmTestLab $lab
    Remove-Item env:KFM_ROLLBACK_CONFIG -ErrorAction SilentlyContinue
}

Describe 'An admission policy that refuses the undo' {
    BeforeAll { Invoke-KfmLabAdmin $lab admission -Method POST -Body $policy | Out-Null }
    AfterAll { Invoke-KfmLabAdmin $lab admission -Method DELETE | Out-Null }

    It 'shows in Get-KfmRollbackPlan: which check, what it saw, its error id' {
        $plan = Get-KfmRollbackPlan -IncidentId INC-PRE -WarningVariable warned 3>$null

        $plan.Method | Should -Be 'Cluster'
        $plan.PreflightPassed | Should -BeFalse
        $failed = @($plan.Preflight | Where-Object Failed)
        $failed.Count | Should -Be 1
        $failed[0].Check | Should -Be 'server-dry-run'
        $failed[0].ErrorId | Should -Be 'PreflightAdmissionDenied'
        $failed[0].Target | Should -Be 'json-patch deployment kfm/kfm-api'
        $failed[0].Saw | Should -Match 'admission webhook "validate.kyverno.svc-fail" denied the request: policy Deployment/kfm/kfm-api'
        "$warned" | Should -Match 'preflight server-dry-run FAILED \(PreflightAdmissionDenied\)'
        ($plan | Out-String -Width 300) | Should -Match 'FAILED: server-dry-run \(PreflightAdmissionDenied\)'
        ($plan.Preflight | Format-Table | Out-String -Width 300) | Should -Match 'registry-digest\s+Skipped'
    }

    It '-WhatIf shows every preflight check and the failure as an error, and stores nothing' {
        $before = @(Get-Content $audit).Count
        $whatIf = Invoke-KfmChildPwsh -Script "`$env:KFM_ROLLBACK_CONFIG = '$($lab.Config)'; Import-Module '$KfmManifest'; Invoke-KfmRollback -IncidentId INC-PRE -Method Cluster -WhatIf 2>&1 | Out-String -Width 1000; exit 0" | Out-String -Width 1000

        $whatIf | Should -Match 'What if: lab: preflight server-dry-run Failed: json-patch deployment kfm/kfm-api: the apiserver refused the dry run \(400 BadRequest\): admission webhook "validate.kyverno.svc-fail" denied the request'
        $whatIf | Should -Match 'What if: lab: preflight registry-digest Skipped'
        $whatIf | Should -Match 'Preflight check server-dry-run failed for lab'
        Get-StoredWrites $before | Should -BeNullOrEmpty
    }

    It 'Invoke-KfmRollback refuses with the check''s error id, says what to do, and changes nothing' {
        $before = @(Get-Content $audit).Count
        $image = Get-Image

        $thrown = { Invoke-KfmRollback -IncidentId INC-PRE -Method Cluster -Confirm:$false } |
            Should -Throw -ErrorId 'PreflightAdmissionDenied,KfmRollback.Cmdlets.Rollback.InvokeKfmRollbackCommand' -PassThru

        $thrown.Exception.Message | Should -Match 'Nothing was changed'
        $thrown.Exception.Message | Should -Match 'Fail forward.*fail closed \(Enable-KfmFailClosed\).*another target \(-ToRevision / -ToRef'
        $thrown.CategoryInfo.Category | Should -Be 'PermissionDenied'
        Get-StoredWrites $before | Should -BeNullOrEmpty -Because 'not even the rollback lock is taken'
        Get-Image | Should -Be $image
    }
}

Describe 'Without the policy' {
    It 'the plan''s preflight passes and the same rollback goes through' {
        $plan = Get-KfmRollbackPlan -IncidentId INC-PRE
        $plan.PreflightPassed | Should -BeTrue
        ($plan.Preflight | Where-Object Check -eq 'server-dry-run').Verdict | Should -Be 'Passed'

        $result = $plan | Invoke-KfmRollback -Confirm:$false
        $result.Outcome | Should -Be 'Succeeded'
        Get-Image | Should -Not -Be $bad
    }
}

Describe 'A Helm release stuck in pending-upgrade' {
    It 'is refused with helm''s remedy, and nothing is written' {
        # An interrupted `helm upgrade`: revision 5 of the seeded release left pending-upgrade.
        $v4 = Invoke-KfmLabKubectl $lab get secret sh.helm.release.v1.kfm-api.v4 -n kfm -o json | ConvertFrom-Json -Depth 20
        $v5 = $v4 | Select-Object apiVersion, kind, type, data, metadata
        $v5.metadata = [pscustomobject]@{ name = 'sh.helm.release.v1.kfm-api.v5'; namespace = 'kfm'; labels = [pscustomobject]@{ owner = 'helm'; name = 'kfm-api'; status = 'pending-upgrade'; version = '5' } }
        # The release JSON says pending-upgrade and version 5 too (helm reads the status from it).
        $release = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($v4.data.release))
        $json = [IO.Compression.GZipStream]::new([IO.MemoryStream]::new([Convert]::FromBase64String($release)), [IO.Compression.CompressionMode]::Decompress)
        $text = [IO.StreamReader]::new($json).ReadToEnd() -replace '"status":"deployed"', '"status":"pending-upgrade"' -replace '"version":4', '"version":5'
        $buffer = [IO.MemoryStream]::new()
        $zip = [IO.Compression.GZipStream]::new($buffer, [IO.Compression.CompressionLevel]::Optimal)
        $bytes = [Text.Encoding]::UTF8.GetBytes($text); $zip.Write($bytes, 0, $bytes.Length); $zip.Dispose()
        $v5.data = [pscustomobject]@{ release = [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes([Convert]::ToBase64String($buffer.ToArray()))) }
        $file = Join-Path $lab.Directory 'v5.json'
        $v5 | ConvertTo-Json -Depth 20 | Set-Content $file
        Invoke-KfmLabKubectl $lab create -f $file | Out-Null
        $before = @(Get-Content $audit).Count

        $thrown = { Invoke-KfmRollback -IncidentId INC-PRE -Method Helm -WhatIf } |
            Should -Throw -ErrorId 'HelmReleasePending,KfmRollback.Cmdlets.Rollback.InvokeKfmRollbackCommand' -PassThru

        $thrown.Exception.Message | Should -Match 'Preflight check helm-release-status failed for lab: .*revision 5 of Helm release "kfm-api" is pending-upgrade'
        $thrown.Exception.Message | Should -Match "'helm rollback kfm-api 4 --wait' \(revision 4 is the last deployed\)"
        Get-StoredWrites $before | Should -BeNullOrEmpty
    }
}
