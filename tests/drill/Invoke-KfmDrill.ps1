<#
.SYNOPSIS
    The rollback drill: a bad deploy through Git on the embedded lab cluster, rolled back by the runbook.
.DESCRIPTION
    Starts the lab (an emulated apiserver with a deployment controller, Argo CD self-heal and a
    stand-in KFM API) and a bare Git repository the lab's Argo CD reconciles from, deploys a good
    build and then a bad one by commits to that repository, and runs the runbook as an operator would.

    Preferred (runbook step 2, the GitOps path; provider none with gitops.pr.auto_merge):

        New-KfmIncident | Start-KfmFreeze | Get-KfmApiRef -Source GitOps |
            Invoke-KfmRollback -Method GitOps -Wait -MergeWith Merge |
            Test-KfmRollback -Wait | New-KfmRollbackReceipt | Save-KfmRollbackReceipt

    (merge, controlled thaw: one Argo CD sync pinned to the merge commit, reconcile, rollout).

    Emergency (step 3, then "Immediately after emergency rollback"):

        New-KfmIncident | Start-KfmFreeze | Get-KfmApiRef | Invoke-KfmRollback -Method Cluster -Wait |
            Test-KfmRollback -Wait | New-KfmRollbackReceipt | Save-KfmRollbackReceipt
        Test-KfmDrift | Invoke-KfmRollback -Method GitOps -Wait -MergeWith Merge   # re-align Git

    -Scenario Both (the default) runs Preferred, then Emergency after a thaw and a second bad
    deploy. The aftermath (evidence, plots, report, follow-up) covers the last scenario's incident.
    It prints a summary and each receipt, exits 0 only when every scenario restored the good build
    (and Git pins it, and the receipt store verifies), and stops every process it started.
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $LabDll,
    [ValidateSet('Preferred', 'Emergency', 'Both')] [string] $Scenario = 'Both',
    [string] $Workspace = (Join-Path ([IO.Path]::GetTempPath()) ("kfm-drill-" + [Guid]::NewGuid().ToString('N').Substring(0, 8)))
)
$ErrorActionPreference = 'Stop'
# A log file or CI console gets plain text, not escape codes.
if ([Console]::IsOutputRedirected -or $env:NO_COLOR) { $PSStyle.OutputRendering = 'PlainText' }
. (Join-Path $PSScriptRoot '../lab/LabProcess.ps1')
. (Join-Path $PSScriptRoot '../pester/LoopbackSlack.ps1')
Import-Module (Join-Path (Resolve-Path $ModulePath) 'KfmRollback.psd1')
$failures = [Collections.Generic.List[string]]::new()
# A path as the operator typed from: relative to the current directory when it lies beneath it.
function Format-DrillPath([string] $Path) {
    $relative = [IO.Path]::GetRelativePath((Get-Location).Path, $Path)
    if ($relative.StartsWith('..')) { $Path } else { $relative }
}
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

# The deploy repository (a bare repository the lab's Argo CD reconciles from) and a work clone.
$bare = Join-Path $Workspace 'deploy.git'
$work = Join-Path $Workspace 'deploy-work'
$overlay = 'infra/gitops/apps/kfm-api/overlays/prod'
function Invoke-Git {
    $output = & git -C $work -c user.name=deployer -c user.email=deployer@kfm.local @args 2>&1
    if ($LASTEXITCODE -ne 0) { throw "git $($args -join ' ') failed: $output" }
    $output
}

# A deploy is a commit pinning the build in the overlay, pushed to the branch Argo CD watches.
function Publish-Build($Build, [string] $Message) {
    $repository = ($Build.image -split '@')[0] -replace ':[^/]*$', ''
    # Rollback and re-align PRs merged into main since the last deploy: build on them.
    if (Invoke-Git ls-remote origin refs/heads/main) { Invoke-Git pull -q --ff-only origin main | Out-Null }
    @"
# prod overlay for the KFM API
resources:
  - ../../base
images:
  - name: $repository   # the governed API
    digest: $($Build.digest)
"@ | Set-Content -NoNewline (Join-Path $work "$overlay/kustomization.yaml")
    Invoke-Git add -A | Out-Null
    Invoke-Git commit -q -m $Message | Out-Null
    Invoke-Git push -q origin main | Out-Null
}

function Deploy-ThroughGit($Build) {
    Step "Deploying $($Build.name) through Git: a commit Argo CD syncs (self-heal on)"
    Publish-Build $Build "deploy kfm-api $($Build.name)"
    Wait-Until { (Get-ServedBuild $facts).image_digest -eq $Build.digest } "the API to serve $($Build.name)"
    Invoke-Kubectl rollout status deployment/kfm-api -n kfm --timeout=60s | Out-Null
}

