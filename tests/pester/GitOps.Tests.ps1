# The preferred path: a rollback branch and pull request in a real git repository (file remote),
# and drift between Git and the lab cluster.

BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    Import-Module $KfmManifest -Force
    $lab = Start-KfmTestLab
    $catalogue = $lab.Facts.catalogue
    $good = $catalogue.'good-1.5.1'.digest
    $bad = $catalogue.'bad-5xx'.digest

    # A deploy repository with the API pinned to the good build, then to the bad one.
    $repo = New-KfmTestDeployRepository -Directory $lab.Directory -Digests $good, $bad -Messages 'deploy kfm-api 1.5.1', 'deploy kfm-api 1.6.0'
    $bare = $repo.Bare
    $work = $repo.Work

    $config = Join-Path $lab.Directory 'gitops.yaml'
    (Get-Content -Raw $lab.Config) -replace '      path: gitops', "      url: file://$bare" | Set-Content $config
    $env:KFM_ROLLBACK_CONFIG = $config
    New-KfmIncident -Id INC-GIT -Commander alice -Reason 'bad deploy 1.6.0' -Environment lab -Confirm:$false | Out-Null
}

AfterAll {
    Stop-KfmTestLab $lab
    Remove-Item env:KFM_ROLLBACK_CONFIG -ErrorAction SilentlyContinue
}

