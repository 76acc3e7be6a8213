# Receipt stores every operator and job sees: a git repository pushed over HTTP or file://, and an
# Azure Blob container (Azurite). Each "machine" is a fresh pwsh with its own state folder, as an
# Azure Automation sandbox or a second operator's laptop is.

BeforeAll {
    . (Join-Path $PSScriptRoot 'StoreHelpers.ps1')
    Import-Module $KfmManifest -Force

    function New-GitStoreConfig {
        param([string] $Directory, [string] $Url)
        $config = Join-Path $Directory 'kfm-rollback.yaml'
        @"
environments:
  prod:
    cluster: { namespace: kfm, deployment: kfm-api }
    receipts:
      git:
        url: $Url
        token_env: KFM_TEST_RECEIPTS_TOKEN
    incidents: { journal: $Directory/journal }
"@ | Set-Content $config
        $config
    }
}

Describe 'A git receipt store shared through its remote' -ForEach @(
    @{ Transport = 'http' }
    @{ Transport = 'file' }
) {
    BeforeAll {
        $server = if ($Transport -eq 'http') { Start-KfmTestGitServer }
        $root = New-KfmTestDirectory
        $remote = New-KfmTestBareRepository -Server $server
        $config = New-GitStoreConfig -Directory $root -Url $remote.Url
        $env:KFM_TEST_RECEIPTS_TOKEN = $KfmTestGitToken
    }
    AfterAll {
        Stop-KfmTestGitServer $server
        Remove-Item env:KFM_TEST_RECEIPTS_TOKEN -ErrorAction SilentlyContinue
    }

    It 'two machines saving 20 receipts each at the same moment chain every one of them, and the chain verifies (<Transport>)' {
        Invoke-KfmTestMachines -Names 'a', 'b' -Config $config -Root $root -Count 20 -Environment @{ KFM_TEST_RECEIPTS_TOKEN = $KfmTestGitToken }

        # A third machine, a new sandbox: it has only the configuration.
        $env:KFM_ROLLBACK_STATE = Join-Path $root 'state-auditor'
        try {
            $stored = @(Get-KfmRollbackReceipt -ConfigPath $config -Environment prod)
            $report = Test-KfmRollbackReceipt -ConfigPath $config -Environment prod
        }
        finally { Remove-Item env:KFM_ROLLBACK_STATE }
        $stored.Count | Should -Be 40
        ($stored.Receipt.IncidentId | Sort-Object) | Should -Be (@(1..20 | ForEach-Object { "INC-a-$_"; "INC-b-$_" }) | Sort-Object)
        ($stored.LedgerEntry.Seq | Sort-Object) | Should -Be (1..40)
        $report.IsValid | Should -BeTrue
        $report.Entries | Should -Be 40
        # One commit per receipt, in one line: nothing forced, merged or lost.
        git -C $remote.Path rev-list --count receipts | Should -Be 40
        git -C $remote.Path rev-list --count --merges receipts | Should -Be 0
    }
}

