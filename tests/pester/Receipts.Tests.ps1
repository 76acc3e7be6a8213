# Rollback receipts as users create, store and audit them.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Import-Module $KfmManifest -Force
    $bad = New-KfmTestDigest 'a'
    $good = New-KfmTestDigest 'b'

    function New-TestReceipt {
        param([string] $IncidentId = 'INC-1042', [string] $Notes = 'Rolled back after a 5xx spike.', [string] $Journal)
        New-KfmIncident -Id $IncidentId -Commander alice -Reason '5xx spike after deploy' -Environment prod -JournalPath $Journal -Confirm:$false |
            New-KfmRollbackReceipt -ApprovedBy bob -CurrentRef $bad -RollbackTargetRef $good -ChangedSurface api `
                -Health pass -PolicyInvariants pass -ContractSmoke pass -Notes $Notes
    }
}

Describe 'New-KfmRollbackReceipt' {
    BeforeEach { $journal = Join-Path (New-KfmTestDirectory) 'incidents.ndjson' }

    It 'emits the runbook''s minimum fields with their exact names and types' {
        $json = (New-TestReceipt -Journal $journal).ToJson() | ConvertFrom-Json -AsHashtable -DateKind String
        $json.run_type | Should -Be 'ops.api.rollback'
        foreach ($field in 'incident_id', 'requested_by', 'approved_by', 'started_at', 'completed_at', 'environment', 'reason', 'current_ref', 'rollback_target_ref', 'notes') {
            $json[$field] | Should -BeOfType [string] -Because "$field is a string in the runbook"
        }
        $json.started_at | Should -Match '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$'
        , $json.changed_surfaces | Should -BeOfType [object[]]
        $json.changed_surfaces | Should -Be @('api')
        $json.verification.Keys | Sort-Object | Should -Be @('contract_smoke', 'health', 'policy_invariants')
        $json.requested_by | Should -Be 'alice'
        $json.Keys | Sort-Object | Should -Be (@('run_type', 'incident_id', 'requested_by', 'approved_by', 'started_at', 'completed_at', 'environment',
                'reason', 'current_ref', 'rollback_target_ref', 'changed_surfaces', 'verification', 'notes', 'kfm_integrity') | Sort-Object)
    }

    It 'records inconclusive as fail' {
        $r = New-KfmRollbackReceipt -IncidentId INC-1 -RequestedBy a -ApprovedBy b -Environment prod -Reason r -StartedAt (Get-Date) `
            -CurrentRef $bad -RollbackTargetRef $good -ChangedSurface api -Health inconclusive -PolicyInvariants pass -ContractSmoke pass
        $r.Verification.Health | Should -Be 'fail'
    }

    It 'refuses a mutable tag where a digest is required, naming the field' {
        $err = { New-KfmRollbackReceipt -IncidentId INC-1 -RequestedBy a -ApprovedBy b -Environment prod -Reason r -StartedAt (Get-Date) `
                -CurrentRef 'registry.kfm.local/kfm-api:v1.2' -RollbackTargetRef $good -ChangedSurface api -Health pass -PolicyInvariants pass -ContractSmoke pass } |
            Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ReceiptRefNotImmutable,*'
        $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $err.Exception.Message | Should -Match 'current_ref'
        $err.Exception.Message | Should -Match 'digest'
    }

    It 'refuses secret-looking notes without echoing the secret' {
        $canary = 'ghp_' + 'K' * 36
        $err = { New-TestReceipt -Journal $journal -Notes "token was $canary" } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ReceiptNotesLookSecret,*'
        $err.Exception.Message | Should -Not -Match $canary
        $err.CategoryInfo.Category | Should -Be 'SecurityError'
    }
}

Describe 'Save, Get and Test a receipt store' {
    BeforeEach {
        $root = New-KfmTestDirectory
        $store = Join-Path $root 'receipts'
        $journal = Join-Path $root 'incidents.ndjson'
    }

    It 'flows incident → receipt → store and returns the chain head' {
        $saved = New-KfmIncident -Id INC-1042 -Commander alice -Reason '5xx spike after deploy' -Environment prod -JournalPath $journal -Confirm:$false |
            New-KfmRollbackReceipt -ApprovedBy bob -CurrentRef $bad -RollbackTargetRef $good -ChangedSurface api -Health pass -PolicyInvariants pass -ContractSmoke pass |
            Save-KfmRollbackReceipt -Store $store -JournalPath $journal -Confirm:$false
        $saved.ChainHead | Should -Match '^sha256:[a-f0-9]{64}$'
        Test-Path (Join-Path $store ("{0}.json" -f $saved.Digest.Substring(7))) | Should -BeTrue
        (Get-KfmRollbackReceipt -Store $store).Receipt.IncidentId | Should -Be 'INC-1042'
        (Test-KfmRollbackReceipt -Store $store -Anchor $saved.ChainHead).IsValid | Should -BeTrue
        (Get-KfmIncident INC-1042 -JournalPath $journal).Timeline[-1].Event | Should -Match ([regex]::Escape($saved.ChainHead))
    }

    It 'stores the same receipt once and changes nothing the second time' {
        $receipt = New-TestReceipt -Journal $journal
        $first = $receipt | Save-KfmRollbackReceipt -Store $store -Confirm:$false
        $second = $receipt | Save-KfmRollbackReceipt -Store $store -Confirm:$false
        $second.AlreadyStored | Should -BeTrue
        $second.ChainHead | Should -Be $first.ChainHead
        @(Get-Content (Join-Path $store 'ledger.ndjson')).Count | Should -Be 1
    }

    Context 'tampering' {
        BeforeEach {
            $heads = foreach ($id in 'INC-1', 'INC-2', 'INC-3') {
                (New-TestReceipt -IncidentId $id -Journal $journal | Save-KfmRollbackReceipt -Store $store -Confirm:$false).ChainHead
            }
            $ledger = Join-Path $store 'ledger.ndjson'
        }

        It 'names the receipt when one byte of it changed' {
            $entry = (Get-Content $ledger)[1] | ConvertFrom-Json
            $file = Join-Path $store ($entry.receipt_digest.Substring(7) + '.json')
            $bytes = [IO.File]::ReadAllBytes($file)
            $index = [Array]::IndexOf($bytes, [byte][char]'5')   # inside "5xx spike after deploy"
            $bytes[$index] = [byte][char]'6'
            [IO.File]::WriteAllBytes($file, $bytes)

            $report = Test-KfmRollbackReceipt -Store $store -ErrorVariable problems -ErrorAction SilentlyContinue
            $report.IsValid | Should -BeFalse
            $report.FirstProblem.Kind | Should -Be 'ReceiptDigestMismatch'
            $report.FirstProblem.Sequence | Should -Be 2
            $problems[0].FullyQualifiedErrorId | Should -BeLike 'ReceiptDigestMismatch,*'
            $problems[0].Exception.Message | Should -Match 'ledger entry 2'
            Test-KfmRollbackReceipt -Store $store -Quiet | Should -BeFalse
        }

        It 'names the break when a ledger line is removed' {
            $lines = Get-Content $ledger
            Set-Content $ledger -Value @($lines[0], $lines[2])
            $report = Test-KfmRollbackReceipt -Store $store -ErrorAction SilentlyContinue
            $report.IsValid | Should -BeFalse
            $report.Problems.Kind | Should -Contain 'ChainBroken'
        }

        It 'sees a cut-off tail only with the anchor' {
            $lines = Get-Content $ledger
            Set-Content $ledger -Value $lines[0..1]
            Test-KfmRollbackReceipt -Store $store -ErrorAction SilentlyContinue -Quiet | Should -BeFalse -Because 'the third receipt file is no longer in the ledger'
            Remove-Item (Join-Path $store (($lines[2] | ConvertFrom-Json).receipt_digest.Substring(7) + '.json'))
            (Test-KfmRollbackReceipt -Store $store).IsValid | Should -BeTrue -Because 'a clean cut leaves a valid shorter chain'
            $report = Test-KfmRollbackReceipt -Store $store -Anchor $heads[-1] -ErrorAction SilentlyContinue
            $report.IsValid | Should -BeFalse
            $report.FirstProblem.Kind | Should -Be 'AnchorNotFound'
        }
    }

    It 'refuses a store that is not writable and writes nothing' {
        $blocker = Join-Path $root 'a-file'
        Set-Content $blocker 'x'
        $err = { New-TestReceipt -Journal $journal | Save-KfmRollbackReceipt -Store (Join-Path $blocker 'receipts') -Confirm:$false } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ReceiptStoreNotWritable,*'
        $err.CategoryInfo.Category | Should -Be 'WriteError'
        (Get-Content $blocker) | Should -Be 'x'
    }

    It 'refuses to overwrite a receipt file that exists with other content' {
        $receipt = New-TestReceipt -Journal $journal
        New-Item -ItemType Directory $store | Out-Null
        $path = Join-Path $store ($receipt.Digest.Substring(7) + '.json')
        Set-Content $path '{"forged": true}'
        $err = { $receipt | Save-KfmRollbackReceipt -Store $store -Confirm:$false } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ReceiptFileConflict,*'
        Get-Content $path | Should -Be '{"forged": true}'
        Test-Path (Join-Path $store 'ledger.ndjson') | Should -BeFalse
    }

    It 'writes nothing under -WhatIf' {
        New-TestReceipt -Journal $journal | Save-KfmRollbackReceipt -Store $store -WhatIf
        Test-Path $store | Should -BeFalse
    }
}

Describe 'Signed receipts in a git store, from the configuration' {
    BeforeAll {
        $root = New-KfmTestDirectory
        $configDir = Join-Path $root 'ops'
        New-Item -ItemType Directory $configDir | Out-Null
        $config = Join-Path $configDir 'kfm-rollback.yaml'
        Copy-Item (Join-Path $KfmModulePath 'kfm-rollback.example.yaml') $config
        New-KfmTestKeyPair -PrivatePath (Join-Path $configDir 'keys/receipt-signing.pem') -PublicPath (Join-Path $configDir 'keys/receipt-signing.pub')
        New-KfmTestKeyPair -PrivatePath (Join-Path $root 'other/key.pem') -PublicPath (Join-Path $root 'other/key.pub')
        $journal = Join-Path $root 'incidents.ndjson'
        $saved = New-TestReceipt -Journal $journal | Save-KfmRollbackReceipt -ConfigPath $config -Environment prod -Confirm:$false
        $gitStore = Join-Path $root 'kfm-ops-receipts'
    }

    It 'commits the receipt and returns the commit id with the chain head' {
        $saved.CommitId | Should -Match '^[0-9a-f]{40}$'
        git -C $gitStore log --format=%H -1 | Should -Be $saved.CommitId
        $saved.SignaturePath | Should -Exist
    }

    It 'verifies with the configured public key and fails with another key' {
        (Test-KfmRollbackReceipt -ConfigPath $config -Environment prod -Anchor $saved.ChainHead).IsValid | Should -BeTrue
        $report = Test-KfmRollbackReceipt -ConfigPath $config -Environment prod -PublicKey (Join-Path $root 'other/key.pub') -ErrorAction SilentlyContinue
        $report.IsValid | Should -BeFalse
        $report.Problems.Kind | Should -Contain 'SignatureInvalid'
    }
}

Describe 'Isolation from other modules'' YamlDotNet' {
    It 'keeps YAML and git working with YamlDotNet 16.3.0 loaded first, and leaves that version working' {
        $yaml163 = Join-Path $env:KFM_TEST_NUGET_PACKAGES 'yamldotnet/16.3.0/lib/net8.0/YamlDotNet.dll'
        $yaml163 | Should -Exist
        $dir = New-KfmTestDirectory
        $script = @"
`$ErrorActionPreference = 'Stop'
Add-Type -Path '$yaml163'
`$before = [YamlDotNet.Serialization.DeserializerBuilder]::new().Build().Deserialize[object]('a: 1')
Import-Module '$KfmManifest'
`$envs = Get-KfmEnvironment -ConfigPath '$(Join-Path $KfmModulePath 'kfm-rollback.example.yaml')'
`$receipt = New-KfmRollbackReceipt -IncidentId INC-9 -RequestedBy a -ApprovedBy b -Environment prod -Reason r -StartedAt (Get-Date) ``
    -CurrentRef '$(New-KfmTestDigest 'a')' -RollbackTargetRef '$(New-KfmTestDigest 'b')' -ChangedSurface api -Health pass -PolicyInvariants pass -ContractSmoke pass
`$saved = `$receipt | Save-KfmRollbackReceipt -Store '$dir/git-store' -Git -JournalPath '$dir/j.ndjson' -Confirm:`$false
`$after = [YamlDotNet.Serialization.DeserializerBuilder]::new().Build().Deserialize[object]('b: 2')
'envs=' + (`$envs.Name -join ',')
'commit=' + `$saved.CommitId
'yaml=' + [YamlDotNet.Serialization.DeserializerBuilder].Assembly.GetName().Version
'after=' + `$after['b']
`$versions = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { `$_.GetName().Name -eq 'YamlDotNet' } | ForEach-Object { `$_.GetName().Version.Major }
'loaded=' + ((`$versions | Sort-Object) -join ',')
"@
        $out = Invoke-KfmChildPwsh -Script $script
        $out | Should -Contain 'envs=dr,prod,staging'
        ($out | Where-Object { $_ -like 'commit=*' }) | Should -Match '^commit=[0-9a-f]{40}$'
        $out | Should -Contain 'yaml=16.0.0.0'
        $out | Should -Contain 'after=2'
        $out | Should -Contain 'loaded=16,18'
    }
}
