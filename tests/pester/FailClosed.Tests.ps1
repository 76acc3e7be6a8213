# Fail-closed that checks its own effect (issue 20 item 6), on the lab, as an operator runs it:
# the live flag or replicas are compared with the mode's target, a drift is applied again, and what is
# reported is what was read back.

BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    Import-Module $KfmManifest -Force

    function Get-Flag($Lab) { Invoke-KfmLabKubectl $Lab get configmap kfm-api-config -n kfm -o 'jsonpath={.data.maintenance}' }
    function Get-Replicas($Lab) { [int] (Invoke-KfmLabKubectl $Lab get deployment kfm-api -n kfm -o 'jsonpath={.spec.replicas}') }
    # What a client of the API sees: the stand-in answers 503 MAINTENANCE while the flag is "true".
    function Get-ApiStatus($Lab) {
        (Invoke-WebRequest "$($Lab.Facts.kfmApi.url)/api/v1/datasets" -Headers @{ Authorization = "Bearer $($Lab.Facts.kfmApi.tokens.public)" } -SkipHttpErrorCheck).StatusCode
    }
    function Get-Timeline { (Get-KfmIncident -Id INC-FC).Timeline.Event }
}

AfterAll { Remove-Item env:KFM_ROLLBACK_CONFIG -ErrorAction SilentlyContinue }

Describe 'maintenance-flag: Enable-KfmFailClosed verifies its effect' {
    BeforeAll {
        $lab = Start-KfmTestLab
        $env:KFM_ROLLBACK_CONFIG = $lab.Config
        # Until the seeded rollout has ready pods the stand-in API answers 503 for that reason, not the flag's.
        Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api -n kfm --timeout=90s | Out-Null
        New-KfmIncident -Id INC-FC -Commander alice -Reason 'fail-closed drill' -Environment lab | Out-Null
    }
    AfterAll { Stop-KfmTestLab $lab }

    It 'fails closed and reports Active from the flag it read back' {
        (Get-KfmFailClosed).Active | Should -BeFalse
        Get-ApiStatus $lab | Should -Be 200

        $state = Enable-KfmFailClosed -IncidentId INC-FC -Force

        $state.Changed | Should -BeTrue
        $state.Active | Should -BeTrue
        $state.Live | Should -Be 'maintenance=true'
        Get-Flag $lab | Should -Be 'true'
        Get-ApiStatus $lab | Should -Be 503
        (Get-KfmFailClosed).Active | Should -BeTrue
    }

    It 're-applies a flag set back to false behind its back (its record left in place), and Get-KfmFailClosed tells the truth' {
        # A sync or a person resets the flag; the module's annotation stays on the ConfigMap.
        Invoke-KfmLabKubectl $lab patch configmap kfm-api-config -n kfm --type merge -p '{"data":{"maintenance":"false"}}' | Out-Null
        Get-ApiStatus $lab | Should -Be 200

        $seen = Get-KfmFailClosed -WarningVariable warned 3>$null
        $seen.Active | Should -BeFalse
        $seen.Recorded | Should -BeTrue
        $seen.Drifted | Should -BeTrue
        $seen.Live | Should -Be 'maintenance=false'
        "$warned" | Should -Match 'the API may be serving'
        ($seen | Format-Table | Out-String -Width 200) | Should -Match 'DRIFTED'

        $again = Enable-KfmFailClosed -IncidentId INC-FC -Force

        $again.Changed | Should -BeTrue -Because 'it used to answer "Changed: False, already failed closed" while the API served'
        $again.Reapplied | Should -BeTrue
        $again.Active | Should -BeTrue
        $again.Detail | Should -Match 'had drifted \(live: maintenance=false\)'
        Get-Flag $lab | Should -Be 'true'
        Get-ApiStatus $lab | Should -Be 503
        (Get-KfmFailClosed).Active | Should -BeTrue
        Get-Timeline | Should -Contain 'FAILED CLOSED again lab (MaintenanceFlag, configmap kfm/kfm-api-config#maintenance): it had drifted; re-applied, read back maintenance=true'
        # Its record still says who failed closed first, and what recovery restores (the seeded "false").
        (Get-KfmFailClosed).PriorValue | Should -Be 'false'
        (Get-KfmFailClosed).By | Should -Not -BeNullOrEmpty
    }

    It 'a third run changes nothing and says it verified the live state' {
        $state = Enable-KfmFailClosed -IncidentId INC-FC -Force
        $state.Changed | Should -BeFalse
        $state.Active | Should -BeTrue
        $state.Detail | Should -Match 'already failed closed; verified live: maintenance=true'
    }

    It 'Disable restores the prior state and verifies it' {
        $state = Disable-KfmFailClosed -Force
        $state.Changed | Should -BeTrue
        $state.Active | Should -BeFalse
        $state.Recorded | Should -BeFalse
        $state.Detail | Should -Be 'serving again; read back: maintenance=false'
        Get-ApiStatus $lab | Should -Be 200
    }

    It 'errors, not succeeds, when its effect cannot be read back' {
        # The apiserver accepts the write, then fails every read of the ConfigMap (the read-back).
        Invoke-KfmLabAdmin $lab faults -Method POST -Body @{ resource = 'configmaps'; verb = 'get'; skip = 1; errorRate = 1; errorCode = 503 } | Out-Null
        try {
            $thrown = { Enable-KfmFailClosed -IncidentId INC-FC -Force } | Should -Throw -ErrorId 'FailClosedNotConfirmed,KfmRollback.Cmdlets.FailClosed.EnableKfmFailClosedCommand' -PassThru
        }
        finally { Invoke-KfmLabAdmin $lab faults -Method DELETE | Out-Null }
        $thrown.Exception.Message | Should -Match 'could not be read back.*unconfirmed'
        # The change was sent: the timeline says so, and that it was not confirmed.
        Get-Timeline | Select-Object -Last 1 | Should -Match '^Fail-closed of lab \(MaintenanceFlag, configmap kfm/kfm-api-config#maintenance\) SENT but NOT CONFIRMED'
        # What the module could not confirm, Get-KfmFailClosed can, once the apiserver answers again.
        (Get-KfmFailClosed).Active | Should -BeTrue
    }
}

