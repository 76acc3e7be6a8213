# Runtime configuration and secrets rolled back with the image, and never shown.

BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    Import-Module $KfmManifest -Force
    $lab = Start-KfmTestLab
    $canaryBefore = 'kfm-canary-' + [Guid]::NewGuid().ToString('N')
    $canaryAfter = 'kfm-canary-' + [Guid]::NewGuid().ToString('N')
    function Set-Secret([string] $Value) {
        $b64 = [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($Value))
        "apiVersion: v1`nkind: Secret`nmetadata: { name: kfm-api-oidc, namespace: kfm }`ntype: Opaque`ndata: { client_secret: $b64 }" | Set-Content (Join-Path $lab.Directory 'secret.yaml')
        Invoke-KfmLabKubectl $lab apply -f (Join-Path $lab.Directory 'secret.yaml') | Out-Null
    }
    function Get-ConfigValue([string] $Key) { Invoke-KfmLabKubectl $lab get configmap kfm-api-config -n kfm -o "jsonpath={.data.$Key}" }
    function Get-SecretValue { [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String((Invoke-KfmLabKubectl $lab get secret kfm-api-oidc -n kfm -o 'jsonpath={.data.client_secret}'))) }

    Set-Secret $canaryBefore
    $config = Join-Path $lab.Directory 'surfaces.yaml'
    (Get-Content -Raw $lab.Config) -replace 'configmaps: \[kfm-api-config\]', "configmaps: [kfm-api-config]`n      secrets: [kfm-api-oidc]`n    policy_surface:`n      configmap: kfm-api-config`n      key: policy_bundle" | Set-Content $config
    $env:KFM_ROLLBACK_CONFIG = $config
    $journal = Join-Path $lab.Directory 'state/incidents/incidents.ndjson'
    New-KfmIncident -Id INC-CFG -Commander alice -Reason 'config change broke auth' -Environment lab -Confirm:$false | Out-Null
}

AfterAll {
    Stop-KfmTestLab $lab
    Remove-Item env:KFM_ROLLBACK_CONFIG, env:KFM_LAB_PUBLIC_TOKEN, env:KFM_LAB_STEWARD_TOKEN, env:KFM_LAB_RESTRICTED_IDS -ErrorAction SilentlyContinue
}

