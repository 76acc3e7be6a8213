# Issue 21 item 1: a rollback run's phases and time to safe, on the record, against the lab and a
# real Prometheus: Get-KfmIncident -Phases, the receipt's kfm_integrity.phases and the report's
# phase table and chart all read the same journal.

BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    Import-Module $KfmManifest -Force
    $lab = Start-KfmVerificationLab
    function Deploy([string] $Build) {
        Deploy-KfmLabBuild $lab $Build -TimeoutSeconds 60
    }
    # Frozen first, so Argo CD does not undo the builds deployed by hand below; the incident joins the freeze.
    Start-KfmFreeze -Confirm:$false | Out-Null
    Deploy 'good-1.5.1'
    Start-Sleep -Seconds 6   # a baseline of the good build for Prometheus
    Test-KfmContract -RecordSnapshot | Out-Null
    $script:incidentStart = [DateTimeOffset]::UtcNow
    Deploy 'bad-5xx'
    New-KfmIncident -Id INC-PH -Commander alice -Reason '5xx after deploy' -Environment lab -StartedAt $incidentStart -Confirm:$false | Out-Null
    Start-KfmFreeze -IncidentId INC-PH -Confirm:$false -WarningAction SilentlyContinue | Out-Null
    $script:rollback = Invoke-KfmRollback -Method Cluster -IncidentId INC-PH -Wait -Confirm:$false
    $script:verified = $rollback | Test-KfmRollback -Wait -Timeout 3m
    # The time to safe exists only once checklist A-D passed; on a loaded machine a check may not pass
    # in time, and then every view must say "not safe" instead (the engine tests cover both by hand).
    if (-not $verified.Passed) { $verified.Results | Where-Object Verdict -NE 'Pass' | Format-Table Check, Verdict, Summary -Wrap | Out-String -Width 200 | Write-Host }
    $script:safeText = if ($verified.Passed) { 'safe after .+ from incident start \(.+ from apply\)' } else { 'verification did not pass: not safe' }
    $script:receipt = $verified | New-KfmRollbackReceipt -IncidentId INC-PH -ApprovedBy bob
}

AfterAll {
    Stop-KfmVerificationLab $lab
}

Describe 'Phases and time to safe' {
    It 'lists every phase of the run in order, each with its start and end, under the run''s time to safe' {
        $rollback.Outcome | Should -Be 'Succeeded'
        $phases = @(Get-KfmIncident -Id INC-PH -Phases)
        $phases.Phase | Should -Be @('detect', 'decide', 'freeze', 'apply', 'converge', 'verified')
        foreach ($p in $phases) {
            $p.Start | Should -Not -BeNullOrEmpty -Because $p.Phase
            $p.End | Should -BeGreaterOrEqual $p.Start -Because $p.Phase
            if ($p.Phase -ne 'verified' -or $verified.Passed) { $p.Note | Should -BeNullOrEmpty -Because $p.Phase }
        }
        # The journal keeps times to the millisecond.
        [Math]::Abs(($phases[0].Start - $incidentStart).TotalMilliseconds) | Should -BeLessThan 1
        ($phases | Where-Object Phase -EQ 'apply').Start | Should -BeGreaterOrEqual ($phases | Where-Object Phase -EQ 'freeze').End
        ($phases | Where-Object Phase -EQ 'verified').End | Should -BeGreaterThan ($phases | Where-Object Phase -EQ 'converge').End
        $phases[0].TimeToSafeText | Should -Match "^INC-PH/lab/cluster#1: $safeText`$"
    }

    It 'prints a table an operator can read: the run and its time to safe on top, one row per phase' {
        $text = Get-KfmIncident -Id INC-PH -Phases | Out-String -Width 120
        $text | Should -Match "Run: INC-PH/lab/cluster#1: $safeText"
        $text | Should -Match '(?m)^Phase\s+Start \(UTC\)\s+End \(UTC\)\s+Took'
        $text | Should -Match '(?m)^converge\s+\d\d:\d\d:\d\d\.\d{3}\s+\d\d:\d\d:\d\d\.\d{3}\s+\d+\.\ds'
        (Get-KfmIncident -Id INC-PH | Out-String -Width 200) | Should -Match "Time to safe\s*:\s*INC-PH/lab/cluster#1: $safeText"
    }

    It 'records the phases and the time to safe in the receipt, leaving the runbook''s fields as they are' {
        $phases = $receipt.KfmIntegrity.Phases
        $phases.Run | Should -Be 'INC-PH/lab/cluster#1'
        $phases.Spans.Phase | Should -Be @('detect', 'decide', 'freeze', 'apply', 'converge', 'verified')
        $run = Get-KfmIncident -Id INC-PH -Phases
        if ($verified.Passed) {
            $phases.TimeToSafeMs | Should -BeGreaterThan $phases.TimeToSafeFromApplyMs
            $verifiedEnd = ($run | Where-Object Phase -EQ 'verified').End
            [Math]::Abs($phases.TimeToSafeMs - ($verifiedEnd - $incidentStart).TotalMilliseconds) | Should -BeLessOrEqual 1
        }
        else {
            $phases.TimeToSafeMs | Should -BeNullOrEmpty
            $phases.TimeToSafeFromApplyMs | Should -BeNullOrEmpty
        }
        $json = $receipt.ToJson() | ConvertFrom-Json -AsHashtable -DateKind String
        $json.started_at | Should -Match '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$'
        $json.kfm_integrity.phases.spans[0].start | Should -Match '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$'
    }

    It 'writes the phase table and the phase chart into the report, next to the plots' {
        $report = Export-KfmIncidentReport -IncidentId INC-PH -Confirm:$false
        $chart = @($report.Plots | Where-Object Name -Like 'phases-*')
        $chart.Count | Should -Be 1
        (Get-Item $chart[0].PngPath).Length | Should -BeGreaterThan 5000
        $html = Get-Content -Raw $report.HtmlPath
        $html | Should -Match '<h2>Phases and time to safe</h2>'
        $html | Should -Match "INC-PH/lab/cluster#1: $safeText"
        $html | Should -Match ('alt="Phases of run INC-PH/lab/cluster#1')
    }

    It 'says so, as a non-terminating error, for an incident with no rollback run' {
        New-KfmIncident -Id INC-PH-NONE -Commander alice -Reason 'no run' -Environment lab -Confirm:$false | Out-Null
        $out = Get-KfmIncident -Id INC-PH-NONE -Phases -ErrorVariable failed -ErrorAction SilentlyContinue
        $out | Should -BeNullOrEmpty
        $failed[0].FullyQualifiedErrorId | Should -BeLike 'IncidentHasNoRun*'
        $failed[0].Exception.Message | Should -Match 'Invoke-KfmRollback -IncidentId INC-PH-NONE'
    }
}
