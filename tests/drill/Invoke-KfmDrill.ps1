<#
.SYNOPSIS
    The rollback drill: a bad deploy on the embedded lab cluster, rolled back by the runbook.
.DESCRIPTION
    Starts the lab (an emulated apiserver with a deployment controller, Argo CD self-heal and a
    stand-in KFM API), deploys a good build and then a bad one through Argo CD, and runs the
    runbook as an operator would:

        New-KfmIncident | Start-KfmFreeze | Get-KfmApiRef | Invoke-KfmRollback -Method Cluster -Wait |
            Test-KfmRollback -Wait | New-KfmRollbackReceipt | Save-KfmRollbackReceipt

    It prints a short summary and the receipt, exits 0 only when the stand-in API serves the good
    build afterwards (and the receipt store verifies), and stops every process it started.
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $LabDll,
    [string] $Workspace = (Join-Path ([IO.Path]::GetTempPath()) ("kfm-drill-" + [Guid]::NewGuid().ToString('N').Substring(0, 8)))
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path (Resolve-Path $ModulePath) 'KfmRollback.psd1')
$failures = [Collections.Generic.List[string]]::new()
function Step([string] $Text) { Write-Host "==> $Text" -ForegroundColor Cyan }

function Invoke-Kubectl {
    $output = & /usr/bin/kubectl --kubeconfig (Join-Path $Workspace 'kubeconfig') @args 2>&1
    if ($LASTEXITCODE -ne 0) { throw "kubectl $($args -join ' ') failed: $output" }
    $output
}

# What the stand-in API says it is running, as a client sees it.
# (A 5xx-regressed build fails some requests: ask again, as a client would.)
function Get-ServedBuild($Facts) {
    $headers = @{ Authorization = "Bearer $($Facts.kfmApi.tokens.public)" }
    for ($i = 0; $i -lt 10; $i++) {
        $meta = Invoke-RestMethod -Uri "$($Facts.kfmApi.url)/api/v1/meta" -Headers $headers -SkipHttpErrorCheck
        if ($meta.image_digest) { return $meta }
    }
    $meta
}

function Wait-Until([scriptblock] $Condition, [string] $What, [int] $Seconds = 60) {
    $deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
    while (-not (& $Condition)) {
        if ([DateTime]::UtcNow -gt $deadline) { throw "Timed out after $Seconds s waiting for $What." }
        Start-Sleep -Milliseconds 200
    }
}

New-Item -ItemType Directory -Force $Workspace | Out-Null
Step "Starting the lab cluster in $Workspace"
$lab = Start-Process -FilePath ([Environment]::ProcessPath) -PassThru -NoNewWindow `
    -ArgumentList @($LabDll, '--out', $Workspace, '--time-scale', '5', '--prometheus', '--traffic', '8', '--parent-pid', "$PID") `
    -RedirectStandardOutput (Join-Path $Workspace 'lab.out') -RedirectStandardError (Join-Path $Workspace 'lab.err')
