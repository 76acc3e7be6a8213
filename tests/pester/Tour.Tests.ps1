# The README's quick tour, run as written in README.md, against the lab as build.ps1 -Task Lab starts it
# (Start-KfmTourLab: the same process, Prometheus, setup script and out/lab files): every check of
# checklist A-D passes, the receipt is in the configured store, the report finds it and the refs, and
# what an operator reads (the default views at 120 columns, the report) shows what the next command needs.

BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    $script:Workspace = New-KfmTestDirectory
    $script:LabDirectory = Join-Path $Workspace 'out/lab'
    New-Item -ItemType Directory -Force $LabDirectory | Out-Null
    $script:LabProcess = Start-KfmTourLab -LabDll $script:LabDll -Directory $LabDirectory -ModulePath $KfmModulePath
    $script:Facts = Get-Content -Raw (Join-Path $LabDirectory 'lab.json') | ConvertFrom-Json
    $script:Good = $Facts.catalogue.'good-1.5.1'.digest
    $script:Bad = $Facts.catalogue.'bad-5xx'.digest

    # The tour exactly as README.md has it (the shell block that follows the one that starts the lab).
    $readme = Get-Content -Raw (Join-Path $PSScriptRoot '../../README.md')
    $section = $readme.Substring($readme.IndexOf('## A quick tour'))
    $script:Tour = [regex]::Matches($section, '(?s)```powershell\r?\n(.*?)```')[0].Groups[1].Value
    # A person answers the prompts; a test says yes to them up front and stops at the first error.
    $prelude = "`$ConfirmPreference = 'None'; `$ErrorActionPreference = 'Stop'; `$ProgressPreference = 'SilentlyContinue'`n"
    # What the tour left behind, and the default views as an operator sees them in a 120-column terminal.
    $epilogue = @'

function View($Object) { ($Object | Out-String -Width 120 -Stream | ForEach-Object TrimEnd) -join "`n" }
[pscustomobject]@{
    Results  = @($verified.Results | Select-Object Check, @{ n = 'Verdict'; e = { "$($_.Verdict)" } }, Summary)
    Head     = $head.ChainHead
    Receipt  = $head.Digest
    Html     = $report.HtmlPath
    Markdown = $report.MarkdownPath
    Timeline = @((Get-KfmIncident -Id INC-1042).Timeline.Event)
    LastKnownGoodRef = (Get-KfmApiRef -Environment lab).LastKnownGoodRef
    Views    = [ordered]@{
        ApiRef   = View (Get-KfmApiRef -Environment lab)
        History  = View (Get-KfmRolloutHistory -Environment lab)
        Plan     = View $plan
        Timeline = View (Get-KfmIncident -Id INC-1042).Timeline
        Checks   = View $verified.Results
        Freeze   = View (Get-KfmFreeze -Environment lab)
    }
} | ConvertTo-Json -Depth 6 | Set-Content -Path ./tour-result.json
'@
    Push-Location $Workspace
    try {
        $output = Invoke-KfmChildPwsh -Script ($prelude + $Tour + $epilogue)
    }
    finally { Pop-Location }
    $script:TourOutput = $output -join "`n"
    $script:Result = Get-Content -Raw (Join-Path $Workspace 'tour-result.json') | ConvertFrom-Json
}

