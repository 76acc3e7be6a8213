# A cluster-only environment: six lines of configuration are enough for refs, the emergency
# rollback and receipts; a cmdlet that needs more names the missing section.

BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    Import-Module $KfmManifest -Force
    $lab = Start-KfmTestLab
    # No GitOps controller to freeze in a cluster-only environment: take Argo CD out of the lab.
    Invoke-KfmLabKubectl $lab patch application kfm-api -n argocd --type merge -p '{"spec":{"syncPolicy":{"automated":null}}}' | Out-Null
    $config = Join-Path $lab.Directory 'minimal.yaml'
    @"
defaults: { incident_journal: state/incidents, receipt_store: state/receipts }
environments:
  lab:
    cluster:
      namespace: kfm
      deployment: kfm-api
"@ | Set-Content $config
    (Get-Content $config).Count | Should -Be 6
    $env:KUBECONFIG = $lab.Kubeconfig
    $env:KFM_ROLLBACK_CONFIG = $config
}

AfterAll {
    Stop-KfmTestLab $lab
    Remove-Item env:KFM_ROLLBACK_CONFIG, env:KUBECONFIG -ErrorAction SilentlyContinue
}

Describe 'A six-line cluster-only environment' {
    It 'reads refs, rolls back through the cluster and stores a receipt' {
        New-KfmIncident -Id INC-MIN -Commander alice -Reason 'bad deploy' -Environment lab -Confirm:$false | Out-Null
        Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api -n kfm --timeout=60s | Out-Null
        $ref = Get-KfmApiRef -IncidentId INC-MIN
        $ref.LastKnownGoodRef | Should -Match '^sha256:'
        $result = $ref | Invoke-KfmRollback -Method Cluster -Wait -Timeout 60 -Confirm:$false
        $result.Outcome | Should -Be 'Succeeded'
        $saved = $result | New-KfmRollbackReceipt -ApprovedBy bob -Health pass -PolicyInvariants pass -ContractSmoke pass | Save-KfmRollbackReceipt -Confirm:$false
        $saved.ChainHead | Should -Match '^sha256:'
        (Get-KfmEnvironment lab | Out-String) | Should -Match '\(none\)' -Because 'the table says there is no GitOps repository or freeze'
    }

    It 'names the missing api section when a cmdlet needs it' {
        $err = { Test-KfmPolicyInvariant } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ConfigSectionMissing,*'
        $err.Exception.Message | Should -Match "^Test-KfmPolicyInvariant needs the 'api' section of environment 'lab'"
        $err.CategoryInfo.Category | Should -Be 'ObjectNotFound'
        { Start-KfmFreeze -Confirm:$false } | Should -Throw -ErrorId 'ConfigSectionMissing,KfmRollback.Cmdlets.Freeze.StartKfmFreezeCommand'
        { Get-KfmApiRef -Source GitOps } | Should -Throw "*Get-KfmApiRef needs the 'gitops' section*"
    }
}