Describe 'A git save killed or refused over HTTP' {
    BeforeAll {
        $server = Start-KfmTestGitServer
        $root = New-KfmTestDirectory
        $remote = New-KfmTestBareRepository -Server $server
        $config = New-GitStoreConfig -Directory $root -Url $remote.Url
        $tokenEnv = @{ KFM_TEST_RECEIPTS_TOKEN = $KfmTestGitToken; KFM_TEST_INCIDENTS = '1' }
        $env:KFM_TEST_RECEIPTS_TOKEN = $KfmTestGitToken

        function Get-RemoteLedger { @(git -C $remote.Path show receipts:receipts/ledger.ndjson 2>$null | Where-Object { $_ }) }
        function Get-StoredEvents([string] $Machine, [string] $Id) {
            @((Get-KfmIncident $Id -JournalPath (Join-Path $root "journal-$Machine")).Timeline.Event | Where-Object { $_ -like 'Rollback receipt stored*' })
        }
        # One machine's save of one receipt, with the remote's receive-pack held until it is killed.
        function Invoke-KilledSave([string] $Machine, [switch] $LandAfterKill) {
            Set-Content (Join-Path $server.Root 'stall') 'hold'
            if (-not $LandAfterKill) { Set-Content (Join-Path $server.Root 'drop') 'drop' }
            $job = Start-KfmTestMachine -Name $Machine -Config $config -State (Join-Path $root "state-$Machine") -Journal (Join-Path $root "journal-$Machine") -Environment $tokenEnv
            $deadline = [DateTime]::UtcNow.AddMinutes(2)
            while (-not (Test-Path (Join-Path $server.Root 'stalled')) -and [DateTime]::UtcNow -lt $deadline -and -not $job.Process.HasExited) { Start-Sleep -Milliseconds 50 }
            Test-Path (Join-Path $server.Root 'stalled') | Should -BeTrue -Because "the save must reach its push ($(if ($job.Process.HasExited) { $job.Output.Result + $job.Errors.Result }))"
            $job.Process.Kill($true)
            $job.Process.WaitForExit()
            Remove-Item (Join-Path $server.Root 'stall'), (Join-Path $server.Root 'stalled')
            Start-Sleep -Milliseconds 500   # the held receive-pack finishes (or drops) now
            Remove-Item (Join-Path $server.Root 'drop') -ErrorAction SilentlyContinue
        }
    }
    AfterAll {
        Stop-KfmTestGitServer $server
        Remove-Item env:KFM_TEST_RECEIPTS_TOKEN -ErrorAction SilentlyContinue
    }

    It 'a job killed after its commit, before its push landed, is stored once by the rerun, and the timeline says so once' {
        Invoke-KilledSave -Machine 'k'
        Get-RemoteLedger | Should -BeNullOrEmpty -Because 'the push never landed'

        $rerun = Wait-KfmTestMachine (Start-KfmTestMachine -Name 'k' -Config $config -State (Join-Path $root 'state-k') -Journal (Join-Path $root 'journal-k') -Environment $tokenEnv)
        $rerun.Lines | Should -HaveCount 1
        $rerun.Lines[0] | Should -Match '^sha256:[0-9a-f]{64} False$'
        @(Get-RemoteLedger).Count | Should -Be 1
        Get-StoredEvents 'k' 'INC-k-1' | Should -HaveCount 1

        $again = Wait-KfmTestMachine (Start-KfmTestMachine -Name 'k' -Config $config -State (Join-Path $root 'state-k') -Journal (Join-Path $root 'journal-k') -Environment $tokenEnv)
        $again.Lines[0] | Should -Match ' True$'
        @(Get-RemoteLedger).Count | Should -Be 1
        Get-StoredEvents 'k' 'INC-k-1' | Should -HaveCount 1
    }

    It 'a job killed while its push landed is not stored twice, and the rerun still says stored once' {
        Invoke-KilledSave -Machine 'l' -LandAfterKill
        @(Get-RemoteLedger | Where-Object { $_ -match 'INC-l-1' }).Count | Should -Be 1 -Because 'the server finished the push after the client died'
        Get-StoredEvents 'l' 'INC-l-1' | Should -HaveCount 0

        $rerun = Wait-KfmTestMachine (Start-KfmTestMachine -Name 'l' -Config $config -State (Join-Path $root 'state-l') -Journal (Join-Path $root 'journal-l') -Environment $tokenEnv)
        $rerun.Lines[0] | Should -Match ' True$'
        @(Get-RemoteLedger | Where-Object { $_ -match 'INC-l-1' }).Count | Should -Be 1
        Get-StoredEvents 'l' 'INC-l-1' | Should -HaveCount 1
        $env:KFM_ROLLBACK_STATE = Join-Path $root 'state-auditor'
        try { (Test-KfmRollbackReceipt -ConfigPath $config -Environment prod).IsValid | Should -BeTrue }
        finally { Remove-Item env:KFM_ROLLBACK_STATE }
    }

    It 'a push refused by a hook fails clearly: the receipt is NOT stored, the timeline does not say stored, and nothing was forced' {
        $head = git -C $remote.Path rev-parse receipts
        $hook = Join-Path $remote.Path 'hooks/pre-receive'
        Set-Content $hook "#!/bin/sh`necho 'receipts is protected: use a pull request' >&2`nexit 1`n"
        & chmod 755 $hook
        try {
            $result = Wait-KfmTestMachine -AllowFailure (Start-KfmTestMachine -Name 'r' -Config $config -State (Join-Path $root 'state-r') -Journal (Join-Path $root 'journal-r') -Environment $tokenEnv)
        }
        finally { Remove-Item $hook }
        $result.ExitCode | Should -Not -Be 0
        $result.Lines[-1] | Should -BeLike 'ERROR ReceiptStorePushRejected,*'
        $result.Lines[-1] | Should -Match 'NOT stored'
        $result.Lines[-1] | Should -Match 'rerun Save-KfmRollbackReceipt'
        $result.Lines[-1] | Should -Not -Match ([regex]::Escape($KfmTestGitToken))
        git -C $remote.Path rev-parse receipts | Should -Be $head
        Get-StoredEvents 'r' 'INC-r-1' | Should -HaveCount 0

        # Once the branch accepts it, the rerun stores it.
        $rerun = Wait-KfmTestMachine (Start-KfmTestMachine -Name 'r' -Config $config -State (Join-Path $root 'state-r') -Journal (Join-Path $root 'journal-r') -Environment $tokenEnv)
        $rerun.Lines[0] | Should -Match ' False$'
        Get-StoredEvents 'r' 'INC-r-1' | Should -HaveCount 1
    }
}

