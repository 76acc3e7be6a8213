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
        $incident.RecordPath | Should -Be (Join-Path $dir 'incidents.d/incident/inc-1042.ndjson')
        (Get-Content $incident.RecordPath | ConvertFrom-Json).type | Should -Be 'incident.opened'
    }

    It 'finds the same incident again when a restarted job re-runs the command' {
        $first = New-KfmIncident -Id INC-7 -Commander alice -Reason r -JournalPath $journal -Confirm:$false
        $second = New-KfmIncident -Id INC-7 -Commander alice -Reason r -JournalPath $journal -Confirm:$false
        $second.OpenedAt | Should -Be $first.OpenedAt
        @(Get-Content $second.RecordPath).Count | Should -Be 1
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
        Test-Path (Join-Path $dir 'incidents.d') | Should -BeFalse
    }

    It 'writes nothing under -WhatIf' {
        New-KfmIncident -Id INC-9 -Commander a -Reason r -JournalPath $journal -WhatIf
        Test-Path (Join-Path $dir 'incidents.d') | Should -BeFalse
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
        Test-Path (Join-Path $dir 'journal-from-config/incidents.d/incident/inc-12.ndjson') | Should -BeTrue
        (Get-KfmIncident -Id INC-12 -ConfigPath $config -Environment prod).Environment | Should -Be 'prod'
    }
}

