# Rollback runs as automation reruns them (issue 20): the README pipelines run twice for one
# incident and once for a new one, a pwsh killed at each point of Invoke-KfmRollback -Wait and run
# again, Ctrl+C mid-wait, a journal that fails after the change, and -BreakLock. Every command runs
# in a fresh pwsh against the built module, as a restarted Azure Automation job would.
#
# Killing at a named point uses the engine's TEST-ONLY pause hook (KFM_TEST_PAUSE_AT and
# KFM_TEST_PAUSE_FILE, Rollback/Runs/PhaseHook.cs): the child writes the pause file when it reaches
# the phase and waits there until the file is gone, so the test kills it at exactly that point.

BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    Import-Module $KfmManifest -Force

    $script:Points = @('planned', 'locked', 'applied', 'awaiting')

    # The pwsh that runs this file, to start children exactly like it.
    function Get-ChildCommand {
        $process = [Environment]::ProcessPath
        $prefix = @(if ([IO.Path]::GetFileNameWithoutExtension($process) -eq 'dotnet') { Join-Path $PSHOME 'pwsh.dll' })
        , (@($process) + $prefix)
    }

    # A script that runs one pipeline for the lab's configuration and prints its last result as JSON.
    # Each run starts in a directory of its own, as a fresh Automation sandbox does: only the
    # configured journal (and the cluster) connect a rerun to the run before it.
    function New-RollbackScript {
        param([Parameter(Mandatory)] $Lab, [Parameter(Mandatory)] [string] $Config, [Parameter(Mandatory)] [string] $Pipeline)
        $path = Join-Path $Lab.Directory ("run-" + [Guid]::NewGuid().ToString('N').Substring(0, 8) + '.ps1')
        @"
Set-Location '$(New-KfmTestDirectory)'
`$ErrorActionPreference = 'Continue'
`$WarningPreference = 'SilentlyContinue'
`$env:KFM_ROLLBACK_CONFIG = '$Config'
Import-Module '$KfmManifest'
`$result = @($Pipeline) | Select-Object -Last 1
if (`$result) {
    [pscustomobject]@{ Outcome = [string] `$result.Outcome; Detail = `$result.Detail; CurrentRef = `$result.CurrentRef; Target = `$result.RollbackTargetRef
        Error = `$result.Error.ErrorId; ErrorMessage = `$result.Error.Message; Changes = @(`$result.Changes).Count } | ConvertTo-Json -Compress
}
"@ | Set-Content $path
        $path
    }

    # Runs a pipeline in a fresh pwsh to its end; returns its result (or throws with its output).
    function Invoke-Rollback {
        param([Parameter(Mandatory)] $Lab, [Parameter(Mandatory)] [string] $Config, [Parameter(Mandatory)] [string] $Pipeline)
        $script = New-RollbackScript -Lab $Lab -Config $Config -Pipeline $Pipeline
        $command = Get-ChildCommand
        $out = & $command[0] @($command | Select-Object -Skip 1) -NoProfile -NonInteractive -File $script 2>&1
        if ($LASTEXITCODE -ne 0) { throw "child pwsh exited $LASTEXITCODE`n$($out -join "`n")" }
        $json = @($out | Where-Object { "$_" -match '^\{"Outcome"' }) | Select-Object -Last 1
        if (-not $json) { throw "child pwsh printed no result:`n$($out -join "`n")" }
        $json | ConvertFrom-Json
    }

    # Starts a pipeline in a fresh pwsh that pauses at $PauseAt; returns once it is paused there.
    function Start-PausedRollback {
        param([Parameter(Mandatory)] $Lab, [Parameter(Mandatory)] [string] $Config, [Parameter(Mandatory)] [string] $Pipeline, [Parameter(Mandatory)] [string] $PauseAt)
        $script = New-RollbackScript -Lab $Lab -Config $Config -Pipeline $Pipeline
        $pause = Join-Path $Lab.Directory ("pause-" + [Guid]::NewGuid().ToString('N').Substring(0, 8))
        $command = Get-ChildCommand
        $psi = [Diagnostics.ProcessStartInfo]::new($command[0])
        foreach ($argument in @($command | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-File', $script)) { $psi.ArgumentList.Add($argument) }
        $psi.Environment['KFM_TEST_PAUSE_AT'] = $PauseAt
        $psi.Environment['KFM_TEST_PAUSE_FILE'] = $pause
        $psi.Environment['NO_COLOR'] = '1'
        $psi.RedirectStandardOutput = $true
        $psi.RedirectStandardError = $true
        $psi.RedirectStandardInput = $true
        $process = [Diagnostics.Process]::Start($psi)
        $child = [pscustomobject]@{ Process = $process; Pause = $pause; Out = $process.StandardOutput.ReadToEndAsync(); Err = $process.StandardError.ReadToEndAsync() }
        $deadline = [DateTime]::UtcNow.AddSeconds(150)
        while (-not (Test-Path $pause)) {
            if ($process.HasExited) { throw "the child ended before it reached '$PauseAt' (exit $($process.ExitCode)):`n$($child.Out.Result)`n$($child.Err.Result)" }
            if ([DateTime]::UtcNow -gt $deadline) { Stop-Process -Id $process.Id -Force; throw "the child did not reach '$PauseAt'" }
            Start-Sleep -Milliseconds 100
        }
        $child
    }

    # What a kill -9 (an OOM kill, a recycled sandbox) leaves: nothing after the pause point.
    function Stop-Hard($Child) {
        Stop-Process -Id $Child.Process.Id -Force
        $Child.Process.WaitForExit()
        Remove-Item $Child.Pause -ErrorAction SilentlyContinue
    }

    function Get-Generation($Lab) { [long] (Get-KfmLabDeployment $Lab).metadata.generation }

    # What a client of the API sees: the digest most ready pods run (the stand-in API follows it).
    function Get-ServedDigest($Lab) {
        $state = Invoke-KfmLabAdmin $Lab state
        $state.kfmApi.digest
    }

    function Wait-Served($Lab, [string] $Digest, [int] $Seconds = 90) {
        $deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
        while ((Get-ServedDigest $Lab) -ne $Digest) {
            if ([DateTime]::UtcNow -gt $deadline) { throw "the API does not serve $Digest after $Seconds s (it serves $(Get-ServedDigest $Lab))" }
            Start-Sleep -Milliseconds 250
        }
        Invoke-KfmLabKubectl $Lab rollout status deployment/kfm-api -n kfm --timeout=90s | Out-Null
    }

    # The run of an incident, read back through the module (the journal stays readable).
    function Get-Run([string] $Config, [string] $Incident) {
        @((Get-KfmIncident -Id $Incident -ConfigPath $Config).Runs) | Select-Object -Last 1
    }

    # The README pipeline twice for one incident and once for a new one. The first run rolls back;
    # the reruns are NoOp, say what was done, and change nothing $Probe can see.
    function Assert-RerunsChangeNothing($Lab, [string] $Config, [scriptblock] $Pipeline, [scriptblock] $Probe, [string] $Good, [string] $Bad, [string] $Prefix) {
        $first = Invoke-Rollback $Lab $Config (& $Pipeline "$Prefix-1")
        $first.Outcome | Should -Be 'Succeeded' -Because $first.Detail
        $first.Target | Should -Be $Good
        Wait-Served $Lab $Good
        $before = & $Probe

        $again = Invoke-Rollback $Lab $Config (& $Pipeline "$Prefix-1")
        $again.Outcome | Should -Be 'NoOp'
        $again.Detail | Should -Match "^already rolled back from $Bad to $Good at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC by \S+"
        $again.Changes | Should -Be 0
        $other = Invoke-Rollback $Lab $Config (& $Pipeline "$Prefix-2")
        $other.Outcome | Should -Be 'NoOp'
        @((Get-KfmIncident "$Prefix-2" -ConfigPath $Config).Runs).Count | Should -Be 0 -Because 'a new incident on a build a rollback already chose starts no run'

        & $Probe | Should -Be $before -Because 'a second undo would flip production back to the bad build'
        Get-ServedDigest $Lab | Should -Be $Good
    }

    # A lab for one method's tests, the module pointed at it, its seeded rollout done.
    function Start-RunsLab([double] $PodStartSeconds) {
        $lab = Start-KfmTestLab -PodStartSeconds $PodStartSeconds
        $env:KFM_ROLLBACK_CONFIG = $lab.Config
        Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api -n kfm --timeout=90s | Out-Null
        $lab
    }

    function Stop-RunsLab($Lab) {
        Stop-KfmTestLab $Lab
        Remove-Item env:KFM_ROLLBACK_CONFIG -ErrorAction SilentlyContinue
    }

    function Pipeline([string] $Incident, [string] $Source, [string] $Invoke) {
        "New-KfmIncident -Id $Incident -Commander alice -Reason '5xx spike after deploy' -Environment lab -Confirm:`$false | Start-KfmFreeze -Confirm:`$false | Get-KfmApiRef$Source | Invoke-KfmRollback $Invoke -Confirm:`$false"
    }
}

Describe 'The emergency pipeline (Cluster)' {
    BeforeAll {
        $lab = Start-RunsLab 6
        $config = $lab.Config
        $catalogue = $lab.Facts.catalogue
        $good = $catalogue.'good-1.5.1'.digest
        $bad = $catalogue.'bad-5xx'.digest
        # The bad deploy comes through Argo CD (its desired state), which self-heals until frozen.
        Invoke-KfmLabKubectl $lab annotate application kfm-api -n argocd "lab.kfm.local/desired-image=registry.kfm.local/kfm-api@$bad" --overwrite | Out-Null
        Wait-Served $lab $bad
        $emergency = { param($incident) Pipeline $incident '' '-Method Cluster -Wait -Timeout 120' }
        # A later bad deploy, once Argo CD is frozen: straight to the Deployment.
        function Deploy-Bad([string] $Build) {
            $digest = $catalogue.$Build.digest
            Invoke-KfmLabKubectl $lab set image deployment/kfm-api -n kfm "api=registry.kfm.local/kfm-api@$digest" | Out-Null
            Wait-Served $lab $digest
            $digest
        }
    }
    AfterAll { Stop-RunsLab $lab }

    It 'runs twice for one incident and once for a new one: the good build stays, the reruns change nothing and say so' {
        Assert-RerunsChangeNothing $lab $config $emergency { Get-Generation $lab } $good $bad 'INC-E'
    }

    It 'reports the good build as last-known-good and the bad one as quarantined, in the journal and on the cluster' {
        $ref = Get-KfmApiRef
        $ref.CurrentRef | Should -Be $good
        $ref.LastKnownGoodRef | Should -Be $good -Because 'after a rollback the previous revision is the bad build'
        $ref.LastKnownGoodSource | Should -Be 'rollback-target'
        $ref.Quarantined.Digest | Should -Contain $bad
        ($ref.Quarantined | Where-Object Digest -EQ $bad).IncidentId | Should -Contain 'INC-E-1'
        $annotation = (Get-KfmLabDeployment $lab).metadata.annotations.'kfm.dev/quarantine' | ConvertFrom-Json
        $annotation.digest | Should -Contain $bad
        $app = (Invoke-KfmLabKubectl $lab get application kfm-api -n argocd -o json) -join "`n" | ConvertFrom-Json -Depth 30
        ($app.metadata.annotations.'kfm.dev/quarantine' | ConvertFrom-Json).digest | Should -Contain $bad
        # A fresh sandbox with an empty journal still sees it, from the Deployment.
        $empty = Join-Path (New-KfmTestDirectory) 'incidents.ndjson'
        $fresh = Get-KfmApiRef -JournalPath $empty
        $fresh.LastKnownGoodRef | Should -Not -Be $bad
        $fresh.Quarantined.Digest | Should -Contain $bad
    }

    It 'never targets the quarantined build unless named with -Force and a reason' {
        New-KfmIncident -Id INC-E3 -Commander alice -Reason 'later incident' -Environment lab -Confirm:$false | Out-Null
        $generation = Get-Generation $lab
        $err = { Invoke-KfmRollback -IncidentId INC-E3 -Method Cluster -ToRef $bad -Confirm:$false } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'RollbackTargetQuarantined,*'
        $err.Exception.Message | Should -Match 'INC-E-1'
        $err.Exception.Message | Should -Match '-Force -ForceReason'
        $plan = { Get-KfmRollbackPlan -IncidentId INC-E3 -ToRef $bad } | Should -Throw -PassThru
        $plan.FullyQualifiedErrorId | Should -BeLike 'RollbackTargetQuarantined,*'
        Get-Generation $lab | Should -Be $generation
    }

    It 'finishes the rollback after a kill at <_>, without waiting for the lease and without sending twice' -ForEach @('planned', 'locked', 'applied', 'awaiting') {
        $point = $_
        $build = @{ planned = 'bad-latency'; locked = 'bad-leak'; applied = 'bad-audit'; awaiting = 'bad-dvid' }[$point]
        $incident = "INC-K-$point"
        $badNow = Deploy-Bad $build
        $generation = Get-Generation $lab

        $child = Start-PausedRollback $lab $config (& $emergency $incident) $point
        Stop-Hard $child
        if ($point -in 'applied', 'awaiting') { Get-Generation $lab | Should -Be ($generation + 1) -Because 'the killed attempt sent its patch' }

        $rerun = Invoke-Rollback $lab $config (& $emergency $incident)
        $rerun.Outcome | Should -Be 'Succeeded' -Because $rerun.Detail
        $rerun.Target | Should -Be $good
        Wait-Served $lab $good
        Get-Generation $lab | Should -Be ($generation + 1) -Because 'the patch went out once, whoever sent it'

        $run = Get-Run $config $incident
        $run.Attempts.Count | Should -Be 2 -Because 'the journal records both attempts'
        $run.Phase | Should -Be 'awaited'
        $run.CurrentRef | Should -Be $badNow
        if ($point -ne 'planned') {
            # The killed attempt's lease was still live (lease_duration 2m): the rerun took it over at once.
            $takeover = $run.Records | Where-Object { $_.Phase -eq 'locked' -and $_.Attempt -eq $run.Attempts[1] }
            $takeover.Holder | Should -Match "attempt $($run.Attempts[0])\)$"
        }
    }

    It 'finishes a -Fast rollback killed after its raise: the rerun restores the Deployment''s own strategy and completes' {
        Deploy-Bad 'bad-shift' | Out-Null
        $fast = { param($incident) Pipeline $incident '' '-Method Cluster -Wait -Fast -Timeout 120' }
        $generation = Get-Generation $lab
        $child = Start-PausedRollback $lab $config (& $fast 'INC-FAST-K') 'applied'
        Stop-Hard $child
        $raised = Get-KfmLabDeployment $lab
        $raised.spec.strategy.rollingUpdate.maxSurge | Should -Be '100%' -Because 'the killed attempt sent the raise with its rollback patch'
        ($raised.metadata.annotations.'kfm.dev/fast-rollout' | ConvertFrom-Json).run | Should -Be 'INC-FAST-K/lab/cluster#1'

        $rerun = Invoke-Rollback $lab $config (& $fast 'INC-FAST-K')
        $rerun.Outcome | Should -Be 'Succeeded' -Because $rerun.Detail
        $rerun.Target | Should -Be $good
        Wait-Served $lab $good
        $after = Get-KfmLabDeployment $lab
        $after.spec.strategy.rollingUpdate.maxSurge | Should -Be '25%'
        $after.metadata.annotations.'kfm.dev/fast-rollout' | Should -BeNullOrEmpty
        Get-Generation $lab | Should -Be ($generation + 2) -Because 'one rollback patch (with the raise) and one restore, whoever sent them'
        (Get-KfmIncident INC-FAST-K -ConfigPath $config).Timeline.Event | Where-Object { $_ -like 'Restored the rollout strategy of kfm/kfm-api*run INC-FAST-K/lab/cluster#1*' } | Should -Not -BeNullOrEmpty
        (Get-Run $config 'INC-FAST-K').Phase | Should -Be 'awaited'

        # The same -Fast command once more (a job restarted from its first line): nothing is raised or sent again.
        $again = Invoke-Rollback $lab $config (& $fast 'INC-FAST-K')
        $again.Outcome | Should -Be 'NoOp' -Because $again.Detail
        $again.Detail | Should -Match '^already rolled back from '
        Get-Generation $lab | Should -Be ($generation + 2) -Because 'a finished -Fast run sends neither its rollback nor its raise again'
        (Get-KfmLabDeployment $lab).spec.strategy.rollingUpdate.maxSurge | Should -Be '25%'
    }

    It 'records Ctrl+C mid-wait after the patch, warns how to resume, exits non-zero, and the same command then finishes' {
        Deploy-Bad 'bad-contract' | Out-Null
        $generation = Get-Generation $lab
        $child = Start-PausedRollback $lab $config (& $emergency 'INC-CTRLC') 'awaiting'
        & /bin/kill -INT $child.Process.Id
        Start-Sleep -Milliseconds 500
        Remove-Item $child.Pause
        $child.Process.WaitForExit(120000) | Should -BeTrue
        $child.Process.ExitCode | Should -Be 130
        $child.Out.Result | Should -Match 'WARNING: lab: Interrupted after the Cluster rollback of lab \(sha256:[0-9a-f]{12} → sha256:[0-9a-f]{12}: json-patch deployment kfm/kfm-api\); the rollout continues; resume: run the same command again'
        $timeline = (Get-KfmIncident INC-CTRLC).Timeline.Event
        $timeline | Where-Object { $_ -like '*Interrupted after the Cluster rollback of lab*' } | Should -Not -BeNullOrEmpty
        (Get-Run $config 'INC-CTRLC').Phase | Should -Be 'interrupted'

        $resumed = Invoke-Rollback $lab $config (& $emergency 'INC-CTRLC')
        $resumed.Outcome | Should -Be 'Succeeded'
        Get-Generation $lab | Should -Be ($generation + 1)
        (Get-Run $config 'INC-CTRLC').Phase | Should -Be 'awaited'
    }

    It 'breaks a dead holder''s lock only with -BreakLock and a reason typed on the command line, on the record' {
        Deploy-Bad 'bad-contract-field' | Out-Null
        $holder = 'bob@laptop (INC-9; run INC-9/lab/cluster#1; attempt 0badf00d)'
        $now = [DateTime]::UtcNow.ToString('yyyy-MM-ddTHH:mm:ss.ffffffZ')
        @"
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: { name: kfm-rollback-kfm-api, namespace: kfm }
spec: { holderIdentity: '$holder', leaseDurationSeconds: 600, acquireTime: '$now', renewTime: '$now' }
"@ | Set-Content (Join-Path $lab.Directory 'lease.yaml')
        Invoke-KfmLabKubectl $lab apply -f (Join-Path $lab.Directory 'lease.yaml') | Out-Null
        $incident = New-KfmIncident -Id INC-BRK -Commander alice -Reason 'bob''s job died mid-rollback' -Environment lab -Confirm:$false
        $generation = Get-Generation $lab

        $locked = { Invoke-KfmRollback -IncidentId INC-BRK -Method Cluster -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $locked.FullyQualifiedErrorId | Should -BeLike 'RollbackLocked,*'
        $locked.Exception.Message | Should -Match ([regex]::Escape($holder))
        $locked.Exception.Message | Should -Match 'expires \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC'
        $locked.Exception.Message | Should -Match "Invoke-KfmRollback -Environment lab -Method Cluster -IncidentId INC-BRK -BreakLock -Reason '<why that holder is known dead>'"
        { Invoke-KfmRollback -IncidentId INC-BRK -Method Cluster -BreakLock -Confirm:$false } | Should -Throw -ErrorId 'BreakLockReasonMissing,*'
        { $incident | Invoke-KfmRollback -Method Cluster -BreakLock -Confirm:$false } | Should -Throw -ErrorId 'BreakLockReasonMissing,*' -Because 'the incident''s reason bound from the pipeline does not count'
        Get-Generation $lab | Should -Be $generation

        $result = Invoke-KfmRollback -IncidentId INC-BRK -Method Cluster -Wait -Timeout 120 -BreakLock -Reason 'bob''s job was OOM-killed at 14:02' -Confirm:$false
        $result.Outcome | Should -Be 'Succeeded'
        $broken = (Get-Run $config 'INC-BRK').Records | Where-Object Phase -EQ 'lock-broken'
        $broken.Holder | Should -Be $holder
        $broken.Reason | Should -Be 'bob''s job was OOM-killed at 14:02'
        (Get-KfmIncident INC-BRK).Timeline.Event | Where-Object { $_ -like "Broke the rollback lock*held by '$holder'*OOM-killed*" } | Should -Not -BeNullOrEmpty
    }
}

Describe 'The Helm pipeline' {
    BeforeAll {
        $lab = Start-RunsLab 6
        $config = $lab.Config
        $catalogue = $lab.Facts.catalogue
        $good = $catalogue.'good-1.5.1'.digest
        $helm = { param($incident) Pipeline $incident ' -Source Helm' '-Method Helm -Wait -Timeout 120' }
        # A bad deploy through Helm (and Argo CD's desired state, so self-heal agrees until it is frozen).
        function Deploy-Bad([string] $Build) {
            $digest = $catalogue.$Build.digest
            Invoke-KfmLabAdmin $lab helm -Method POST -Body @{ build = $Build } | Out-Null
            Invoke-KfmLabKubectl $lab annotate application kfm-api -n argocd "lab.kfm.local/desired-image=registry.kfm.local/kfm-api@$digest" --overwrite | Out-Null
            Wait-Served $lab $digest
            $digest
        }
        function Get-Releases {
            Invoke-KfmLabKubectl $lab get secrets -n kfm -l 'owner=helm,name=kfm-api' -o json | ConvertFrom-Json -Depth 30 | ForEach-Object items |
                Sort-Object { [int] $_.metadata.labels.version } | ForEach-Object { [pscustomobject]@{ Version = [int] $_.metadata.labels.version; Status = $_.metadata.labels.status } }
        }
        $bad = Deploy-Bad 'bad-5xx'
    }
    AfterAll { Stop-RunsLab $lab }

    It 'runs twice for one incident and once for a new one: the good build stays, the reruns change nothing and say so' {
        Assert-RerunsChangeNothing $lab $config $helm { (Get-Releases | ForEach-Object { "v$($_.Version) $($_.Status)" }) -join ', ' } $good $bad 'INC-H'
        $releases = Get-Releases
        $releases[-1].Status | Should -Be 'deployed'

        $ref = Get-KfmApiRef -Source Helm
        $ref.LastKnownGoodRef | Should -Be $good
        $ref.Quarantined.Digest | Should -Contain $bad
        { Invoke-KfmRollback -IncidentId INC-H-2 -Method Helm -ToRevision ($releases[-2].Version) -Confirm:$false } | Should -Throw -ErrorId 'RollbackTargetQuarantined,*'
    }

    It 'finishes the rollback after a kill at <_>, without waiting for the lease and without a second revision' -ForEach @('planned', 'locked', 'applied', 'awaiting') {
        $point = $_
        $build = @{ planned = 'bad-latency'; locked = 'bad-leak'; applied = 'bad-audit'; awaiting = 'bad-dvid' }[$point]
        $incident = "INC-HK-$point"
        Deploy-Bad $build | Out-Null
        $before = (Get-Releases)[-1].Version

        $child = Start-PausedRollback $lab $config (& $helm $incident) $point
        Stop-Hard $child
        if ($point -in 'applied', 'awaiting') { (Get-Releases)[-1].Status | Should -Be 'pending-rollback' -Because 'the killed attempt wrote its revision' }

        $rerun = Invoke-Rollback $lab $config (& $helm $incident)
        $rerun.Outcome | Should -Be 'Succeeded' -Because $rerun.Detail
        Wait-Served $lab $good
        $releases = Get-Releases
        $releases[-1].Version | Should -Be ($before + 1) -Because 'one rollback revision, whoever wrote it'
        $releases[-1].Status | Should -Be 'deployed'
        @($releases | Where-Object Status -Like 'pending-*').Count | Should -Be 0
        $run = Get-Run $config $incident
        $run.Attempts.Count | Should -Be 2
        $run.Phase | Should -Be 'awaited'
    }

    It 'keeps the change in the result and the run record when the journal fails after it, and leaves no revision pending' {
        Deploy-Bad 'bad-contract' | Out-Null
        $before = (Get-Releases)[-1].Version
        $child = Start-PausedRollback $lab $config (& $helm 'INC-JF') 'applied'
        # The disk under the incident's records goes bad right after the change: its file becomes unwritable.
        $record = (Get-KfmIncident INC-JF).RecordPath
        Move-Item $record "$record.saved"
        New-Item -ItemType Directory $record | Out-Null
        Remove-Item $child.Pause
        $child.Process.WaitForExit(120000) | Should -BeTrue
        $result = @($child.Out.Result -split "`n" | Where-Object { $_ -match '^\{"Outcome"' })[-1] | ConvertFrom-Json
        $result.Outcome | Should -Be 'Succeeded'
        $result.Changes | Should -BeGreaterThan 0
        $result.Error | Should -Be 'IncidentJournalWriteFailed'
        $result.ErrorMessage | Should -Match 'create secret kfm/sh\.helm\.release\.v1\.kfm-api\.v\d+'
        $result.ErrorMessage | Should -Match 'writing the incident journal failed'
        $releases = Get-Releases
        $releases[-1].Version | Should -Be ($before + 1)
        $releases[-1].Status | Should -Be 'deployed' -Because 'the wait and helm''s final writes still happen'

        # The write-ahead record lists the change; once the journal is back, the same command records it and sends nothing.
        Remove-Item $record
        Move-Item "$record.saved" $record
        $applying = (Get-Run $config 'INC-JF').Records | Where-Object Phase -EQ 'applying'
        $applying.Changes.Action | Should -Contain 'create'
        $rerun = Invoke-Rollback $lab $config (& $helm 'INC-JF')
        $rerun.Outcome | Should -BeIn 'Succeeded', 'NoOp'
        $rerun.Error | Should -BeNullOrEmpty
        (Get-Releases)[-1].Version | Should -Be ($before + 1)
        (Get-Run $config 'INC-JF').Phase | Should -Be 'awaited'
    }
}

Describe 'The preferred pipeline (GitOps)' {
    BeforeAll {
        $lab = Start-KfmTestLab -PodStartSeconds 4
        $catalogue = $lab.Facts.catalogue
        $good = $catalogue.'good-1.5.1'.digest
        # A bare repository the lab's Argo CD reconciles (as the drill sets it up), and a deployer's clone.
        $bare = Join-Path $lab.Directory 'deploy.git'
        $work = Join-Path $lab.Directory 'deploy-work'
        $overlay = 'infra/gitops/apps/kfm-api/overlays/prod'
        git init -q --bare -b main $bare
        git clone -q $bare $work 2>$null
        New-Item -ItemType Directory -Force (Join-Path $work $overlay) | Out-Null
        function Publish([string] $Build) {
            $digest = $catalogue.$Build.digest
            if (git -C $work ls-remote origin refs/heads/main) { git -C $work pull -q --ff-only origin main 2>$null | Out-Null }
            "# prod overlay`nresources:`n  - ../../base`nimages:`n  - name: registry.kfm.local/kfm-api`n    digest: $digest`n" | Set-Content -NoNewline (Join-Path $work "$overlay/kustomization.yaml")
            git -C $work add -A
            git -C $work -c user.name=deployer -c user.email=deployer@kfm.local commit -q -m "deploy kfm-api $Build"
            git -C $work push -q origin main 2>$null
            $digest
        }
        function Get-Pin {
            ((git -C $bare show "main:$overlay/kustomization.yaml") -join "`n") -replace '(?s).*digest: (sha256:[0-9a-f]{64}).*', '$1'
        }
        function Get-Branches { @(git -C $bare for-each-ref --format='%(refname)' refs/heads) }
        Publish 'good-1.5.1' | Out-Null
        $config = Join-Path $lab.Directory 'gitops.yaml'
        (Get-Content -Raw $lab.Config) `
            -replace '      path: gitops', "      url: file://$bare" `
            -replace '      kill_switch_path: infra/gitops/FREEZE', "      kill_switch_path: infra/gitops/FREEZE`n      pr:`n        provider: none`n        auto_merge: true`n        required_approvals: 0`n        poll_interval: 200ms" |
            Set-Content $config
        $env:KFM_ROLLBACK_CONFIG = $config
        $source = @{ spec = @{ source = @{ repoURL = $bare; path = $overlay; targetRevision = 'main'; kustomize = $null } } } | ConvertTo-Json -Depth 10 -Compress
        Invoke-KfmLabKubectl $lab patch application kfm-api -n argocd --type merge -p $source | Out-Null
        Wait-Served $lab $good
        $gitops = { param($incident) Pipeline $incident ' -Source GitOps' '-Method GitOps -Wait -MergeWith Merge -Timeout 150' }
        # A bad deploy is a commit Argo CD syncs, so the previous incident's freeze is lifted first (as the drill does).
        function Deploy-Bad([string] $Build) {
            if ((Get-KfmFreeze).Frozen -contains $true) { Stop-KfmFreeze -Force -Reason 'runs test: the earlier incidents are over; the next bad deploy follows' -Confirm:$false -WarningAction SilentlyContinue | Out-Null }
            $digest = Publish $Build
            Wait-Served $lab $digest
            $digest
        }
        $bad = Deploy-Bad 'bad-5xx'
    }
    AfterAll { Stop-RunsLab $lab }

    It 'runs twice for one incident and once for a new one: the good build stays, the reruns change nothing and say so' {
        Assert-RerunsChangeNothing $lab $config $gitops { "$(Get-Branches) main=$(git -C $bare rev-parse main)" } $good $bad 'INC-G'
        Get-Pin | Should -Be $good

        $ref = Get-KfmApiRef -Source GitOps
        $ref.LastKnownGoodRef | Should -Be $good
        $ref.Quarantined.Digest | Should -Contain $bad
        { Invoke-KfmRollback -IncidentId INC-G-2 -Method GitOps -ToRef $bad -Confirm:$false } | Should -Throw -ErrorId 'RollbackTargetQuarantined,*'
    }

    It 'finishes the rollback after a kill at <_>, pushing and merging one rollback' -ForEach @('planned', 'locked', 'applied', 'awaiting') {
        $point = $_
        $build = @{ planned = 'bad-latency'; locked = 'bad-leak'; applied = 'bad-audit'; awaiting = 'bad-dvid' }[$point]
        $incident = "INC-GK-$point"
        Deploy-Bad $build | Out-Null
        $branches = Get-Branches

        $child = Start-PausedRollback $lab $config (& $gitops $incident) $point
        Stop-Hard $child

        $rerun = Invoke-Rollback $lab $config (& $gitops $incident)
        $rerun.Outcome | Should -Be 'Succeeded' -Because $rerun.Detail
        Wait-Served $lab $good
        Get-Pin | Should -Be $good
        @(Get-Branches | Where-Object { $_ -notin $branches }).Count | Should -Be 1 -Because 'one rollback branch, whoever pushed it'
        $run = Get-Run $config $incident
        $run.Attempts.Count | Should -Be 2
        $run.Phase | Should -Be 'awaited'
    }
}

# Issue 20 item 7: an Azure Automation sandbox is discarded after each job. With the journal on the
# cluster (incidents.cluster), a rerun in a new sandbox, with nothing on its disk, finds the run.
Describe 'Runs on a journal the cluster keeps' {
    BeforeAll {
        $lab = Start-RunsLab 2
        $catalogue = $lab.Facts.catalogue
        $good = $catalogue.'good-1.5.1'.digest
        $bad = $catalogue.'bad-5xx'.digest
        Invoke-KfmLabKubectl $lab annotate application kfm-api -n argocd "lab.kfm.local/desired-image=registry.kfm.local/kfm-api@$bad" --overwrite | Out-Null
        Wait-Served $lab $bad
        # A sandbox: its own directory and configuration copy (so its own state folder), the journal on the cluster.
        function New-Sandbox {
            $config = Join-Path (New-KfmTestDirectory) 'kfm-rollback.yaml'
            (Get-Content -Raw $lab.Config) -replace '(?m)^    approval_required: false\s*$', "    approval_required: false`n    incidents:`n      cluster:`n        namespace: kfm`n" | Set-Content $config
            $config
        }
    }
    AfterAll { Stop-RunsLab $lab }

    It 'a rerun in a fresh sandbox finds the run on the cluster and changes nothing' {
        $first = New-Sandbox
        $done = Invoke-Rollback $lab $first (Pipeline 'INC-S-1' '' '-Method Cluster -Wait -Timeout 120')
        $done.Outcome | Should -Be 'Succeeded' -Because $done.Detail
        Wait-Served $lab $good
        $generation = Get-Generation $lab

        $second = New-Sandbox
        $again = Invoke-Rollback $lab $second (Pipeline 'INC-S-1' '' '-Method Cluster -Wait -Timeout 120')
        $again.Outcome | Should -Be 'NoOp'
        $again.Detail | Should -Match "^already rolled back from $bad to $good at "
        $again.Changes | Should -Be 0
        Get-Generation $lab | Should -Be $generation -Because 'a second undo would flip production back to the bad build'
        Get-ServedDigest $lab | Should -Be $good

        foreach ($sandbox in $first, $second) {
            Test-Path (Join-Path (Split-Path $sandbox) 'state/incidents') | Should -BeFalse -Because 'nothing of the journal is on the sandbox''s disk'
        }
        $incident = Get-KfmIncident -Id INC-S-1 -ConfigPath (New-Sandbox)
        @($incident.Runs).Count | Should -Be 1
        $incident.Timeline.Event | Where-Object { $_ -like 'Cluster rollback of kfm/kfm-api*' } | Should -HaveCount 1
        Invoke-KfmLabKubectl $lab get configmap -n kfm -l 'kfm.dev/journal-kind=incident' -o name | Should -Not -BeNullOrEmpty
        # Test-KfmAccess asks for what the journal needs (one check per permission, shared with the config surface's).
        $access = @(Test-KfmAccess -ConfigPath $second)
        foreach ($verb in 'get', 'list', 'create', 'update') { $access.Resource | Should -Contain "$verb configmaps in kfm" }
        @($access | Where-Object Why -Like '*incident journal*').Count | Should -BeGreaterThan 0
        $access.Allowed | Should -Not -Contain $false
    }

    It 'a bad namespace is refused when the configuration is read, naming the key' {
        $config = New-Sandbox
        (Get-Content -Raw $config) -replace 'namespace: kfm\n(\s*)$', "namespace: KFM_Journal`n" | Set-Content $config
        $err = { Get-KfmIncident -Id INC-S-1 -ConfigPath $config } | Should -Throw -PassThru
        $err.Exception.Message | Should -Match 'incidents.cluster.namespace'
    }
}