Describe 'scale-to-zero: replicas scaled back by hand' {
    BeforeAll {
        $lab = Start-KfmTestLab
        $config = Join-Path $lab.Directory 'scale-to-zero.yaml'
        (Get-Content -Raw $lab.Config) -replace 'mode: maintenance-flag\s+configmap: kfm-api-config\s+key: maintenance', 'mode: scale-to-zero' | Set-Content $config
        $env:KFM_ROLLBACK_CONFIG = $config
        New-KfmIncident -Id INC-FC -Commander alice -Reason 'fail-closed drill' -Environment lab | Out-Null
        Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api -n kfm --timeout=60s | Out-Null
    }
    AfterAll { Stop-KfmTestLab $lab }

    It 'scales to zero, is scaled back to 3 with kubectl, and Enable puts it back to zero' {
        $state = Enable-KfmFailClosed -IncidentId INC-FC -Force
        $state.Active | Should -BeTrue
        $state.Mode | Should -Be 'ScaleToZero'
        Get-Replicas $lab | Should -Be 0

        Invoke-KfmLabKubectl $lab scale deployment/kfm-api -n kfm --replicas=3 | Out-Null
        $seen = Get-KfmFailClosed 3>$null
        $seen.Drifted | Should -BeTrue
        $seen.Live | Should -Match '^replicas 3 '

        $again = Enable-KfmFailClosed -IncidentId INC-FC -Force
        $again.Reapplied | Should -BeTrue
        $again.Active | Should -BeTrue
        $again.Live | Should -Match '^replicas 0 '
        Get-Replicas $lab | Should -Be 0
        (Get-KfmFailClosed).Active | Should -BeTrue

        # Recovery restores the replicas recorded the first time (3), and checks it did.
        $back = Disable-KfmFailClosed -Force
        $back.Active | Should -BeFalse
        Get-Replicas $lab | Should -Be 3
    }
}
