<#
.SYNOPSIS
    The rollback drill: the runbook end to end, as an operator would run it.
.DESCRIPTION
    Runs the parts of the runbook the module ships in a scratch workspace: open the incident
    (UTC + America/Chicago), record the timeline, write the rollback receipt with the runbook's
    fields, store it in a git-backed, signed, hash-chained store, and audit the store with the
    anchor the incident ticket would keep. Exits 0 only when every step did what the runbook asks.
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [string] $Workspace = (Join-Path ([IO.Path]::GetTempPath()) ("kfm-drill-" + [Guid]::NewGuid().ToString('N').Substring(0, 8)))
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path (Resolve-Path $ModulePath) 'KfmRollback.psd1')

New-Item -ItemType Directory -Force $Workspace | Out-Null
$journal = Join-Path $Workspace 'incidents.ndjson'
$store = Join-Path $Workspace 'receipts'
$failures = [Collections.Generic.List[string]]::new()
function Step([string] $Text) { Write-Host "==> $Text" -ForegroundColor Cyan }

Step 'Open the incident'
$incident = New-KfmIncident -Id ('DRILL-' + (Get-Date -AsUTC -Format 'yyyyMMdd-HHmmss')) -Commander 'drill-ic' `
    -Reason '5xx spike after deploy (drill)' -Environment drill -JournalPath $journal `
    -ImpactedEndpoint 'public:/api/v1/stac/items', 'restricted:/api/v1/datasets/{id}' -Confirm:$false
$incident | Format-List | Out-Host

Step 'Record the timeline'
$incident | Add-KfmTimelineEntry -Role IC -Event 'Froze deploys and captured evidence' -Confirm:$false | Out-Null

Step 'Write and store the rollback receipt'
$current = 'sha256:' + (-join ((1..64) | ForEach-Object { '{0:x}' -f (Get-Random -Maximum 16) }))
$target = 'sha256:' + (-join ((1..64) | ForEach-Object { '{0:x}' -f (Get-Random -Maximum 16) }))
$saved = $incident |
    New-KfmRollbackReceipt -ApprovedBy 'drill-approver' -CurrentRef $current -RollbackTargetRef $target -ChangedSurface api `
        -Health pass -PolicyInvariants pass -ContractSmoke pass -Notes 'Drill: receipt path only.' |
    Save-KfmRollbackReceipt -Store $store -Git -Branch receipts -JournalPath $journal -Confirm:$false
$saved | Format-List Digest, Sequence, ChainHead, CommitId | Out-Host

Step 'Audit the store with the anchor'
$report = Test-KfmRollbackReceipt -Store $store -Git -Branch receipts -Anchor $saved.ChainHead
if (-not $report.IsValid) { $failures.Add('the receipt store did not verify') }

Step 'Tamper with a copy and check it is caught'
$copy = Join-Path $Workspace 'tampered'
Copy-Item $store $copy -Recurse
$file = Join-Path $copy ($saved.Digest.Substring(7) + '.json')
(Get-Content -Raw $file).Replace('drill-approver', 'someone-else') | Set-Content -NoNewline $file
if (Test-KfmRollbackReceipt -Store $copy -Quiet) { $failures.Add('an edited receipt was not detected') }

Write-Host ''
Write-Host 'Timeline:' -ForegroundColor Cyan
(Get-KfmIncident -Id $incident.IncidentId -JournalPath $journal).Timeline | ForEach-Object Line | Out-Host
Write-Host 'Receipt:' -ForegroundColor Cyan
(Get-KfmRollbackReceipt -Store $store -Git -Branch receipts -Digest $saved.Digest).Receipt.ToJson() | Out-Host

if ($failures.Count) {
    Write-Host ("DRILL FAILED: " + ($failures -join '; ')) -ForegroundColor Red
    exit 1
}
Write-Host "DRILL PASSED: incident $($incident.IncidentId), receipt $($saved.Digest), chain head $($saved.ChainHead)" -ForegroundColor Green
Remove-Item $Workspace -Recurse -Force
