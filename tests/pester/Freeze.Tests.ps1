# Freezes belong to incidents: two incidents on one environment each hold the freeze, one's
# Stop-KfmFreeze leaves the controllers frozen while the other is open (and says which), and
# -Force -Reason lifts it for all, on both timelines; image automation freezes with the controllers.

BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    Import-Module $KfmManifest -Force
    $lab = Start-KfmTestLab -TimeScale 10
    # Argo CD's auto-sync, Flux image automation writing into its source, and Argo CD Image Updater on it.
    $script:Config = Join-Path $lab.Directory 'freeze.yaml'
    (Get-Content -Raw $lab.Config) -replace '(?m)^(\s+)- kind: argocd\r?\n\s+name: kfm-api\r?\n\s+namespace: argocd',
        "`$1- kind: argocd`n`$1  name: kfm-api`n`$1  namespace: argocd`n`$1- kind: flux-imageupdateautomation`n`$1  name: kfm-api`n`$1- kind: argocd-image-updater`n`$1  name: kfm-api" |
        Set-Content $Config
    $env:KFM_ROLLBACK_CONFIG = $Config
    $automation = Join-Path $lab.Directory 'iua.yaml'
    @"
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: kfm-api
  namespace: flux-system
  annotations:
    lab.kfm.local/updates: Application/argocd/kfm-api
    lab.kfm.local/latest-image: "$($lab.Facts.catalogue.'good-1.5.1'.image)"
spec:
  interval: 1m
  sourceRef: { kind: GitRepository, name: flux-system }
  update: { path: ./clusters/prod, strategy: Setters }
"@ | Set-Content $automation
    Invoke-KfmLabKubectl $lab apply -f $automation | Out-Null
    Invoke-KfmLabKubectl $lab annotate application kfm-api -n argocd 'argocd-image-updater.argoproj.io/image-list=api=registry.kfm.local/kfm-api' | Out-Null
    foreach ($id in 'INC-A', 'INC-B') {
        New-KfmIncident -Id $id -Commander alice -Reason "regression $id" -Environment lab -Confirm:$false | Out-Null
    }
    function Get-App { (Invoke-KfmLabKubectl $lab get application kfm-api -n argocd -o json) -join "`n" | ConvertFrom-Json -Depth 30 }
    function Get-Automation { (Invoke-KfmLabKubectl $lab get imageupdateautomation kfm-api -n flux-system -o json) -join "`n" | ConvertFrom-Json -Depth 30 }
}

AfterAll {
    Stop-KfmTestLab $lab
    Remove-Item env:KFM_ROLLBACK_CONFIG -ErrorAction SilentlyContinue
}

