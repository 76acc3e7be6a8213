# Incidents as an operator or a restarted automation job uses them.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Import-Module $KfmManifest -Force
}

Describe 'New-KfmIncident / Get-KfmIncident / Add-KfmTimelineEntry' {
    BeforeEach {
        $dir = New-KfmTestDirectory
        $journal = Join-Path $dir 'incidents.ndjson'
    }

    It 'records the runbook prerequisites and shows the start in UTC and Chicago' {
        $start = [DateTimeOffset]::Parse('2026-03-02T15:04:05Z')
        $incident = New-KfmIncident -Id INC-1042 -Commander alice -Reason '5xx spike after deploy' -StartedAt $start `
            -ImpactedEndpoint 'public:/api/v1/stac/items', 'restricted:/api/v1/datasets/{id}' -JournalPath $journal -Confirm:$false
        $incident.IncidentId | Should -Be 'INC-1042'
        $incident.StartedAtUtc | Should -Be '2026-03-02 15:04:05 UTC'
        $incident.StartedAtChicago | Should -Be '2026-03-02 09:04:05 CST (UTC-06:00)'
        $incident.ImpactedEndpoints.Exposure | Should -Be @('Public', 'Restricted')
        (Get-Content $journal | ConvertFrom-Json).type | Should -Be 'incident.opened'
    }

    It 'finds the same incident again when a restarted job re-runs the command' {
        $first = New-KfmIncident -Id INC-7 -Commander alice -Reason r -JournalPath $journal -Confirm:$false
        $second = New-KfmIncident -Id INC-7 -Commander alice -Reason r -JournalPath $journal -Confirm:$false
        $second.OpenedAt | Should -Be $first.OpenedAt
        @(Get-Content $journal).Count | Should -Be 1
    }

    It 'refuses a different incident under an existing id with a stable error id' {
        New-KfmIncident -Id INC-7 -Commander alice -Reason r -JournalPath $journal -Confirm:$false | Out-Null
        { New-KfmIncident -Id INC-7 -Commander bob -Reason other -JournalPath $journal -Confirm:$false } |
            Should -Throw -ErrorId 'IncidentAlreadyExists,KfmRollback.Cmdlets.Incidents.NewKfmIncidentCommand'
    }

    It 'refuses an endpoint without public/restricted marking' {
        $err = { New-KfmIncident -Id INC-8 -Commander a -Reason r -ImpactedEndpoint '/api/v1/x' -JournalPath $journal -Confirm:$false } |
            Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ImpactedEndpointUnmarked,*'
        $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
        Test-Path $journal | Should -BeFalse
    }

    It 'writes nothing under -WhatIf' {
        New-KfmIncident -Id INC-9 -Commander a -Reason r -JournalPath $journal -WhatIf
        Test-Path $journal | Should -BeFalse
    }

    It 'appends timeline entries through the pipeline, keeping the incident''s journal' {
        New-KfmIncident -Id INC-10 -Commander alice -Reason r -JournalPath $journal -Confirm:$false |
            Add-KfmTimelineEntry -Role IC -Event 'Froze deploys' -Confirm:$false | Out-Null
        Add-KfmTimelineEntry -IncidentId INC-10 -Event 'Rolled back' -JournalPath $journal -At ([DateTimeOffset]::Parse('2026-03-02T16:20:00Z')) -Confirm:$false | Out-Null
        $timeline = (Get-KfmIncident -Id INC-10 -JournalPath $journal).Timeline
        $timeline.Count | Should -Be 2
        $timeline[0].Line | Should -Match '^\d\d:\d\d UTC  IC  Froze deploys$'
        $timeline[1].Line | Should -Be '16:20 UTC  OPS  Rolled back'
    }

    It 'reports an unknown incident as ObjectNotFound' {
        New-KfmIncident -Id INC-11 -Commander a -Reason r -JournalPath $journal -Confirm:$false | Out-Null
        $err = { Get-KfmIncident -Id INC-404 -JournalPath $journal } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'IncidentNotFound,*'
        $err.CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'uses the journal the configuration names' {
        $config = Join-Path $dir 'kfm-rollback.yaml'
        (Get-Content -Raw (Join-Path $KfmModulePath 'kfm-rollback.example.yaml')) -replace 'incident_journal: ops/incidents', 'incident_journal: journal-from-config' |
            Set-Content $config
        New-KfmIncident -Id INC-12 -Commander a -Reason r -ConfigPath $config -Environment prod -Confirm:$false | Out-Null
        Test-Path (Join-Path $dir 'journal-from-config/incidents.ndjson') | Should -BeTrue
        (Get-KfmIncident -Id INC-12 -ConfigPath $config -Environment prod).Environment | Should -Be 'prod'
    }
}

Describe 'New-KfmIncidentUpdate' {
    BeforeEach {
        $dir = New-KfmTestDirectory
        $journal = Join-Path $dir 'incidents.ndjson'
        New-KfmIncident -Id INC-20 -Commander alice -Reason 'leak of burial_sites existence' -JournalPath $journal -Confirm:$false | Out-Null
        # What Start-KfmFreeze and Invoke-KfmRollback record, written to the journal as they write it
        # (the lab tests make them for real; Add-KfmTimelineEntry refuses these forms).
        function Add-StepEvent([string] $Text) {
            [ordered]@{ v = 1; type = 'timeline'; incident_id = 'INC-20'; at = [DateTime]::UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'"); actor = 'test'; role = 'OPS'; event = $Text } |
                ConvertTo-Json -Compress | Add-Content -Path $journal
        }
        Add-StepEvent 'Froze argocd Application argocd/kfm-api (prod)'
        Add-StepEvent "Cluster rollback of kfm/kfm-api (image): revision 5 → template of revision 4 (sha256:$('b' * 12) → sha256:$('a' * 12))"
    }

    It 'writes the runbook''s template and records in the timeline that it was posted' {
        $update = Get-KfmIncident -Id INC-20 -JournalPath $journal | New-KfmIncidentUpdate -Stage RollingBack -NextUpdateIn 45m -Confirm:$false
        $update.Text | Should -Match '^Update \(\d{4}-\d\d-\d\d \d\d:\d\d UTC / (\d{4}-\d\d-\d\d )?\d\d:\d\d C[DS]T\): We identified a regression in the KFM API deployment affecting availability and/or policy enforcement\. We have initiated a rollback to the last-known-good build and are verifying service health and safety invariants\. Next update in: 45 minutes \(by \d\d:\d\d UTC\)\.$'
        $update.Text | Should -Not -Match 'burial_sites' -Because 'the incident reason never reaches an update'
        $entry = (Get-KfmIncident -Id INC-20 -JournalPath $journal).Timeline | Select-Object -Last 1
        $entry.Role | Should -Be 'COMMS'
        $entry.Event | Should -BeLike 'Incident update posted (RollingBack); next update by *'
    }

    It 'records nothing for a draft or under -WhatIf' {
        New-KfmIncidentUpdate INC-20 RollingBack -NoRecord -JournalPath $journal | Out-Null
        $draft = New-KfmIncidentUpdate INC-20 RollingBack -JournalPath $journal -WhatIf
        $draft.Stage | Should -Be 'RollingBack'
        (Get-KfmIncident -Id INC-20 -JournalPath $journal).Timeline.Role | Should -Not -Contain 'COMMS'
    }

    It 'refuses a stage the timeline does not support, draft or not, and offers the one that fits' {
        $err = { New-KfmIncidentUpdate INC-20 Verifying -NoRecord -JournalPath $journal } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'IncidentUpdateUnsupported,*'
        $err.CategoryInfo.Category | Should -Be 'InvalidOperation'
        $err.Exception.Message | Should -Match 'no finished rollout'
        $err.Exception.Message | Should -Match '-Stage RollingBack'
        $err = { New-KfmIncidentUpdate INC-20 Resolved -JournalPath $journal -Confirm:$false } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'IncidentUpdateUnsupported,*'
        (Get-KfmIncident -Id INC-20 -JournalPath $journal).Timeline.Role | Should -Not -Contain 'COMMS'
    }

    It 'keeps the forms the cmdlets record for themselves' {
        $err = { Add-KfmTimelineEntry -IncidentId INC-20 -Event 'Rollout of kfm/kfm-api complete: by hand' -JournalPath $journal -Confirm:$false } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'TimelineEventReserved,*'
        Add-KfmTimelineEntry -IncidentId INC-20 -Event 'Rolled back by hand with kubectl rollout undo' -JournalPath $journal -Confirm:$false | Out-Null
        $err = { New-KfmIncidentUpdate INC-20 Verifying -JournalPath $journal -Confirm:$false } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'IncidentUpdateUnsupported,*' -Because 'a person''s own words prove no rollout'
    }

    It 'refuses an unknown stage, a timebox past a day and an unknown incident with clear errors' {
        { New-KfmIncidentUpdate INC-20 Mitigated -JournalPath $journal } | Should -Throw -ErrorId 'CannotConvertArgumentNoMessage,KfmRollback.Cmdlets.Incidents.NewKfmIncidentUpdateCommand'
        $err = { New-KfmIncidentUpdate INC-20 RollingBack -NextUpdateIn 2d -JournalPath $journal -Confirm:$false } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'IncidentUpdateTimeboxInvalid,*'
        $err.Exception.Message | Should -Match '\(got 2d\)' -Because 'an unquoted 2d is PowerShell''s decimal 2, read as two days'
        $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $err = { New-KfmIncidentUpdate INC-404 RollingBack -JournalPath $journal -Confirm:$false } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'IncidentNotFound,*'
    }
}