function Get-GitPin {
    Invoke-Git fetch -q origin | Out-Null
    ((Invoke-Git show "origin/main:$overlay/kustomization.yaml") -join "`n") -replace '(?s).*digest: (sha256:[0-9a-f]{64}).*', '$1'
}

New-Item -ItemType Directory -Force $Workspace | Out-Null
Step "Starting the lab cluster in $Workspace"
$lab = $null
$slack = $null
$reportPath = $null
try {
    $lab = Start-KfmLabProcess -LabDll $LabDll -Directory $Workspace -Arguments @('--time-scale', '5', '--prometheus', '--traffic', '8', '--parent-pid', "$PID")
    $facts = Get-Content -Raw (Join-Path $Workspace 'lab.json') | ConvertFrom-Json
    $env:KFM_ROLLBACK_CONFIG = & (Join-Path $PSScriptRoot '../lab/New-KfmLabConfig.ps1') -LabDirectory $Workspace
    # The probe plan's credentials and restricted ids come from the environment, never the config.
    $env:KFM_LAB_PUBLIC_TOKEN = $facts.kfmApi.tokens.public
    $env:KFM_LAB_STEWARD_TOKEN = $facts.kfmApi.tokens.steward
    $env:KFM_LAB_RESTRICTED_IDS = 'burial_sites,tribal_consultation_notes'
    $catalogue = $facts.catalogue.PSObject.Properties.Value
    $good = $catalogue | Where-Object name -EQ 'good-1.5.1'
    $bad = $catalogue | Where-Object name -EQ 'bad-5xx'

    Step "Deploy repository ${bare}: Argo CD reconciles the prod overlay from it"
    & git init -q --bare -b main $bare
    & git clone -q $bare $work 2>$null
    New-Item -ItemType Directory -Force (Join-Path $work $overlay) | Out-Null
    # The module works on its own clone of the same repository; provider none merges a rollback
    # as a fast-forward push, which gitops.pr.auto_merge (with no approvals required) allows.
    (Get-Content -Raw $env:KFM_ROLLBACK_CONFIG) `
        -replace '      path: gitops', "      url: file://$bare" `
        -replace '      kill_switch_path: infra/gitops/FREEZE', "      kill_switch_path: infra/gitops/FREEZE`n      pr:`n        provider: none`n        auto_merge: true`n        required_approvals: 0`n        poll_interval: 200ms" |
        Set-Content $env:KFM_ROLLBACK_CONFIG
    # Incident updates go where people read them: a Slack-shaped webhook on loopback, its URL a secret by reference.
    $slack = Start-KfmLoopbackSlack
    $env:KFM_DRILL_SLACK_WEBHOOK_URL = $slack.WebhookUrl
    (Get-Content -Raw $env:KFM_ROLLBACK_CONFIG) -replace '(?m)^    approval_required: false$', "    approval_required: false`n    comms:`n      channels:`n        - name: drill-slack`n          kind: slack`n          secret_env: KFM_DRILL_SLACK_WEBHOOK_URL" |
        Set-Content $env:KFM_ROLLBACK_CONFIG
    Publish-Build $good "deploy kfm-api $($good.name)"
    $source = @{ spec = @{ source = @{ repoURL = $bare; path = $overlay; targetRevision = 'main'; kustomize = $null } } } | ConvertTo-Json -Depth 10 -Compress
    Invoke-Kubectl patch application kfm-api -n argocd --type merge -p $source | Out-Null
    Wait-Until { (Get-ServedBuild $facts).image_digest -eq $good.digest } "the API to serve $($good.name) from Git"
    Invoke-Kubectl rollout status deployment/kfm-api -n kfm --timeout=60s | Out-Null
    Start-Sleep -Seconds 20   # evidence: Prometheus sees the good build long enough for a baseline (prometheus.baseline.min_window after its first scrapes)
    # Operators record the contract of an accepted build; checklist C compares against it.
    Test-KfmContract -RecordSnapshot | Out-Null

    $scenarios = if ($Scenario -eq 'Both') { @('Preferred', 'Emergency') } else { @($Scenario) }
    $runs = [Collections.Generic.List[object]]::new()
    foreach ($name in $scenarios) {
        if ($runs.Count) {
            Step 'Thaw after the previous incident: it stops its freeze, and Argo CD syncs automatically again'
            Stop-KfmFreeze -IncidentId $runs[$runs.Count - 1].Incident -Force -Confirm:$false | Out-Null
        }
        # The incident begins when the bad build starts serving: its timeline, baseline window and plots start there.
        $incidentStart = [DateTimeOffset]::UtcNow
        Deploy-ThroughGit $bad
        Start-Sleep -Seconds 12   # evidence: Prometheus sees the bad build for a while (the incident)
        $served = Get-ServedBuild $facts
        Write-Host "    The API now serves $($served.build) ($($served.image_digest.Substring(0, 19))…): the incident begins." -ForegroundColor Yellow

        $script:rollback = $null; $script:verification = $null; $realign = $null
        $incident = New-KfmIncident -Id ("DRILL-$($name.Substring(0, 1))-" + (Get-Date -AsUTC -Format 'yyyyMMdd-HHmmss')) -Commander 'drill-ic' `
            -Reason "5xx spike after deploy (drill, $($name.ToLowerInvariant()) path)" -Environment lab -StartedAt $incidentStart `
            -ImpactedEndpoint 'public:/api/v1/stac/items', 'restricted:/api/v1/datasets/{id}' -Confirm:$false
        if ($name -eq 'Preferred') {
            Step 'Runbook, preferred path: incident → freeze → Git refs → GitOps rollback PR, merge, controlled thaw → verify → receipt'
            $saved = $incident | Start-KfmFreeze -Evidence -Confirm:$false |
                Get-KfmApiRef -Source GitOps -WarningAction SilentlyContinue |
                Invoke-KfmRollback -Method GitOps -Wait -MergeWith Merge -Timeout 2m -Confirm:$false |
                ForEach-Object { $script:rollback = $_; $_ } |
                Test-KfmRollback -Wait -Timeout 2m |
                ForEach-Object { $script:verification = $_; $_ } |
                New-KfmRollbackReceipt -ApprovedBy 'drill-approver' -Notes 'Drill on the lab cluster, preferred path: bad-5xx reverted in Git by a merged rollback PR, deployed by one pinned Argo CD sync, verified by checklist A-D.' |
                Save-KfmRollbackReceipt -Confirm:$false
            if ($rollback -and $rollback.MergeCommit -ne (Invoke-Git ls-remote origin refs/heads/main).Split("`t")[0]) { $failures.Add("preferred: the merge commit $($rollback.MergeCommit) is not the tip of main") }
            if ($rollback -and $rollback.ReconciledRevision -ne $rollback.MergeCommit) { $failures.Add("preferred: Argo CD reconciled $($rollback.ReconciledRevision), not the merge commit") }
        }
        else {
            Step 'Runbook, emergency path: incident → freeze → refs → cluster rollback → verify → receipt'
            $saved = $incident | Start-KfmFreeze -Evidence -Confirm:$false |
                Get-KfmApiRef -WarningAction SilentlyContinue |
                Invoke-KfmRollback -Method Cluster -Wait -Timeout 2m -Confirm:$false |
                ForEach-Object { $script:rollback = $_; $_ } |
                Test-KfmRollback -Wait -Timeout 2m |
                ForEach-Object { $script:verification = $_; $_ } |
                New-KfmRollbackReceipt -ApprovedBy 'drill-approver' -Notes 'Drill on the lab cluster: bad-5xx rolled back to good-1.5.1, verified by checklist A-D.' |
                Save-KfmRollbackReceipt -Confirm:$false

            Step 'Self-heal check: Argo CD is frozen, so the rollback stays'
            Start-Sleep -Seconds 2
            if ((Get-ServedBuild $facts).image_digest -ne $good.digest) { $failures.Add('emergency: the rollback was reverted after the freeze') }

            Step 'Re-align Git with production: Test-KfmDrift | Invoke-KfmRollback -Method GitOps -Wait -MergeWith Merge'
            $realign = @(Test-KfmDrift -IncidentId $incident.IncidentId -WarningAction SilentlyContinue |
                Invoke-KfmRollback -Method GitOps -Wait -MergeWith Merge -Timeout 2m -Confirm:$false)
            if ($realign.Count -ne 1) { $failures.Add("emergency: the re-align made $($realign.Count) rollbacks, not 1") }
            elseif ($realign[0].Outcome -ne 'Succeeded' -or $realign[0].RollbackTargetRef -ne $good.digest) { $failures.Add("emergency: the re-align PR ended $($realign[0].Outcome) targeting $($realign[0].RollbackTargetRef): $($realign[0].Detail)") }
            if (-not (Test-KfmDrift -Quiet -WarningAction SilentlyContinue)) { $failures.Add('emergency: Git and the cluster still differ after the re-align') }
        }

        $served = Get-ServedBuild $facts
        if (-not $rollback) { $failures.Add("$($name.ToLowerInvariant()): no rollback result") }
        elseif ($rollback.Outcome -ne 'Succeeded') { $failures.Add("$($name.ToLowerInvariant()): the rollback outcome was $($rollback.Outcome): $($rollback.Detail)") }
        if ($served.image_digest -ne $good.digest) { $failures.Add("$($name.ToLowerInvariant()): the API serves $($served.build), not $($good.name)") }
        if ((Get-GitPin) -ne $good.digest) { $failures.Add("$($name.ToLowerInvariant()): Git does not pin $($good.name) afterwards") }

        Step 'Policy-safe comms: the closing incident update, posted to the loopback Slack webhook and recorded in the timeline'
        # Only what the timeline supports: Resolved after a passing verification, else still verifying.
        $stage = $verification.Passed ? 'Resolved' : 'Verifying'
        $received = @(Get-KfmLoopbackSlackMessage $slack).Count
        $post = New-KfmIncidentUpdate -IncidentId $incident.IncidentId -Stage $stage -Post -Confirm:$false -ErrorAction Continue
        $arrived = @(Get-KfmLoopbackSlackMessage $slack | Select-Object -Skip $received)
        if ($post.Outcome -ne 'Posted' -or $arrived.Count -ne 1) { $failures.Add("$($name.ToLowerInvariant()): the $stage update was $($post.Outcome) ($($post.Answer)); $($arrived.Count) message(s) arrived at the Slack webhook") }
        else { Write-Host "    drill-slack received: $($arrived[0])" }
        $runs.Add([pscustomobject]@{ Scenario = $name; Incident = $incident.IncidentId; Rollback = $rollback; Verification = $verification; Saved = $saved; Realign = $realign; Served = $served })
    }
    # The aftermath and the summary's detail cover the last scenario's incident.
    $last = $runs[$runs.Count - 1]
    $incidentId = $last.Incident
    $rollback = $last.Rollback
    $verification = $last.Verification
    $saved = $last.Saved
    $served = $last.Served

    # --- Evidence and aftermath (issue 12): bundle, plots, report, follow-up -------------------
    Step 'Aftermath: evidence with the verification, plots, incident report, follow-up'
    $aftermath = $verification | Save-KfmEvidence -IncidentId $incidentId -Confirm:$false
    # The follow-up first, so the report names it; the report covers the timeline up to its export.
    $followUp = New-KfmFollowUp -IncidentId $incidentId -Confirm:$false
    $reported = (Get-KfmIncident -Id $incidentId).Timeline
    $incidentReport = Export-KfmIncidentReport -IncidentId $incidentId -Confirm:$false
    $evidenceDigests = (Get-KfmRollbackReceipt -Digest $saved.Digest).Receipt.KfmIntegrity.Subjects.Name -like 'evidence/*'
    if (-not $evidenceDigests) { $failures.Add('the receipt names no evidence bundle') }
    $evidencePlots = @($incidentReport.Plots | Where-Object Name -NotLike 'phases-*')
    $phaseCharts = @($incidentReport.Plots | Where-Object Name -Like 'phases-*')
    if ($evidencePlots.Count -ne 2) { $failures.Add("the report has $($evidencePlots.Count) evidence plots, not 2") }
    if ($phaseCharts.Count -lt 1) { $failures.Add('the report has no phase chart') }
    $reportText = Get-Content -Raw $incidentReport.MarkdownPath
    foreach ($entry in $reported) {
        $utc = $entry.At.UtcDateTime.ToString('yyyy-MM-dd HH:mm:ss') + ' UTC'
        if (-not $reportText.Contains($utc) -or $reportText -notmatch 'C[DS]T \(UTC-0[56]:00\)') { $failures.Add("the report lacks the timeline entry at $utc in both zones") }
    }
    if (-not (Test-Path $followUp.Location)) { $failures.Add('the follow-up checklist was not written') }
    # The report outlives the drill's temporary workspace: it is copied to out/drill-report.
    $drillOut = [IO.Path]::GetFullPath((Join-Path $PSScriptRoot '../../out/drill-report'))
    Remove-Item $drillOut -Recurse -Force -ErrorAction SilentlyContinue
    Copy-Item (Split-Path $incidentReport.MarkdownPath) $drillOut -Recurse
    $reportPath = Join-Path $drillOut (Split-Path -Leaf $incidentReport.HtmlPath)
    Write-Host "    evidence $($aftermath.Digest); report and plots in $(Format-DrillPath $drillOut); follow-up copied with them"
    # --- end of evidence and aftermath ------------------------------------------------------

    $report = Test-KfmRollbackReceipt -Anchor $saved.ChainHead -ErrorAction SilentlyContinue
    if (-not $report.IsValid) { $failures.Add('the receipt store did not verify') }

    Write-Host ''
    foreach ($run in $runs) {
        Write-Host "Summary: $($run.Scenario)" -ForegroundColor Cyan
        [pscustomobject]@{
            Incident        = $run.Incident
            Method          = $run.Rollback.Method
            RolledBackFrom  = "$($bad.name) $($run.Rollback.CurrentRef)"
            RolledBackTo    = "$($run.Served.build) $($run.Rollback.RollbackTargetRef)"
            Change          = if ($run.Scenario -eq 'Preferred') { "$($run.Rollback.Branch) merged as $($run.Rollback.MergeCommit), reconciled $($run.Rollback.ReconciledRevision)" } else { "$($run.Rollback.FromRevision) -> template of $($run.Rollback.ToRevision)" }
            RealignedGit    = if ($run.Realign) { "$($run.Realign[0].Branch) merged as $($run.Realign[0].MergeCommit)" } else { $null }
            Took            = '{0:N1} s' -f $run.Rollback.Duration.TotalSeconds
            Receipt         = $run.Saved.Digest
            ChainHead       = $run.Saved.ChainHead
        } | Format-List | Out-Host
        Write-Host "Verification: $($run.Scenario)" -ForegroundColor Cyan
        $run.Verification.Results | Format-Table Check, Verdict, Summary -AutoSize | Out-Host
        $scenarioName = $run.Scenario.ToLowerInvariant()
        if ($run.Verification.Health -ne 'pass') { $failures.Add("${scenarioName}: checklist A (health) did not pass after the rollback") }
        if ($run.Verification.PolicyInvariants -ne 'pass') { $failures.Add("${scenarioName}: checklist B (policy invariants) did not pass after the rollback") }
        if ($run.Verification.ContractSmoke -ne 'pass') { $failures.Add("${scenarioName}: checklist C (contract) did not pass after the rollback") }
        Write-Host "Phases and time to safe: $($run.Scenario)" -ForegroundColor Cyan
        $phases = @(Get-KfmIncident -Id $run.Incident -Phases)
        $phases | Out-Host
        $ranRun = $phases | Where-Object { $_.RunId -like "*/$($run.Rollback.Method.ToString().ToLowerInvariant())#*" } | Select-Object -First 1
        if (-not $ranRun -or $ranRun.TimeToSafeText -notmatch 'safe after') { $failures.Add("${scenarioName}: no time to safe was recorded for the rollback run") }
        Write-Host "Timeline: $($run.Scenario)" -ForegroundColor Cyan
        (Get-KfmIncident -Id $run.Incident).Timeline | ForEach-Object Line | Out-Host
        Write-Host "Receipt: $($run.Scenario)" -ForegroundColor Cyan
        if ($run.Saved) { (Get-KfmRollbackReceipt -Digest $run.Saved.Digest).Receipt.ToJson() | Out-Host } else { $failures.Add("${scenarioName}: no receipt was saved") }
    }
}
catch {
    # A drill that could not run to its end (the lab did not start, a step threw) says why here.
    $failures.Add("the drill stopped: $($_.Exception.Message)")
}
finally {
    Stop-KfmLabProcess $lab
    Stop-KfmLoopbackSlack $slack
    Remove-Item env:KFM_ROLLBACK_CONFIG, env:KFM_DRILL_SLACK_WEBHOOK_URL, env:KFM_LAB_PUBLIC_TOKEN, env:KFM_LAB_STEWARD_TOKEN, env:KFM_LAB_RESTRICTED_IDS -ErrorAction SilentlyContinue
    # The workspace (lab state, clones, the journal) is temporary; what is kept is in out/drill-report.
    Remove-Item $Workspace -Recurse -Force -ErrorAction SilentlyContinue
}

$reportLine = if ($reportPath) { "; report: $(Format-DrillPath $reportPath)" } else { '' }
if ($failures.Count) {
    Write-Host ("DRILL FAILED: " + ($failures -join '; ') + $reportLine) -ForegroundColor Red
    exit 1
}
Write-Host "Receipt$(if ($runs.Count -gt 1) { 's' }): $(($runs | ForEach-Object { $_.Saved.Digest }) -join ', ')"
Write-Host "DRILL PASSED: the API serves $($good.name) again ($($scenarios -join ' and ') path$(if ($scenarios.Count -gt 1) { 's' }))$reportLine" -ForegroundColor Green