try {
    Wait-Until { Test-Path (Join-Path $Workspace 'ready') } 'the lab to start' 30
    $facts = Get-Content -Raw (Join-Path $Workspace 'lab.json') | ConvertFrom-Json
    $env:KFM_ROLLBACK_CONFIG = & (Join-Path $PSScriptRoot '../lab/New-KfmLabConfig.ps1') -LabDirectory $Workspace
    # The probe plan's credentials and restricted ids come from the environment, never the config.
    $env:KFM_LAB_PUBLIC_TOKEN = $facts.kfmApi.tokens.public
    $env:KFM_LAB_STEWARD_TOKEN = $facts.kfmApi.tokens.steward
    $env:KFM_LAB_RESTRICTED_IDS = 'burial_sites,tribal_consultation_notes'
    $catalogue = $facts.catalogue.PSObject.Properties.Value
    $good = $catalogue | Where-Object name -EQ 'good-1.5.1'
    $bad = $catalogue | Where-Object name -EQ 'bad-5xx'

    foreach ($build in $good, $bad) {
        Step "Deploying $($build.name) through Argo CD (self-heal on)"
        # The incident begins when the bad build starts serving: its timeline, baseline window and plots start there.
        if ($build -eq $bad) { $incidentStart = [DateTimeOffset]::UtcNow }
        $patch = @{ spec = @{ source = @{ kustomize = @{ images = @($build.image) } } } } | ConvertTo-Json -Depth 10 -Compress
        Invoke-Kubectl patch application kfm-api -n argocd --type merge -p $patch | Out-Null
        Wait-Until { (Get-ServedBuild $facts).image_digest -eq $build.digest } "the API to serve $($build.name)"
        Invoke-Kubectl rollout status deployment/kfm-api -n kfm --timeout=60s | Out-Null
        Start-Sleep -Seconds 12   # evidence: Prometheus sees each build for a while (the plots' baseline and incident)
        if ($build -eq $good) {
            # Operators record the contract of an accepted build; checklist C compares against it.
            Test-KfmContract -RecordSnapshot | Out-Null
        }
    }
    $served = Get-ServedBuild $facts
    Write-Host "    The API now serves $($served.build) ($($served.image_digest.Substring(0, 19))…): the incident begins." -ForegroundColor Yellow

    Step 'Runbook: incident → freeze → refs → cluster rollback → receipt'
    $saved = New-KfmIncident -Id ('DRILL-' + (Get-Date -AsUTC -Format 'yyyyMMdd-HHmmss')) -Commander 'drill-ic' `
            -Reason '5xx spike after deploy (drill)' -Environment lab -StartedAt $incidentStart `
            -ImpactedEndpoint 'public:/api/v1/stac/items', 'restricted:/api/v1/datasets/{id}' -Confirm:$false |
        Start-KfmFreeze -Evidence -Confirm:$false |
        Get-KfmApiRef -WarningAction SilentlyContinue |
        Invoke-KfmRollback -Method Cluster -Wait -Timeout 2m -Confirm:$false |
        ForEach-Object { $script:rollback = $_; $_ } |
        Test-KfmRollback -Wait -Timeout 2m |
        ForEach-Object { $script:verification = $_; $_ } |
        New-KfmRollbackReceipt -ApprovedBy 'drill-approver' -Notes 'Drill on the lab cluster: bad-5xx rolled back to good-1.5.1, verified by checklist A-D.' |
        Save-KfmRollbackReceipt -Confirm:$false

    $incidentId = $rollback.IncidentId
    $served = Get-ServedBuild $facts
    if ($rollback.Outcome -ne 'Succeeded') { $failures.Add("the rollback outcome was $($rollback.Outcome): $($rollback.Detail)") }
    if ($served.image_digest -ne $good.digest) { $failures.Add("the API serves $($served.build), not $($good.name)") }

    Step 'Policy-safe comms: the closing incident update, recorded in the timeline'
    $update = New-KfmIncidentUpdate -IncidentId $incidentId -Stage ($verification.Passed ? 'Resolved' : 'FailedClosed') -Confirm:$false
    Write-Host "    $($update.Text)"

    Step 'Self-heal check: Argo CD is frozen, so the rollback stays'
    Start-Sleep -Seconds 2
    if ((Get-ServedBuild $facts).image_digest -ne $good.digest) { $failures.Add('the rollback was reverted after the freeze') }

    # --- Evidence and aftermath (issue 12): bundle, plots, report, follow-up -------------------
    Step 'Aftermath: evidence with the verification, plots, incident report, follow-up'
    $aftermath = $verification | Save-KfmEvidence -IncidentId $incidentId -Confirm:$false
    # The follow-up first, so the report names it; the report covers the timeline up to its export.
    $followUp = New-KfmFollowUp -IncidentId $incidentId -Confirm:$false
    $reported = (Get-KfmIncident -Id $incidentId).Timeline
    $incidentReport = Export-KfmIncidentReport -IncidentId $incidentId -Confirm:$false
    $evidenceDigests = (Get-KfmRollbackReceipt -Digest $saved.Digest).Receipt.KfmIntegrity.Subjects.Name -like 'evidence/*'
    if (-not $evidenceDigests) { $failures.Add('the receipt names no evidence bundle') }
    if ($incidentReport.Plots.Count -ne 2) { $failures.Add("the report has $($incidentReport.Plots.Count) plots, not 2") }
    $reportText = Get-Content -Raw $incidentReport.MarkdownPath
    foreach ($entry in $reported) {
        $utc = $entry.At.UtcDateTime.ToString('yyyy-MM-dd HH:mm:ss') + ' UTC'
        if (-not $reportText.Contains($utc) -or $reportText -notmatch 'C[DS]T \(UTC-0[56]:00\)') { $failures.Add("the report lacks the timeline entry at $utc in both zones") }
    }
    if (-not (Test-Path $followUp.Location)) { $failures.Add('the follow-up checklist was not written') }
    $drillOut = Join-Path $PSScriptRoot '../../out/drill-report'
    Remove-Item $drillOut -Recurse -Force -ErrorAction SilentlyContinue
    Copy-Item (Split-Path $incidentReport.MarkdownPath) $drillOut -Recurse
    Write-Host "    evidence $($aftermath.Digest); report and plots copied to $drillOut; follow-up $($followUp.Location)"
    # --- end of evidence and aftermath ------------------------------------------------------

    $report = Test-KfmRollbackReceipt -Anchor $saved.ChainHead -ErrorAction SilentlyContinue
    if (-not $report.IsValid) { $failures.Add('the receipt store did not verify') }

    Write-Host ''
    Write-Host 'Summary' -ForegroundColor Cyan
    [pscustomobject]@{
        Incident        = $incidentId
        RolledBackFrom  = "$($bad.name) $($rollback.CurrentRef)"
        RolledBackTo    = "$($served.build) $($rollback.RollbackTargetRef)"
        Revisions       = "$($rollback.FromRevision) -> template of $($rollback.ToRevision)"
        Took            = '{0:N1} s' -f $rollback.Duration.TotalSeconds
        Receipt         = $saved.Digest
        ChainHead       = $saved.ChainHead
    } | Format-List | Out-Host
    Write-Host 'Verification' -ForegroundColor Cyan
    $verification.Results | Format-Table Check, Verdict, Summary -AutoSize | Out-Host
    if ($verification.Health -ne 'pass') { $failures.Add('checklist A (health) did not pass after the rollback') }
    if ($verification.PolicyInvariants -ne 'pass') { $failures.Add('checklist B (policy invariants) did not pass after the rollback') }
    if ($verification.ContractSmoke -ne 'pass') { $failures.Add('checklist C (contract) did not pass after the rollback') }
    Write-Host 'Timeline' -ForegroundColor Cyan
    (Get-KfmIncident -Id $incidentId).Timeline | ForEach-Object Line | Out-Host
    Write-Host 'Receipt' -ForegroundColor Cyan
    (Get-KfmRollbackReceipt -Digest $saved.Digest).Receipt.ToJson() | Out-Host
}
finally {
    if (-not $lab.HasExited) { $lab.Kill($true); $lab.WaitForExit(10000) | Out-Null }
    Remove-Item env:KFM_ROLLBACK_CONFIG, env:KFM_LAB_PUBLIC_TOKEN, env:KFM_LAB_STEWARD_TOKEN, env:KFM_LAB_RESTRICTED_IDS -ErrorAction SilentlyContinue
}

if ($failures.Count) {
    Write-Host ("DRILL FAILED: " + ($failures -join '; ')) -ForegroundColor Red
    exit 1
}
Write-Host "DRILL PASSED: the API serves $($good.name) again; receipt $($saved.Digest)" -ForegroundColor Green
Remove-Item $Workspace -Recurse -Force
