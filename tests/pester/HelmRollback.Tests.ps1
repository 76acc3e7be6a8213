# Invoke-KfmRollback -Method Helm against the lab's Helm release kfm/kfm-api (revisions 1-3
# superseded, 4 deployed), checked against what helm v3's rollback writes
# (pkg/action/rollback.go, pkg/storage/driver/secrets.go).

BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    Import-Module $KfmManifest -Force

    function Start-HelmLab {
        $lab = Start-KfmTestLab
        $env:KFM_ROLLBACK_CONFIG = $lab.Config
        $null = Start-KfmFreeze -IncidentId INC-HELM -Reason 'helm rollback test' -Confirm:$false
        $lab
    }
    function Get-HelmSecrets($Lab) {
        Invoke-KfmLabKubectl $Lab get secrets -n kfm -l 'owner=helm,name=kfm-api' -o json | ConvertFrom-Json -Depth 30 | ForEach-Object items |
            Sort-Object { [int] $_.metadata.labels.version }
    }
}

AfterAll { Remove-Item env:KFM_ROLLBACK_CONFIG -ErrorAction SilentlyContinue }

Describe 'Invoke-KfmRollback -Method Helm' {
    BeforeEach { $lab = Start-HelmLab }
    AfterEach { Stop-KfmTestLab $lab }

    It 'plans with -WhatIf and writes nothing' {
        # What-if text goes to the host, so read it from a child pwsh's console output.
        $output = Invoke-KfmChildPwsh -Script "`$env:KFM_ROLLBACK_CONFIG = '$($lab.Config)'; Import-Module '$KfmManifest'; Invoke-KfmRollback -Method Helm -IncidentId INC-HELM -WhatIf" | Out-String -Width 500
        $output | Should -Match 'lab: create secret kfm/sh\.helm\.release\.v1\.kfm-api\.v5 \[release\]'
        $output | Should -Match 'lab: json-patch deployment kfm/kfm-api \[image\]'
        $output | Should -Match 'values are never shown'
        (Get-HelmSecrets $lab).Count | Should -Be 4
    }

    It 'rolls back to the previous revision and leaves the Secrets helm rollback leaves' {
        $result = Invoke-KfmRollback -Method Helm -IncidentId INC-HELM -Wait -Timeout 00:01:00 -Confirm:$false
        $result.Outcome | Should -Be 'Succeeded'
        $result.ToRevision | Should -Be 3
        $secrets = Get-HelmSecrets $lab
        $secrets.metadata.labels.status | Should -Be @('superseded', 'superseded', 'superseded', 'superseded', 'deployed')
        $secrets[4].metadata.name | Should -Be 'sh.helm.release.v1.kfm-api.v5'
        $secrets[4].type | Should -Be 'helm.sh/release.v1'
        (Get-KfmRolloutHistory -Source Helm -Revision 5).Description | Should -Be 'Rollback to 3'
        (Get-KfmApiRef -Source Helm).CurrentRef | Should -Be $lab.Facts.catalogue.'good-1.5.0'.digest
    }

    It 'rolls back to an explicit revision with -ToRevision' {
        $result = Invoke-KfmRollback -Method Helm -IncidentId INC-HELM -ToRevision 2 -Wait -Timeout 00:01:00 -Confirm:$false
        $result.Outcome | Should -Be 'Succeeded'
        (Get-KfmRolloutHistory -Source Helm -Revision 5).Description | Should -Be 'Rollback to 2'
    }

    It 'refuses while Argo CD can still sync, unless forced with a reason' {
        $null = Stop-KfmFreeze -IncidentId INC-HELM -Confirm:$false
        $err = { Invoke-KfmRollback -Method Helm -IncidentId INC-HELM -Confirm:$false } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'RollbackGitOpsNotFrozen,*'
        (Get-HelmSecrets $lab).Count | Should -Be 4
    }

    It 'never shows the release values' {
        $result = Invoke-KfmRollback -Method Helm -IncidentId INC-HELM -Confirm:$false -Verbose 4>&1 | Out-String
        $result | Should -Not -Match 'lab-canary'
    }
}