Describe 'Two incidents, one freeze' {
    It 'freezes the controllers and the image automation for the first incident' {
        $summary = Start-KfmFreeze -IncidentId INC-A -Confirm:$false
        $summary.Complete | Should -BeTrue
        $summary.Mechanisms.Target | Should -Be @('argocd Application argocd/kfm-api', 'flux ImageUpdateAutomation flux-system/kfm-api', 'argocd-image-updater Application argocd/kfm-api')
        (Get-App).spec.syncPolicy.automated | Should -BeNullOrEmpty
        (Get-App).metadata.annotations.'argocd-image-updater.argoproj.io/image-list' | Should -BeNullOrEmpty
        (Get-Automation).spec.suspend | Should -BeTrue
    }

    It 'adds the second incident as a holder, warning that the freeze now lasts for both' {
        $summary = Start-KfmFreeze -IncidentId INC-B -Confirm:$false -WarningVariable warned 3>$null
        $summary.Mechanisms.Holders.IncidentId | Select-Object -Unique | Should -Be @('INC-A', 'INC-B')
        ($warned -join "`n") | Should -Match 'was already frozen for INC-A .*; INC-B holds it too'
        (Get-KfmIncident -Id INC-B).Timeline.Event | Should -Contain 'Joined the freeze of argocd Application argocd/kfm-api (lab), held by INC-A'
        (Get-KfmFreeze | Out-String -Width 120) | Should -Match 'INC-A \(.*\)\s*\r?\n.*INC-B'
    }

    It 'leaves everything frozen when the first incident stops its freeze, naming the incident that holds it' {
        $summary = Stop-KfmFreeze -IncidentId INC-A -Confirm:$false -WarningVariable warned 3>$null
        $summary.Complete | Should -BeFalse
        $summary.Mechanisms.Frozen | Should -Not -Contain $false
        ($warned -join "`n") | Should -Match 'stays frozen: held by INC-B'
        ($warned -join "`n") | Should -Match 'Stop-KfmFreeze -IncidentId INC-B'
        ($warned -join "`n") | Should -Not -Match "Git's pin" -Because 'releasing one hold resumes no controller, so what Git pins does not matter yet'
        (Get-App).spec.syncPolicy.automated | Should -BeNullOrEmpty
        (Get-Automation).spec.suspend | Should -BeTrue
        (Get-KfmIncident -Id INC-A).Timeline.Event | Should -Contain 'Released the freeze of argocd Application argocd/kfm-api (lab); still frozen, held by INC-B'
    }

    It 'does not take -Force alone as a reason to lift another incident''s hold' {
        $summary = Stop-KfmFreeze -IncidentId INC-A -Force -WarningVariable warned 3>$null
        $summary.Mechanisms.Frozen | Should -Not -Contain $false
        ($warned -join "`n") | Should -Match "-Force -Reason '<why>' lifts it for all"
    }

    It 'lifts it for all with -Force -Reason, restoring every setting and recording the override on the other incident''s timeline' {
        $summary = Stop-KfmFreeze -IncidentId INC-A -Force -Reason 'INC-B resolved by the database team' -WarningVariable warned 3>$null
        $summary.Complete | Should -BeTrue
        ($warned -join "`n") | Should -Match 'thawed although INC-B .* held it \(forced\)'
        ($warned -join "`n") | Should -Match "Git's pin was not checked" -Because 'this lab names a GitOps clone that does not exist, and a thaw that resumes controllers says so'
        (Get-App).spec.syncPolicy.automated.selfHeal | Should -BeTrue
        (Get-App).metadata.annotations.'argocd-image-updater.argoproj.io/image-list' | Should -Be 'api=registry.kfm.local/kfm-api'
        (Get-Automation).spec.suspend | Should -BeFalse
        (Get-KfmIncident -Id INC-A).Timeline.Event | Should -Contain 'FORCED thaw of argocd Application argocd/kfm-api (lab) while INC-B held it: INC-B resolved by the database team'
        $actor = (Get-KfmIncident -Id INC-A).Timeline[-1].Actor
        (Get-KfmIncident -Id INC-B).Timeline.Event | Should -Contain "Thawed argocd Application argocd/kfm-api (lab) by INC-A ($actor), overriding this incident's hold: INC-B resolved by the database team"
    }

    It 'changes nothing when the same thaw runs again, and records no second thaw' {
        $before = @((Get-KfmIncident -Id INC-A).Timeline).Count
        $thaws = @((Get-KfmIncident -Id INC-A).Timeline.Event | Where-Object { $_ -match '^(FORCED thaw|Thawed) ' }).Count
        $summary = Stop-KfmFreeze -IncidentId INC-A -Force -Reason 'INC-B resolved by the database team' -WarningVariable warned 3>$null
        $summary.Complete | Should -BeTrue
        $summary.Mechanisms.Frozen | Should -Not -Contain $true
        ($warned -join "`n") | Should -Not -Match 'FORCED|overriding'
        @((Get-KfmIncident -Id INC-A).Timeline.Event | Where-Object { $_ -match '^(FORCED thaw|Thawed) ' }).Count | Should -Be $thaws
        @((Get-KfmIncident -Id INC-A).Timeline).Count - $before | Should -BeLessOrEqual 1 -Because 'at most a note that nothing was frozen'
        (Get-App).spec.syncPolicy.automated.selfHeal | Should -BeTrue
    }

    It 'does not undo a change made after the forced thaw when the overridden incident stops its freeze' {
        Invoke-KfmLabKubectl $lab annotate application kfm-api -n argocd --overwrite 'argocd-image-updater.argoproj.io/image-list=api=registry.kfm.local/kfm-api-canary' | Out-Null
        Invoke-KfmLabKubectl $lab patch imageupdateautomation kfm-api -n flux-system --type merge -p '{"spec":{"suspend":true}}' | Out-Null
        $summary = Stop-KfmFreeze -IncidentId INC-B -Confirm:$false -WarningVariable warned 3>$null
        $summary.Mechanisms.Changed | Should -Not -Contain $true
        ($summary.Mechanisms | Where-Object Target -eq 'flux ImageUpdateAutomation flux-system/kfm-api').Detail | Should -Match 'not by KfmRollback .*left as it is'
        (Get-App).metadata.annotations.'argocd-image-updater.argoproj.io/image-list' | Should -Be 'api=registry.kfm.local/kfm-api-canary'
        (Get-Automation).spec.suspend | Should -BeTrue -Because 'a suspend someone set after the thaw is theirs, not a freeze of this module to lift'
        @((Get-KfmIncident -Id INC-B).Timeline.Event | Where-Object { $_ -match '^(FORCED thaw|Thawed argocd)' -and $_ -notmatch 'by INC-A' }).Count | Should -Be 0
    }
}
