@{
    RootModule           = 'KfmRollback.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '6f1d8f0e-3c5a-4b7e-9a51-2f4c8d7e1b90'
    Author               = 'KfmRollback maintainers'
    CompanyName          = 'Kansas Frontier Matrix'
    Copyright            = '(c) KfmRollback maintainers. MIT licence.'
    Description          = 'Safe, scriptable, auditable rollback of the KFM governed API: freeze, identify refs, roll back by GitOps or cluster, verify policy invariants, and write tamper-evident rollback receipts.'
    CompatiblePSEditions = @('Core')
    PowerShellVersion    = '7.4'
    FormatsToProcess     = @('KfmRollback.format.ps1xml')
    TypesToProcess       = @('KfmRollback.types.ps1xml')
    CmdletsToExport      = @(
        'Get-KfmEnvironment'
        'New-KfmIncident'
        'Get-KfmIncident'
        'Add-KfmTimelineEntry'
        'Start-KfmFreeze'
        'Stop-KfmFreeze'
        'Get-KfmFreeze'
        'Get-KfmApiRef'
        'Get-KfmRolloutHistory'
        'Get-KfmRollbackPlan'
        'Test-KfmAccess'
        'Wait-KfmRollback'
        'Invoke-KfmRollback'
        'Test-KfmDrift'
        'Enable-KfmFailClosed'
        'Disable-KfmFailClosed'
        'Get-KfmFailClosed'
        'Test-KfmApiHealth'
        'Test-KfmPolicyInvariant'
        'Test-KfmContract'
        'Test-KfmObservability'
        'Test-KfmRollback'
        'New-KfmRollbackReceipt'
        'Save-KfmRollbackReceipt'
        'Get-KfmRollbackReceipt'
        'Test-KfmRollbackReceipt'
        'New-KfmIncidentUpdate'
        'Save-KfmEvidence'
        'Export-KfmIncidentReport'
        'New-KfmFollowUp'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags         = @('KFM', 'Rollback', 'Kubernetes', 'GitOps', 'Incident', 'Runbook', 'PSEdition_Core', 'Linux', 'Windows', 'MacOS')
            LicenseUri   = 'https://opensource.org/licenses/MIT'
            ReleaseNotes = 'Foundation: configuration, incidents and rollback receipts.'
        }
    }
}
