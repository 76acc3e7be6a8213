# Evidence and aftermath (issue 12) against the lab and a real Prometheus: the bundle is verified
# with the receipts (a changed or removed file is caught), and planted secrets and restricted ids
# appear in no bundle file, plot, report, follow-up, error or stream.

BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    Import-Module $KfmManifest -Force
    $lab = Start-KfmVerificationLab
    # Canaries: a credential in the Deployment's env, and a restricted id in a label and an env value.
    $script:SecretCanary = 'ghp_' + ('Zq7' * 12)
    $script:Restricted = 'burial_sites'
    Invoke-KfmLabKubectl $lab set env deployment/kfm-api -n kfm -c api "API_TOKEN=$SecretCanary" "NOTE=see $Restricted and token=$SecretCanary" | Out-Null
    Invoke-KfmLabKubectl $lab label deployment/kfm-api -n kfm "kfm.dev/case=$Restricted" | Out-Null
    Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api -n kfm --timeout=60s | Out-Null
    Start-Sleep -Seconds 6   # a few scrapes, so the ranges have samples to plot

    $script:incident = New-KfmIncident -Id ('EVD-' + [Guid]::NewGuid().ToString('N').Substring(0, 8)) -Commander ic -Reason 'evidence test' `
        -Environment lab -StartedAt ([DateTimeOffset]::UtcNow.AddSeconds(-20)) -ImpactedEndpoint 'restricted:/api/v1/datasets/{id}' -Confirm:$false
    $script:streams = $( $script:bundle = $incident | Start-KfmFreeze -Confirm:$false | Save-KfmEvidence -Stage freeze -Confirm:$false -Verbose ) 4>&1 3>&1 2>&1 | Out-String
}

AfterAll {
    Stop-KfmVerificationLab $lab
}

Describe 'Save-KfmEvidence' {
    It 'writes a content-addressed bundle with every file in its manifest' {
        $bundle.Digest | Should -Match '^sha256:[0-9a-f]{64}$'
        Split-Path $bundle.Directory -Leaf | Should -Be $bundle.Digest.Substring(7)
        $bundle.Files.Path | Should -Contain 'cluster/deployment.json'
        $bundle.Files.Path | Should -Contain 'metrics/ranges.json'
        $bundle.Files.Path | Should -Contain 'api/audit-refs.json'
        foreach ($f in $bundle.Files) {
            (Get-FileHash -Algorithm SHA256 (Join-Path $bundle.Directory $f.Path)).Hash.ToLowerInvariant() | Should -Be $f.Sha256
        }
        (Get-Content -Raw (Join-Path $bundle.Directory 'api/audit-refs.json') | ConvertFrom-Json).from_probes | Should -Match '^kfm://'
        (Get-KfmIncident -Id $incident.IncidentId).Timeline.Event | Should -Contain "Evidence saved (freeze): bundle $($bundle.Digest) ($($bundle.Files.Count) files)"
    }

    It 'keeps the Prometheus values of 5xx ratio, P95 and P99' {
        $ranges = Get-Content -Raw (Join-Path $bundle.Directory 'metrics/ranges.json') | ConvertFrom-Json
        foreach ($m in 'error_ratio', 'p95', 'p99') { @($ranges.series.$m.values).Count | Should -BeGreaterThan 0 -Because $m }
    }
}

Describe 'Receipt, report and follow-up' {
    BeforeAll {
        $script:outputs = $(
            $script:receipt = New-KfmRollbackReceipt -IncidentId $incident.IncidentId -Environment lab -ApprovedBy bob -StartedAt $incident.StartedAt `
                -CurrentRef (New-KfmTestDigest 'a') -RollbackTargetRef (New-KfmTestDigest 'b') -ChangedSurface api -Health pass -PolicyInvariants pass -ContractSmoke pass
            $script:saved = $receipt | Save-KfmRollbackReceipt -Environment lab -Confirm:$false
            # The report covers the timeline up to its export; what comes after (its own entry, the follow-up) is not in it.
            $script:reported = (Get-KfmIncident -Id $incident.IncidentId).Timeline
            $script:report = Export-KfmIncidentReport -IncidentId $incident.IncidentId -Confirm:$false -Verbose
            $script:followUp = New-KfmFollowUp -IncidentId $incident.IncidentId -Confirm:$false -Verbose
            $script:again = New-KfmFollowUp -IncidentId $incident.IncidentId -Confirm:$false
        ) 4>&1 3>&1 2>&1 | Out-String
    }

    It 'records the bundle in the receipt and verifies it' {
        $receipt.KfmIntegrity.Subjects.Name | Should -Contain "evidence/$($bundle.Digest.Substring(7))"
        (Test-KfmRollbackReceipt -Environment lab).IsValid | Should -BeTrue
    }

    It 'writes the report with every timeline entry in UTC and America/Chicago, and two plots' {
        $text = Get-Content -Raw $report.MarkdownPath
        $reported.Count | Should -BeGreaterThan 0
        foreach ($entry in $reported) {
            $text | Should -Match ([regex]::Escape($entry.At.UtcDateTime.ToString('yyyy-MM-dd HH:mm:ss') + ' UTC'))
        }
        $text | Should -Match 'C[DS]T \(UTC-0[56]:00\)'
        $text | Should -Match ([regex]::Escape($saved.ChainHead))
        $report.Plots.Count | Should -Be 2
        (Get-Content -Raw $report.HtmlPath) | Should -Match 'data:image/png;base64,'
    }

    It 'opens the follow-up once, with the runbook items and the pending thaw' {
        $followUp.Created | Should -BeTrue
        $again.Created | Should -BeFalse
        $again.Location | Should -Be $followUp.Location
        $followUp.Items | Should -Contain 'Add tests that would have caught the regression'
        ($followUp.Items -join "`n") | Should -Match 'still frozen'
    }

    It 'plants no secret or restricted id in any bundle file, plot, report, follow-up, error or stream' {
        $files = Get-ChildItem -Recurse -File $bundle.Directory, (Split-Path $report.MarkdownPath)
        $files.Count | Should -BeGreaterThan 10
        foreach ($file in $files) {
            $bytes = [IO.File]::ReadAllText($file.FullName)
            $bytes | Should -Not -Match ([regex]::Escape($SecretCanary)) -Because $file.FullName
            $bytes | Should -Not -Match ([regex]::Escape($Restricted)) -Because $file.FullName
        }
        foreach ($text in $streams, $outputs, ($Error | Out-String)) {
            $text | Should -Not -Match ([regex]::Escape($SecretCanary))
            $text | Should -Not -Match ([regex]::Escape($Restricted))
        }
        (Get-Content -Raw (Join-Path $bundle.Directory 'cluster/deployment.json')) | Should -Match 'REDACTED'
    }

    It 'detects a changed and a removed evidence file' {
        $events = Join-Path $bundle.Directory 'cluster/events.json'
        $pods = Join-Path $bundle.Directory 'cluster/pods.json'
        $aside = Join-Path ([IO.Path]::GetTempPath()) "pods-$([Guid]::NewGuid().ToString('N')).json"
        $original = [IO.File]::ReadAllBytes($events)
        try {
            Add-Content $events ' '
            $r = Test-KfmRollbackReceipt -Environment lab -ErrorAction SilentlyContinue
            $r.IsValid | Should -BeFalse
            ($r.Problems | Where-Object Kind -EQ 'EvidenceInvalid').Detail | Should -Match 'events.json.*changed'
            [IO.File]::WriteAllBytes($events, $original)
            Move-Item $pods $aside
            $r = Test-KfmRollbackReceipt -Environment lab -ErrorAction SilentlyContinue
            ($r.Problems | Where-Object Kind -EQ 'EvidenceInvalid').Detail -join "`n" | Should -Match 'pods.json.*removed'
            { Test-KfmRollbackReceipt -Environment lab -ErrorAction Stop } | Should -Throw -ErrorId 'EvidenceInvalid*'
        }
        finally {
            [IO.File]::WriteAllBytes($events, $original)
            if (Test-Path $aside) { Move-Item $aside $pods -Force }
        }
        (Test-KfmRollbackReceipt -Environment lab).IsValid | Should -BeTrue
    }
}