Describe 'GitOps rollback' {
    It 'reads the desired ref and its last-known-good from Git history' {
        $ref = Get-KfmApiRef -Source GitOps
        $ref.Source | Should -Be 'GitOps'
        $ref.CurrentRef | Should -Be $bad
        $ref.LastKnownGoodRef | Should -Be $good
        $ref.LastKnownGoodSource | Should -Be 'git-history'
        $ref.Commit | Should -Be (git -C $work rev-parse HEAD)
    }

    It 'pushes nothing under -WhatIf' {
        $before = git -C $bare for-each-ref --format='%(refname)'
        Invoke-KfmRollback -Method GitOps -IncidentId INC-GIT -WhatIf
        git -C $bare for-each-ref --format='%(refname)' | Should -Be $before
    }

    It 'pushes a rollback branch whose diff changes only the ref line' {
        $result = Get-KfmApiRef -Source GitOps -IncidentId INC-GIT | Invoke-KfmRollback -Method GitOps -Confirm:$false
        $result.Outcome | Should -Be 'PendingMerge'
        $result.Branch | Should -Match '^ops/rollback-api-\d{8}-\d{4}'
        $result.RollbackTargetRef | Should -Be $good
        git -C $bare rev-parse --verify -q "refs/heads/$($result.Branch)" | Should -Not -BeNullOrEmpty
        $diff = git -C $bare diff "main..$($result.Branch)" --unified=0 | Where-Object { $_ -match '^[+-][^+-]' }
        $diff | Should -Be @("-    digest: $bad", "+    digest: $good")
        $message = git -C $bare log -1 --format=%B $result.Branch
        ($message -join "`n") | Should -Match 'Incident: INC-GIT'
        ($message -join "`n") | Should -Match "Last-Good-Ref: $good"
        (Get-KfmIncident INC-GIT).Timeline.Event | Where-Object { $_ -like 'GitOps rollback of lab*' } | Should -Not -BeNullOrEmpty
    }

    It 'finds the same branch again when rerun for the same incident' {
        $first = git -C $bare for-each-ref --format='%(refname)' refs/heads/ops
        $again = Invoke-KfmRollback -Method GitOps -IncidentId INC-GIT -ToRef $good -Confirm:$false
        git -C $bare for-each-ref --format='%(refname)' refs/heads/ops | Should -Be $first
        "refs/heads/$($again.Branch)" | Should -BeIn $first
    }

    It 'refuses a tag where a digest is required' {
        $err = { Invoke-KfmRollback -Method GitOps -IncidentId INC-GIT -ToRef 'registry.kfm.local/kfm-api:1.5.1' -Confirm:$false } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'RollbackTargetNotDigest,*'
        $err.Exception.Message | Should -Match '-ToRef sha256:'
    }

    It 'freezes and thaws by a kill-switch file committed to the deploy branch' {
        $direct = Join-Path $lab.Directory 'killswitch.yaml'
        (Get-Content -Raw $config) -replace '      kill_switch_path: infra/gitops/FREEZE', "      kill_switch_path: infra/gitops/FREEZE`n      allow_direct_push: true" `
            -replace '(\s+)- kind: argocd', "`$1- kind: killswitch`$1- kind: argocd" | Set-Content $direct
        $frozen = Start-KfmFreeze -ConfigPath $direct -Mechanism KillSwitch -IncidentId INC-GIT -Confirm:$false -WarningAction SilentlyContinue
        $frozen.Complete | Should -BeTrue
        $record = git -C $bare show main:infra/gitops/FREEZE | ConvertFrom-Json
        $record.incident | Should -Be 'INC-GIT'
        (Get-KfmFreeze -ConfigPath $direct -Mechanism KillSwitch).Frozen | Should -BeTrue
        # The rollback's pull request is not merged: main still pins the build INC-GIT rolled away from,
        # so a thaw would let the controller deploy it again.
        $pinned = git -C $bare rev-parse main
        $err = { Stop-KfmFreeze -ConfigPath $direct -Mechanism KillSwitch -IncidentId INC-GIT -Force } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ThawPinsQuarantinedDigest,*'
        $err.Exception.Message | Should -Match ([regex]::Escape($pinned.Substring(0, 12)))
        $err.Exception.Message | Should -Match 'quarantined by INC-GIT'
        $err.Exception.Message | Should -Match '-Force -Reason'
        git -C $bare cat-file -e main:infra/gitops/FREEZE 2>$null
        $LASTEXITCODE | Should -Be 0 -Because 'a refused thaw leaves the freeze in place'
        $thawed = Stop-KfmFreeze -ConfigPath $direct -Mechanism KillSwitch -IncidentId INC-GIT -Force -Reason 'the rollback PR is being merged by hand'
        $thawed.Mechanisms[0].Frozen | Should -BeFalse
        (Get-KfmIncident INC-GIT).Timeline.Event | Where-Object { $_ -like 'FORCED thaw of lab although Git pins sha256:*the rollback PR is being merged by hand' } | Should -Not -BeNullOrEmpty
        git -C $bare cat-file -e main:infra/gitops/FREEZE 2>$null
        $LASTEXITCODE | Should -Not -Be 0 -Because 'the thaw removes the freeze file'
    }

    It 'reports drift between Git and the cluster' {
        $drift = Test-KfmDrift -WarningAction SilentlyContinue
        ($drift | Where-Object Field -EQ 'image-digest').Desired | Should -Be $bad
        Test-KfmDrift -Quiet -WarningAction SilentlyContinue | Should -BeFalse
        # A named container is compared in Git and in the pods, and the items carry it for the re-align.
        $named = Test-KfmDrift -Container api -WarningAction SilentlyContinue
        ($named | Where-Object Field -EQ 'image-digest').Container | Should -Be 'api'
        ($drift | Where-Object Field -EQ 'image-digest').Container | Should -BeNullOrEmpty
        $err = { Test-KfmDrift -Container nosuch -WarningAction SilentlyContinue } | Should -Throw -PassThru
        $err.Exception.Message | Should -Match "'?nosuch'?"
    }

    It 're-aligns Git with production from Test-KfmDrift: the live digest binds as the one target' {
        New-KfmIncident -Id INC-DRIFT -Commander alice -Reason 'emergency rollback left prod drifted' -Environment lab -Confirm:$false | Out-Null
        $drift = Test-KfmDrift -IncidentId INC-DRIFT -WarningAction SilentlyContinue
        $digest = $drift | Where-Object Drift -EQ 'image-digest'
        $digest.Environment | Should -Be 'lab'
        $digest.IncidentId | Should -Be 'INC-DRIFT'
        $live = $digest.ToRef
        $live | Should -Match '^sha256:[0-9a-f]{64}$'
        $live | Should -Not -Be $bad
        @($drift | Where-Object Drift -NE 'image-digest' | Where-Object ToRef).Count | Should -Be 0
        $before = @(git -C $bare for-each-ref --format='%(refname)' refs/heads/ops)
        $result = @($drift | Invoke-KfmRollback -Method GitOps -Confirm:$false)
        $result.Count | Should -Be 1
        $result[0].Outcome | Should -Be 'PendingMerge'
        $result[0].RollbackTargetRef | Should -Be $live
        "refs/heads/$($result[0].Branch)" | Should -Not -BeIn $before
        $diff = git -C $bare diff "main..$($result[0].Branch)" --unified=0 | Where-Object { $_ -match '^[+-][^+-]' }
        $diff | Should -Be @("-    digest: $bad", "+    digest: $live")
        $message = (git -C $bare log -1 --format=%B $result[0].Branch) -join "`n"
        $message | Should -Match 'Incident: INC-DRIFT'
        $message | Should -Match "Last-Good-Ref: $live"
        $message | Should -Match 'Re-align Git with production'
    }

    It 'makes no rollback from a drift item without a digest difference' {
        $before = @(git -C $bare for-each-ref --format='%(refname)' refs/heads)
        # The engine loads in its own context: make the item from the type Test-KfmDrift returns.
        $type = (Test-KfmDrift -IncidentId INC-DRIFT -WarningAction SilentlyContinue | Select-Object -First 1).GetType()
        $type.FullName | Should -Be 'KfmRollback.Engine.Refs.DriftItem'
        $rollout = $type::new('rollout', $bad, "$bad,$good", 'in flight') | ForEach-Object { $_.Environment = 'lab'; $_.IncidentId = 'INC-DRIFT'; $_ }
        $rollout.ToRef | Should -BeNullOrEmpty
        $out = @($rollout | Invoke-KfmRollback -Method GitOps -Confirm:$false -Verbose 4>&1)
        @($out | Where-Object { $_ -isnot [System.Management.Automation.VerboseRecord] }).Count | Should -Be 0
        ($out | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message | Should -Contain "Drift 'rollout' is not a digest difference: nothing to re-align by rollback."
        @(git -C $bare for-each-ref --format='%(refname)' refs/heads) | Should -Be $before
        { $rollout | Invoke-KfmRollback -Method Cluster -Confirm:$false } | Should -Throw -ErrorId 'DriftNeedsGitOps*'
    }
}