Describe 'Invoke-KfmRollback -Surface Config' {
    It 'restores a reused ConfigMap and Secret to what the target revision ran with' {
        $everything = & {
            Start-KfmFreeze -IncidentId INC-CFG -Confirm:$false -Verbose
            $good = Get-KfmApiRef
            # A bad deploy that also reuses the names with other content.
            $bad = $lab.Facts.catalogue.'bad-5xx'.image
            Invoke-KfmLabKubectl $lab set image deployment/kfm-api -n kfm "api=$bad" | Out-Null
            Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api -n kfm --timeout=60s | Out-Null
            Invoke-KfmLabKubectl $lab patch configmap kfm-api-config -n kfm --type merge -p '{"data":{"log_level":"trace"}}' | Out-Null
            Set-Secret $canaryAfter
            $script:result = Invoke-KfmRollback -IncidentId INC-CFG -Method Cluster -Surface Image, Config -Wait -Timeout 60 -Confirm:$false -Verbose -Debug
            $script:result
            $script:result | New-KfmRollbackReceipt -ApprovedBy bob -Health pass -PolicyInvariants pass -ContractSmoke pass | Save-KfmRollbackReceipt -Confirm:$false -Verbose
        } *>&1 | Out-String -Width 500

        $result.Outcome | Should -Be 'Succeeded'
        $result.ChangedSurfaces | Should -Be @('api', 'config')
        Get-ConfigValue 'log_level' | Should -Be 'info'
        Get-SecretValue | Should -Be $canaryBefore
        (Get-KfmIncident INC-CFG).Timeline.Event | Where-Object { $_ -like 'Restored secret kfm/kfm-api-oidc*' } | Should -Not -BeNullOrEmpty

        # The secret's values, before and after, appear nowhere the module writes.
        foreach ($canary in $canaryBefore, $canaryAfter) {
            $b64 = [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($canary))
            foreach ($needle in $canary, $b64) {
                $everything | Should -Not -Match ([regex]::Escape($needle))
                Get-ChildItem (Split-Path $journal) -Recurse -File | Get-Content -Raw | Should -Not -Match ([regex]::Escape($needle))
                Get-ChildItem (Join-Path $lab.Directory 'state/receipts') -Recurse -File | Get-Content -Raw | Should -Not -Match ([regex]::Escape($needle))
            }
        }
    }

    It '-WhatIf -Surface Image,Config,Policy shows exactly the changes a real run then sends' {
        # A bad deploy that also changes the config and the policy link, after the good state was snapshotted.
        $bad = $lab.Facts.catalogue.'bad-5xx'.image
        Invoke-KfmLabKubectl $lab set image deployment/kfm-api -n kfm "api=$bad" | Out-Null
        Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api -n kfm --timeout=60s | Out-Null
        Invoke-KfmLabKubectl $lab patch configmap kfm-api-config -n kfm --type merge -p ('{"data":{"log_level":"trace","policy_bundle":"kfm-policy@sha256-' + ('c' * 64) + '"}}') | Out-Null
        Set-Secret $canaryAfter
        Start-Sleep -Milliseconds 500   # let the controller settle its status writes
        $audit = Join-Path $lab.Directory 'audit.log'
        $writesBefore = @(Get-Content $audit).Count
        # What the apiserver stored: the preflight's dry runs (audited with dryRun=All) store nothing.
        function Get-StoredWrites { @(Get-Content $audit | Select-Object -Skip $writesBefore | ConvertFrom-Json -Depth 50 | Where-Object { $_.requestURI -notmatch 'dryRun=All' }) }

        $whatIf = Invoke-KfmChildPwsh -Script "`$env:KFM_ROLLBACK_CONFIG = '$config'; Import-Module '$KfmManifest'; Invoke-KfmRollback -IncidentId INC-CFG -Method Cluster -Surface Image, Config, Policy -WhatIf" | Out-String -Width 1000
        @(Get-StoredWrites).Count | Should -Be 0 -Because '-WhatIf changes nothing (its preflight only dry-runs)'
        # Each write was dry-run on the server, and -WhatIf says so.
        $whatIf | Should -Match 'preflight server-dry-run Passed: json-patch deployment kfm/kfm-api'
        $whatIf | Should -Match 'preflight server-dry-run Passed: replace-data secret kfm/kfm-api-oidc'

        $result = Invoke-KfmRollback -IncidentId INC-CFG -Method Cluster -Surface Image, Config, Policy -Confirm:$false
        $result.Outcome | Should -Be 'Succeeded'
        # What the lab's apiserver stored, less the rollback lock and the quarantine annotations on the
        # Deployment and the Argo CD Application (bookkeeping after the change, not a change to the API).
        $sent = @(Get-StoredWrites | Where-Object { $_.objectRef.resource -ne 'leases' -and $_.responseStatus.code -lt 300 -and -not $_.requestObject.metadata.annotations.'kfm.dev/quarantine' })
        $sent.objectRef.resource | Sort-Object | Should -Be @('configmaps', 'deployments', 'secrets')
        $flatWhatIf = $whatIf -replace '\s', ''
        foreach ($write in $sent) {
            $kind = @{ configmaps = 'configmap'; secrets = 'secret'; deployments = 'deployment' }[$write.objectRef.resource]
            $whatIf | Should -Match ([regex]::Escape("$kind kfm/$($write.objectRef.name)"))
        }
        $sentPatch = ($sent | Where-Object { $_.objectRef.resource -eq 'deployments' }).requestObject
        # The template's env values are shown as <redacted sha256:12 hex> (issue 17); the patch sent carries the real ones.
        $envValues = @($sentPatch | Where-Object path -EQ '/spec/template' | ForEach-Object { $_.value.spec.containers.env } | Where-Object { $null -ne $_.value })
        $envValues.Count | Should -BeGreaterThan 0
        foreach ($e in $envValues) {
            $flatWhatIf | Should -Not -Match ([regex]::Escape('"value":"' + $e.value + '"'))
            $e.value = '<redacted sha256:' + [Convert]::ToHexString([Security.Cryptography.SHA256]::HashData([Text.Encoding]::UTF8.GetBytes($e.value))).Substring(0, 12).ToLowerInvariant() + '>'
        }
        $patch = ConvertTo-Json -InputObject $sentPatch -Depth 50 -Compress
        $flatWhatIf | Should -Match ([regex]::Escape(($patch -replace '\s', ''))) -Because 'the patch sent is the patch shown, byte for byte, but for the redacted env values'
        $result.Changes.Count | Should -Be $sent.Count
        foreach ($canary in $canaryBefore, $canaryAfter) { $whatIf | Should -Not -Match ([regex]::Escape($canary)) }
    }

    It 'puts the policy bundle link back and restarts the pods (-Surface Policy)' {
        $good = Get-ConfigValue 'policy_bundle'
        $revision = (Get-KfmApiRef).Revision
        Invoke-KfmLabKubectl $lab patch configmap kfm-api-config -n kfm --type merge -p ('{"data":{"policy_bundle":"kfm-policy@sha256-' + ('b' * 64) + '"}}') | Out-Null
        $result = Invoke-KfmRollback -IncidentId INC-CFG -Method Cluster -Surface Policy -ToRevision $revision -Wait -Timeout 60 -Confirm:$false
        $result.Outcome | Should -Be 'Succeeded'
        $result.ChangedSurfaces | Should -Be @('policy')
        Get-ConfigValue 'policy_bundle' | Should -Be $good
        (Get-KfmLabDeployment $lab).spec.template.metadata.annotations.'kubectl.kubernetes.io/restartedAt' | Should -Not -BeNullOrEmpty -Because 'pods restart to load the restored bundle link'
    }

    It 'runs the policy cases after -Surface Policy -Wait: a bad bundle flips them, the restored good bundle passes them' {
        $env:KFM_LAB_PUBLIC_TOKEN = $lab.Facts.kfmApi.tokens.public
        $env:KFM_LAB_STEWARD_TOKEN = $lab.Facts.kfmApi.tokens.steward
        $env:KFM_LAB_RESTRICTED_IDS = 'burial_sites,tribal_consultation_notes'
        $cases = Join-Path $lab.Directory 'policy-cases.json'
        ConvertTo-Json -Depth 5 @(
            @{ name = 'public-reads-public'; caller = 'public-user'; endpoint = '/api/v1/datasets/kansas_counties'; expect = 'allow' }
            @{ name = 'public-denied-restricted'; caller = 'public-user'; endpoint = '/api/v1/datasets/burial_sites'; expect = 'deny' }
            @{ name = 'steward-reads-restricted'; caller = 'steward'; method = 'GET'; endpoint = '/api/v1/datasets/burial_sites'; expect = 'allow' }
        ) | Set-Content $cases
        $casesConfig = Join-Path $lab.Directory 'cases.yaml'
        (Get-Content -Raw $config) -replace 'key: policy_bundle', "key: policy_bundle`n      opa_status_url: $($lab.Facts.kfmApi.url)/v1/status`n      cases_file: $cases" | Set-Content $casesConfig
        Start-KfmFreeze -IncidentId INC-CFG -Confirm:$false | Out-Null   # snapshots the running revision's configuration: the last-known-good
        $revision = (Get-KfmApiRef).Revision
        Invoke-KfmLabKubectl $lab patch configmap kfm-api-config -n kfm --type merge -p ('{"data":{"policy_bundle":"kfm-policy@sha256-bad' + ('0' * 61) + '"}}') | Out-Null

        $bad = Test-KfmPolicyInvariant -ConfigPath $casesConfig -CasesOnly
        ($bad | Where-Object Check -EQ 'B.policy-bundle').Verdict | Should -Be 'Pass'
        ($bad | Where-Object Verdict -EQ 'Fail').Check | Sort-Object | Should -Be @('B.policy-case/public-denied-restricted', 'B.policy-case/steward-reads-restricted')
        ($bad | Where-Object Check -EQ 'B.policy-case/public-denied-restricted').Summary | Should -Match "flipped: expected deny, the API answered allow"
        ($bad | Out-String -Width 1000) | Should -Not -Match 'burial_sites'

        $result = Invoke-KfmRollback -ConfigPath $casesConfig -IncidentId INC-CFG -Method Cluster -Surface Policy -ToRevision $revision -Wait -Timeout 60 -Confirm:$false
        $result.Outcome | Should -Be 'Succeeded'
        ($result.PolicyCases | Where-Object Check -Like 'B.policy-case/*').Count | Should -Be 3
        $result.PolicyCases.Verdict | Should -Not -Contain 'Fail'
        (Test-KfmPolicyInvariant -ConfigPath $casesConfig -PolicyCases $cases -CasesOnly -Quiet) | Should -BeTrue
    }

    It 'says so when OPA reports another bundle than the one configured' {
        $casesConfig = Join-Path $lab.Directory 'cases.yaml'
        Invoke-KfmLabAdmin $lab -Path opa -Method POST -Body @{ active_revision = 'sha256:' + ('e' * 64) } | Out-Null
        try {
            $results = Test-KfmPolicyInvariant -ConfigPath $casesConfig -CasesOnly
            $bundle = $results | Where-Object Check -EQ 'B.policy-bundle'
            $bundle.Verdict | Should -Be 'Fail'
            $bundle.Summary | Should -Match ('OPA reports sha256:' + ('e' * 64) + ' as the active revision of kfm-policy, not the target bundle')
            @($results | Where-Object Check -Like 'B.policy-case/*').Count | Should -Be 0
        }
        finally { Invoke-KfmLabAdmin $lab -Path opa -Method POST -Body @{ active_revision = $null } | Out-Null }
        $plain = Join-Path $lab.Directory 'no-opa.yaml'
        (Get-Content -Raw $casesConfig) -replace '(?m)^\s*opa_status_url:.*\r?\n', '' | Set-Content $plain
        $inconclusive = Test-KfmPolicyInvariant -ConfigPath $plain -CasesOnly | Where-Object Check -EQ 'B.policy-bundle'
        $inconclusive.Verdict | Should -Be 'Inconclusive'
        $inconclusive.Summary | Should -Match 'opa_status_url is not configured'
    }

    It 'fails closed, changing nothing, when no snapshot records what a revision used' {
        $generation = (Get-KfmLabDeployment $lab).metadata.generation
        $before = Get-ConfigValue 'log_level'
        $err = { Invoke-KfmRollback -IncidentId INC-CFG -Method Cluster -Surface Config -ToRevision 1 -Confirm:$false } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ConfigSurfaceUnverifiable,*'
        $err.Exception.Message | Should -Match 'configmap kfm/kfm-api-config'
        (Get-KfmLabDeployment $lab).metadata.generation | Should -Be $generation
        Get-ConfigValue 'log_level' | Should -Be $before
    }

    It 'fails closed when a ConfigMap the target uses no longer exists' {
        $missingConfig = Join-Path $lab.Directory 'missing.yaml'
        (Get-Content -Raw $config) -replace 'configmaps: \[kfm-api-config\]', 'configmaps: [kfm-api-config, kfm-api-flags]' | Set-Content $missingConfig
        # An incident of its own: INC-CFG's last run went out already, and a rerun of it sends nothing.
        New-KfmIncident -Id INC-CFG-2 -Commander alice -Reason 'config flag file vanished' -Environment lab -ConfigPath $missingConfig -Confirm:$false | Out-Null
        $err = { Invoke-KfmRollback -ConfigPath $missingConfig -IncidentId INC-CFG-2 -Method Cluster -Surface Config -Confirm:$false } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ConfigSurfaceMissing,*'
        $err.Exception.Message | Should -Match 'kfm-api-flags'
    }
}