Describe 'A blob container receipt store (Azurite)' {
    BeforeAll {
        $azurite = Start-KfmTestAzurite
        $container = New-KfmTestBlobContainer $azurite
        $root = New-KfmTestDirectory
        $config = Join-Path $root 'kfm-rollback.yaml'
        @"
environments:
  prod:
    cluster: { namespace: kfm, deployment: kfm-api }
    receipts:
      blob:
        container: $container
        prefix: prod
        connection_string_env: KFM_TEST_BLOB_CONNECTION
    incidents: { journal: $root/journal }
"@ | Set-Content $config
        $connection = @{ KFM_TEST_BLOB_CONNECTION = $azurite.ConnectionString }
    }
    AfterAll { Stop-KfmTestAzurite $azurite }

    It 'two machines saving 20 receipts each at the same moment chain every one, nothing is overwritten, and the chain verifies' {
        Invoke-KfmTestMachines -Names 'a', 'b' -Config $config -Root $root -Count 20 -Environment $connection

        $env:KFM_ROLLBACK_STATE = Join-Path $root 'state-auditor'
        $env:KFM_TEST_BLOB_CONNECTION = $azurite.ConnectionString
        try {
            $stored = @(Get-KfmRollbackReceipt -ConfigPath $config -Environment prod)
            $report = Test-KfmRollbackReceipt -ConfigPath $config -Environment prod
        }
        finally { Remove-Item env:KFM_ROLLBACK_STATE, env:KFM_TEST_BLOB_CONNECTION }
        $stored.Count | Should -Be 40
        ($stored.LedgerEntry.Seq | Sort-Object) | Should -Be (1..40)
        $report.IsValid | Should -BeTrue
        $names = Get-KfmTestBlobNames $azurite $container
        @($names | Where-Object { $_ -like 'prod/ledger/*' }) | Should -Be @(1..40 | ForEach-Object { 'prod/ledger/{0:D12}.json' -f $_ })
        @($names | Where-Object { $_ -like 'prod/receipts/*' }).Count | Should -Be 40
    }

    It 'names the missing container and creates none' {
        $missing = $config -replace 'kfm-rollback.yaml', 'missing.yaml'
        (Get-Content -Raw $config) -replace "container: $container", 'container: no-such-container' | Set-Content $missing
        $result = Wait-KfmTestMachine -AllowFailure (Start-KfmTestMachine -Name 'm' -Config $missing -State (Join-Path $root 'state-m') -Journal (Join-Path $root 'journal-m') -Environment $connection)
        $result.ExitCode | Should -Not -Be 0
        $result.Lines[-1] | Should -BeLike 'ERROR ReceiptStoreNotFound,*'
        $result.Lines[-1] | Should -Match 'NOT stored'
        $result.Lines[-1] | Should -Not -Match 'AccountKey'
        { Get-KfmTestBlobNames $azurite 'no-such-container' } | Should -Throw -Because 'the module created no container'
    }
}