Describe 'A journal cut off mid-write' {
    BeforeEach {
        $dir = New-KfmTestDirectory
        $journal = Join-Path $dir 'incidents.ndjson'
        $incident = New-KfmIncident -Id INC-30 -Commander alice -Reason '5xx spike after deploy' -JournalPath $journal -Confirm:$false
        Add-KfmTimelineEntry -IncidentId INC-30 -Event 'Froze deploys' -JournalPath $journal -Confirm:$false | Out-Null
    }

    It 'keeps every cmdlet working in a fresh pwsh, warns once per command, and appends on a new line' {
        # What a job killed mid-append (or a full disk) leaves: the start of a record, no newline.
        $torn = '{"v":1,"type":"timeline","incident_id":"INC-30","at":"2026-07-04T14:0'
        [IO.File]::AppendAllText($incident.RecordPath, $torn)
        $script = @"
Import-Module '$KfmManifest'
`$i = Get-KfmIncident -Id INC-30 -JournalPath '$journal' -WarningVariable w1 -WarningAction SilentlyContinue
`$again = New-KfmIncident -Id INC-30 -Commander alice -Reason '5xx spike after deploy' -JournalPath '$journal' -Confirm:`$false -WarningVariable w2 -WarningAction SilentlyContinue
`$null = `$i | Add-KfmTimelineEntry -Event 'Rolled back' -Confirm:`$false -WarningVariable w3 -WarningAction SilentlyContinue
# The update reads the whole timeline past the set-aside fragment: it refuses RollingBack, since no rollback is recorded.
`$updateError = try { New-KfmIncidentUpdate -IncidentId INC-30 -Stage RollingBack -JournalPath '$journal' -Confirm:`$false -WarningVariable w4 -WarningAction SilentlyContinue | Out-Null; 'none' } catch { `$_.FullyQualifiedErrorId.Split(',')[0] }
`$after = Get-KfmIncident -Id INC-30 -JournalPath '$journal' -WarningVariable w5 -WarningAction SilentlyContinue
[pscustomobject]@{ W1 = @(`$w1).Count; W2 = @(`$w2).Count; W3 = @(`$w3).Count; W4 = @(`$w4).Count; W5 = @(`$w5).Count; Warning = [string] `$w1[0]
    Opened = `$again.IncidentId; UpdateError = `$updateError; Events = (`$after.Timeline.Event -join '|') } | ConvertTo-Json -Compress
"@
        $out = Invoke-KfmChildPwsh -Script $script | ConvertFrom-Json
        $out.Opened | Should -Be 'INC-30'
        $out.W1 | Should -Be 1 -Because 'reading a torn journal warns once'
        $out.W2 | Should -Be 1
        $out.W3 | Should -Be 1 -Because 'the append that sets the fragment aside says so once'
        $out.W4 | Should -Be 0 -Because 'once set aside, the fragment is never read again'
        $out.W5 | Should -Be 0
        $out.Warning | Should -Match 'cut off mid-write'
        $out.UpdateError | Should -Be 'IncidentUpdateUnsupported'
        $out.Events | Should -Match '^Froze deploys\|Rolled back$'
        # The fragment is left in place, on its own line; the next record starts on a new line.
        $lines = Get-Content $incident.RecordPath
        $lines | Should -Contain $torn
        ($lines[([array]::IndexOf($lines, $torn) + 1)] | ConvertFrom-Json).event | Should -Be 'Rolled back'
        Test-Path "$($incident.RecordPath).set-aside" | Should -BeTrue
    }

    It 'still stops on a damaged complete record' {
        Add-Content $incident.RecordPath '{"v":1,"type":"timeline",BROKEN}'
        $err = { Get-KfmIncident -Id INC-30 -JournalPath $journal } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'IncidentJournalCorrupt,*'
        $err.Exception.Message | Should -Match 'Line 3 of incident journal'
    }

    It 'reads and continues a single-file journal written by an earlier version' {
        $legacy = Join-Path $dir 'legacy/incidents.ndjson'
        New-Item -ItemType Directory (Split-Path $legacy) | Out-Null
        $opened = '{"v":1,"type":"incident.opened","incident_id":"INC-OLD","at":"2026-01-02T03:04:05.000Z","actor":"job","commander":"carol","reason":"old incident","environment":"prod","started_at":"2026-01-02T03:04:05.000Z","impacted_endpoints":[]}'
        Set-Content $legacy $opened
        Add-Content $legacy '{"v":1,"type":"timeline","incident_id":"INC-OLD","at":"2026-01-02T03:10:00.000Z","actor":"carol","role":"IC","event":"Paged"}'
        $before = Get-FileHash $legacy
        (Get-KfmIncident -Id INC-OLD -JournalPath $legacy).Commander | Should -Be 'carol'
        Add-KfmTimelineEntry -IncidentId INC-OLD -Event 'Resolved' -JournalPath $legacy -Confirm:$false | Out-Null
        (Get-KfmIncident -Id INC-OLD -JournalPath $legacy).Timeline.Event | Should -Be @('Paged', 'Resolved')
        (Get-FileHash $legacy).Hash | Should -Be $before.Hash -Because 'the old file is left as it was'
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

Describe 'New-KfmIncidentUpdate -Post' {
    BeforeAll {
        . (Join-Path $PSScriptRoot 'LoopbackSlack.ps1')
    }

    BeforeEach {
        $dir = New-KfmTestDirectory
        $slack = Start-KfmLoopbackSlack -FailFirst 1
        # Nothing listens on this port: the PagerDuty channel keeps failing.
        $deadPort = Get-KfmFreePort
        $secretVariable = 'KFM_TEST_SLACK_' + [Guid]::NewGuid().ToString('N').Substring(0, 8).ToUpperInvariant()
        [Environment]::SetEnvironmentVariable($secretVariable, $slack.WebhookUrl)
        Set-Content -Path (Join-Path $dir 'pd-key') -Value 'R0UT1NGKEYpagerduty0000000000000'
        $config = Join-Path $dir 'kfm-rollback.yaml'
        Set-Content -Path $config -Value @"
defaults:
  incident_journal: journal
  receipt_store: receipts
environments:
  prod:
    cluster:
      namespace: kfm
      deployment: kfm-api
    comms:
      attempts: 2
      timeout: 5s
      channels:
        - name: ops-slack
          kind: slack
          secret_env: $secretVariable
        - name: kfm-pager
          kind: pagerduty
          secret_file: pd-key
          base_url: http://127.0.0.1:$deadPort/
"@
        New-KfmIncident -Id INC-60 -Commander alice -Reason 'leak of burial_sites existence' -ConfigPath $config -Environment prod -Confirm:$false | Out-Null
        $record = (Get-KfmIncident -Id INC-60 -ConfigPath $config -Environment prod).RecordPath
        # What Start-KfmFreeze and Invoke-KfmRollback record (the lab tests make them for real).
        foreach ($text in 'Froze argocd Application argocd/kfm-api (prod)', "Cluster rollback of kfm/kfm-api (image): revision 5 → template of revision 4 (sha256:$('b' * 12) → sha256:$('a' * 12))") {
            [ordered]@{ v = 1; type = 'timeline'; incident_id = 'INC-60'; at = [DateTime]::UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'"); actor = 'test'; role = 'OPS'; event = $text } |
                ConvertTo-Json -Compress | Add-Content -Path $record
        }
    }

    AfterEach {
        Stop-KfmLoopbackSlack $slack
        [Environment]::SetEnvironmentVariable($secretVariable, $null)
    }

    It 'posts the template text to each channel once, names the failing channel, and a rerun posts nothing twice' {
        $posts = New-KfmIncidentUpdate INC-60 RollingBack -Post -ConfigPath $config -Confirm:$false -ErrorVariable failed -ErrorAction SilentlyContinue
        $posts.Channel | Should -Be @('ops-slack', 'kfm-pager')
        $posts.Outcome | Should -Be @('Posted', 'NotPosted')
        $posts[0].Attempts | Should -Be 2 -Because 'the webhook answered 500 first'
        $failed.Count | Should -Be 1
        $failed[0].FullyQualifiedErrorId | Should -BeLike 'IncidentUpdateNotPosted,*'
        $failed[0].Exception.Message | Should -Match 'not posted to channel kfm-pager \(pagerduty\): connection refused or dropped after 2 attempts'
        $messages = @(Get-KfmLoopbackSlackMessage $slack)
        $messages.Count | Should -Be 1
        $messages[0] | Should -Match 'We have initiated a rollback to the last-known-good build'
        $messages[0] | Should -Not -Match 'burial_sites|INC-60'

        $again = New-KfmIncidentUpdate INC-60 RollingBack -Post -ConfigPath $config -Confirm:$false -ErrorVariable failedAgain -ErrorAction SilentlyContinue
        $again.Outcome | Should -Be @('AlreadyPosted', 'NotPosted')
        $failedAgain.Count | Should -Be 1
        @(Get-KfmLoopbackSlackMessage $slack).Count | Should -Be 1 -Because 'the rerun consults the journal first'

        $comms = @((Get-KfmIncident -Id INC-60 -ConfigPath $config -Environment prod).Timeline | Where-Object Role -eq 'COMMS' | ForEach-Object Event)
        @($comms | Where-Object { $_ -eq 'Incident update (RollingBack) posted to ops-slack (slack): HTTP 200 after 2 attempts' }).Count | Should -Be 1
        @($comms | Where-Object { $_ -like 'Incident update (RollingBack) NOT posted to kfm-pager (pagerduty): connection refused or dropped after 2 attempts' }).Count | Should -Be 2
        $stored = Get-ChildItem -Recurse -File $dir | Where-Object Name -like '*.ndjson' | Get-Content -Raw
        ($stored -join "`n") | Should -Not -Match ([regex]::Escape(([Uri]$slack.WebhookUrl).AbsolutePath)) -Because 'the webhook URL is a secret'
        ($failed + $failedAgain | ForEach-Object { $_.Exception.Message }) -join "`n" | Should -Not -Match 'R0UT1NGKEY|services/T0KFMDRILL'
    }

    It 'does not post again blindly after the process was killed mid-post, and -Force does' {
        Stop-KfmLoopbackSlack $slack
        $slack = Start-KfmLoopbackSlack -HoldFirst 60
        [Environment]::SetEnvironmentVariable($secretVariable, $slack.WebhookUrl)
        $script = "Import-Module '$KfmManifest'; New-KfmIncidentUpdate INC-60 RollingBack -Post -ConfigPath '$config' -Confirm:`$false"
        $process = [Environment]::ProcessPath
        $prefix = @(if ([IO.Path]::GetFileNameWithoutExtension($process) -eq 'dotnet') { Join-Path $PSHOME 'pwsh.dll' })
        $encoded = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($script))
        $child = Start-Process -FilePath $process -ArgumentList ($prefix + @('-NoProfile', '-NonInteractive', '-EncodedCommand', $encoded)) -PassThru -RedirectStandardOutput (Join-Path $dir 'child.out') -RedirectStandardError (Join-Path $dir 'child.err')
        try {
            $deadline = [DateTime]::UtcNow.AddSeconds(90)
            while ($slack.Calls.Count -eq 0 -and -not $child.HasExited -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
            $slack.Calls.Count | Should -Be 1 -Because 'the child got as far as sending'
        }
        finally { $child.Kill($true); $child.WaitForExit() }

        $rerun = New-KfmIncidentUpdate INC-60 RollingBack -Post -ConfigPath $config -Confirm:$false -ErrorVariable unsure -ErrorAction SilentlyContinue
        ($rerun | Where-Object Channel -eq 'ops-slack').Outcome | Should -Be 'Unconfirmed'
        @($unsure | Where-Object { $_.FullyQualifiedErrorId -like 'IncidentUpdatePostUnconfirmed,*' }).Count | Should -Be 1
        @($unsure | Where-Object { $_.FullyQualifiedErrorId -like 'IncidentUpdatePostUnconfirmed,*' })[0].Exception.Message | Should -Match 'Check ops-slack; to post it there again, rerun with -Force'
        $slack.Calls.Count | Should -Be 1 -Because 'Slack may already show it: no second message without -Force'

        # The held answer still blocks that one-request-at-a-time server: the channel's webhook moves to a fresh one.
        $killedOn = $slack
        $slack = Start-KfmLoopbackSlack
        [Environment]::SetEnvironmentVariable($secretVariable, $slack.WebhookUrl)
        Stop-KfmLoopbackSlack $killedOn
        $forced = New-KfmIncidentUpdate INC-60 RollingBack -Post -Force -ConfigPath $config -Confirm:$false -ErrorAction SilentlyContinue
        ($forced | Where-Object Channel -eq 'ops-slack').Outcome | Should -Be 'Posted'
        @(Get-KfmLoopbackSlackMessage $slack).Count | Should -Be 1
        $killedOn.Calls.Count | Should -Be 1
    }

    It '-WhatIf names each channel and the text, and sends nothing' {
        $lines = Invoke-KfmChildPwsh -Environment @{ $secretVariable = $slack.WebhookUrl } -Script @"
Import-Module '$KfmManifest'
New-KfmIncidentUpdate INC-60 RollingBack -Post -ConfigPath '$config' -WhatIf
"@
        $text = $lines -join "`n"
        $text | Should -Match 'What if: .*channel ops-slack \(slack\) of incident INC-60'
        $text | Should -Match 'channel kfm-pager \(pagerduty\)'
        $text | Should -Match 'We have initiated a rollback'
        $text | Should -Not -Match '127\.0\.0\.1|services/T0KFMDRILL'
        $slack.Calls.Count | Should -Be 0
        (Get-KfmIncident -Id INC-60 -ConfigPath $config -Environment prod).Timeline.Role | Should -Not -Contain 'COMMS'
    }

    It 'refuses -Post with -NoRecord, and -Post without a comms section names the section' {
        { New-KfmIncidentUpdate INC-60 RollingBack -Post -NoRecord -ConfigPath $config } | Should -Throw -ErrorId 'IncidentUpdatePostNeedsRecord,KfmRollback.Cmdlets.Incidents.NewKfmIncidentUpdateCommand'
        (Get-Content $config -Raw) -replace '(?s)    comms:.*$', '' | Set-Content $config
        $err = { New-KfmIncidentUpdate INC-60 RollingBack -Post -ConfigPath $config -Confirm:$false } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ConfigSectionMissing,*'
        $err.Exception.Message | Should -Match 'environments\.prod\.comms'
    }
}