AfterAll {
    Stop-KfmTestLab ([pscustomobject]@{ Process = $LabProcess })
    Remove-Item $Workspace -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'The README quick tour against build.ps1 -Task Lab' {
    It 'is the tour the README shows, on the lab''s own environment and configured stores' {
        $Tour | Should -Match '\. \./out/lab/lab\.env\.ps1'
        $Tour | Should -Match 'Save-KfmEvidence'
        $Tour | Should -Not -Match '-Store' -Because 'the tour uses the configured receipt store'
        Test-Path (Join-Path $LabDirectory 'lab.env.ps1') | Should -BeTrue
    }

    It 'ends with every check of A-D passing' {
        $Result.Results.Count | Should -BeGreaterThan 15
        foreach ($section in 'A.', 'B.', 'C.', 'D.') { ($Result.Results | Where-Object Check -Like "$section*").Count | Should -BeGreaterThan 0 -Because "section $section ran" }
        $failing = $Result.Results | Where-Object Verdict -NE 'Pass' | ForEach-Object { "$($_.Check): $($_.Verdict): $($_.Summary)" }
        $failing | Should -BeNullOrEmpty
    }

    It 'stores the receipt in the configured store and verifies the chain, and the report finds the receipt and the refs' {
        Test-Path (Join-Path $LabDirectory "state/receipts/$($Result.Receipt.Substring(7)).json") | Should -BeTrue
        Test-Path (Join-Path $Workspace 'receipts') | Should -BeFalse -Because 'nothing bypasses the configured store'
        $markdown = Get-Content -Raw $Result.Markdown
        $markdown | Should -Match ([regex]::Escape("| rollback receipt | $($Result.Receipt) |"))
        $markdown | Should -Match ([regex]::Escape("| receipt ledger chain head (anchor) | $($Result.Head) |"))
        $markdown | Should -Not -Match 'No rollback receipt is stored'
        $markdown | Should -Not -Match 'No refs were captured'
        $markdown | Should -Match ([regex]::Escape("| running at first evidence | $Bad |"))
        $markdown | Should -Match ([regex]::Escape("| running at last evidence | $Good |"))
    }

    It 'records each change once, by the cmdlet that made it, and posts the Resolved update the timeline supports' {
        @($Result.Timeline | Where-Object { $_ -like 'Froze *' }) | Should -Be @('Froze argocd Application argocd/kfm-api (lab)')
        $Result.Timeline | Should -Contain 'Incident update posted (Resolved)'
        $TourOutput | Should -Match 'service health and safety invariants have been verified'
    }

    It 'names files in the report and the timeline relative to the store, never by this machine''s paths' {
        $followUp = $Result.Timeline | Where-Object { $_ -like 'Follow-up opened:*' }
        $followUp | Should -Match '^Follow-up opened: reports/INC-1042/INC-1042-follow-up\.md;'
        foreach ($file in $Result.Markdown, $Result.Html, (Join-Path (Split-Path $Result.Markdown) 'INC-1042-follow-up.md')) {
            Get-Content -Raw $file | Should -Not -Match ([regex]::Escape($Workspace)) -Because "$file is kept after this machine's folders are gone"
        }
    }

    It 'writes HTML whose tables have real header rows and wrap instead of overflowing' {
        $html = Get-Content -Raw $Result.Html
        $html | Should -Match '<table><thead><tr><th scope="col">check</th><th scope="col">verdict</th><th scope="col">summary</th></tr></thead>'
        $html | Should -Not -Match '<td>check</td>' -Because 'a header is never a data row'
        $html | Should -Match 'td\{overflow-wrap:anywhere\}' -Because 'a digest breaks rather than widening its table past the page'
        # Only short cells keep one line (the timeline's times and role, verdicts); nothing long may widen a table.
        ([regex]::Matches($html, 'white-space:nowrap')).Count | Should -Be 1
        $html | Should -Match 'table\.timeline td:nth-child\(-n\+3\),td\.Pass,td\.Fail,td\.Inconclusive\{white-space:nowrap\}'
    }

    It 'shows at 120 columns the whole digests and revisions the next command takes' {
        # The property Invoke-KfmRollback -ToRef binds, whole (which digest it is, is the last-known-good authority's to say).
        if ($Result.LastKnownGoodRef) { $Result.Views.ApiRef | Should -Match "LastKnownGoodRef\s+: $($Result.LastKnownGoodRef)" }
        else { $Result.Views.ApiRef | Should -Match 'LastKnownGoodRef\s+:' }
        $Result.Views.ApiRef | Should -Match "CurrentRef\s+: $Good"
        foreach ($digest in $Good, $Bad) { $Result.Views.History | Should -Match ([regex]::Escape($digest)) }
        $Result.Views.History | Should -Match '\* 6 sha256:'
        $Result.Views.Plan | Should -Match "RollbackTargetRef : $Good \(previous-revision\)"
        $Result.Views.Plan | Should -Match 'ToRevision\s+: 4'
        $Result.Views.Plan | Should -Match 'GitOps: not chosen: GitOps not usable'
        $Result.Views.Plan | Should -Match 'Cluster: chosen: '
        $Result.Views.Plan | Should -Match 'Helm: not chosen: '
        foreach ($view in $Result.Views.PSObject.Properties) {
            $view.Value | Should -Not -Match '…' -Because "the $($view.Name) view wraps rather than cuts"
            ($view.Value -split "`n" | Where-Object { $_.Length -gt 120 }) | Should -BeNullOrEmpty -Because "the $($view.Name) view fits 120 columns"
        }
        $Result.Views.Freeze | Should -Match 'INC-1042'
    }
}

Describe 'Short digests copied from the tables' {
    BeforeAll {
        $env:KFM_ROLLBACK_CONFIG = Join-Path $LabDirectory 'kfm-rollback.yaml'
        Import-Module $KfmManifest -Force
    }
    AfterAll { Remove-Item env:KFM_ROLLBACK_CONFIG -ErrorAction SilentlyContinue }

    It 'accepts sha256: and 12 hex as -ToRef, resolved against the Deployment''s history' {
        # The tour rolled back from the bad build, so it is quarantined now: the refusal names the whole
        # digest the prefix resolved to.
        $err = { Get-KfmRollbackPlan -IncidentId INC-1042 -ToRef $Bad.Substring(0, 19) -WarningAction SilentlyContinue } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'RollbackTargetQuarantined,*'
        $err.Exception.Message | Should -Match ([regex]::Escape($Bad))
        # Bare hex works too; -WhatIf plans (and so resolves) without sending anything, here with the override a quarantined target needs.
        { Invoke-KfmRollback -Method Cluster -IncidentId INC-1042 -ToRef $Bad.Substring(7, 12) -Force -ForceReason 'tour test: a bare-hex prefix resolves' -WhatIf } | Should -Not -Throw
    }

    It 'refuses a prefix no revision has, naming the digests it has' {
        $err = { Invoke-KfmRollback -Method Cluster -IncidentId INC-1042 -ToRef 'sha256:0123456789ab' -WhatIf } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'DigestPrefixUnknown,*'
        $err.Exception.Message | Should -Match ([regex]::Escape($Good))
        $err = { Invoke-KfmRollback -Method Cluster -IncidentId INC-1042 -ToRef 'sha256:6bee' -WhatIf } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'DigestPrefixTooShort,*'
    }
}
