# Issue 17: a whole incident on the lab with secrets planted everywhere the API keeps them (a Secret's
# values, a ConfigMap DSN with a password, literal env values under credential names), run through
# every runbook step the module has (freeze with evidence, refs, plan, -WhatIf, a cluster rollback
# of image and config that first fails on the Secret write and then succeeds, verification, receipt,
# evidence, report, follow-up and the re-align PR on a loopback GitHub), with every stream captured.
# No canary and no token may appear in any output, error, file, git repository or request the
# module sent to GitHub.

BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    . (Join-Path $PSScriptRoot 'LoopbackGitHub.ps1')
    Import-Module $KfmManifest -Force
    $lab = Start-KfmVerificationLab
    $catalogue = $lab.Facts.catalogue
    $env:KFM_ROLLBACK_STATE = Join-Path $lab.Directory 'module-state'
    $env:KFM_SEC_GITHUB_TOKEN = 'ghp_' + ('Sec9' * 9)
    $github = Start-KfmLoopbackGitHub

    # Canaries: unique per run, so a match can only be a leak of this run.
    $tag = [Guid]::NewGuid().ToString('N').Substring(0, 10)
    $script:Canaries = [ordered]@{
        SecretBefore = "kfmCanarySecretBefore$tag"
        SecretAfter  = "kfmCanarySecretAfter$tag"
        DsnPassword  = "kfmCanaryDsnPw$tag"
        DsnPassword2 = "kfmCanaryDsnPwBad$tag"
        SigningKey   = "kfmCanarySigningKey$tag"
        DbPwd        = "kfmCanaryDbPwd$tag"
    }
    # Credentials the module holds: none may show either.
    $script:Tokens = [ordered]@{
        Admin   = $lab.AdminToken
        Public  = $lab.Facts.kfmApi.tokens.public
        Steward = $lab.Facts.kfmApi.tokens.steward
        GitHub  = $env:KFM_SEC_GITHUB_TOKEN
    }
    function Needles([System.Collections.IDictionary] $Values) {
        foreach ($value in $Values.Values) {
            $value
            [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($value))
        }
    }
    # Every needle found in a text, named (never printed: the assertion says which canary, not its value).
    function Find-Leak([string] $Text, [System.Collections.IDictionary] $Values) {
        foreach ($name in $Values.Keys) {
            $value = $Values[$name]
            $b64 = [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($value))
            if ($Text.Contains($value)) { $name }
            elseif ($Text.Contains($b64)) { "$name (base64)" }
        }
    }
    # Every string reachable from an object through its public properties, as Get-Error and
    # Format-List * -Force show them (inner exceptions, requests, headers, bodies, data), bounded:
    # reflection metadata and PowerShell's own command metadata are skipped.
    function Get-ReachableText($Root, [int] $MaxDepth = 7) {
        $seen = [System.Collections.Generic.HashSet[object]]::new([System.Collections.Generic.ReferenceEqualityComparer]::Instance)
        $text = [System.Text.StringBuilder]::new()
        function Walk($value, [int] $depth) {
            if ($null -eq $value -or $depth -gt $MaxDepth) { return }
            if ($value -is [string]) { [void]$text.AppendLine($value); return }
            $type = $value.GetType()
            if ($type.IsPrimitive -or $type.IsEnum -or $value -is [datetime] -or $value -is [datetimeoffset] -or $value -is [timespan] -or $value -is [decimal]) { [void]$text.AppendLine("$value"); return }
            if ($value -is [type] -or $value -is [System.Reflection.MemberInfo] -or $value -is [System.Reflection.Assembly] -or $value -is [System.Reflection.Module] -or
                $value -is [delegate] -or $value -is [System.IO.Stream] -or $value -is [scriptblock] -or $value -is [System.Management.Automation.CommandInfo] -or
                $value -is [System.Management.Automation.PSModuleInfo] -or $value -is [System.Management.Automation.Runspaces.Runspace]) { return }
            if (-not $seen.Add($value)) { return }
            if ($value -is [System.Collections.IDictionary]) { foreach ($key in @($value.Keys)) { Walk $key ($depth + 1); Walk $value[$key] ($depth + 1) } }
            elseif ($value -is [System.Collections.IEnumerable]) { $n = 0; foreach ($item in $value) { if ($n++ -gt 200) { break }; Walk $item ($depth + 1) } }
            if ($value -is [System.Net.Http.Headers.HttpHeaders]) { foreach ($h in $value) { [void]$text.AppendLine("$($h.Key): $($h.Value -join ', ')") } }
            if ($value -is [System.Net.Http.HttpContent]) { try { [void]$text.AppendLine($value.ReadAsStringAsync().GetAwaiter().GetResult()) } catch { } }
            foreach ($property in $type.GetProperties([System.Reflection.BindingFlags] 'Public, Instance')) {
                if ($property.GetIndexParameters().Count -gt 0 -or $property.Name -in 'TargetSite', 'StackTrace') { continue }
                try { $child = $property.GetValue($value) } catch { continue }
                Walk $child ($depth + 1)
            }
        }
        Walk $Root 0
        $text.ToString()
    }
    function Set-Secret([string] $Value) {
        $yaml = Invoke-KfmLabKubectl $lab create secret generic kfm-api-oidc -n kfm "--from-literal=client_secret=$Value" --dry-run=client -o yaml
        ($yaml -join "`n") | & /usr/bin/kubectl --kubeconfig $lab.Kubeconfig apply -f - | Out-Null
    }
    function Set-Dsn([string] $Password) {
        $patch = @{ data = @{ DATABASE_URL = "postgres://kfm:$Password@db.kfm.internal:5432/kfm"; log_level = 'info' } } | ConvertTo-Json -Compress
        Invoke-KfmLabKubectl $lab patch configmap kfm-api-config -n kfm --type merge -p $patch | Out-Null
    }

    # The deploy repository: good pinned, then bad (the state Git is in when the incident starts).
    $bare = (New-KfmTestDeployRepository -Directory $lab.Directory -Digests $catalogue.'good-1.5.1'.digest, $catalogue.'bad-5xx'.digest).Bare

    $config = Join-Path $lab.Directory 'security.yaml'
    (Get-Content -Raw $lab.Config) `
        -replace 'configmaps: \[kfm-api-config\]', "configmaps: [kfm-api-config]`n      secrets: [kfm-api-oidc]" `
        -replace '      path: gitops', "      url: file://$bare`n      pr:`n        provider: github`n        repository: kfm/infra`n        token_env: KFM_SEC_GITHUB_TOKEN`n        base_url: $($github.Url)" `
        -replace '    approval_required: false', "    approval_required: false`n    follow_up:`n      provider: github`n      repository: kfm/kfm-api`n      token_env: KFM_SEC_GITHUB_TOKEN`n      base_url: $($github.Url)" |
        Set-Content $config
    $env:KFM_ROLLBACK_CONFIG = $config

    # The planted secrets: the good build already runs with them.
    Set-Secret $Canaries.SecretBefore
    Set-Dsn $Canaries.DsnPassword
    Invoke-KfmLabKubectl $lab set env deployment/kfm-api -n kfm -c api "API_SIGNING_KEY=$($Canaries.SigningKey)" "DB_PWD=$($Canaries.DbPwd)" LOG_FORMAT=json | Out-Null
    Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api -n kfm --timeout=90s | Out-Null
    Start-Sleep -Seconds 6   # a few scrapes, so evidence has samples

    $script:incidentId = 'SEC-' + $tag.Substring(0, 8)
    $Error.Clear()   # from here on, $Error holds what the incident produced
    $script:streams = & {
        $incident = New-KfmIncident -Id $incidentId -Commander ic -Reason 'canary incident: 5xx after deploy' -Environment lab `
            -StartedAt ([DateTimeOffset]::UtcNow.AddSeconds(-30)) -ImpactedEndpoint 'restricted:/api/v1/datasets/{id}' -Confirm:$false -Verbose
        $incident | Start-KfmFreeze -Evidence -Confirm:$false -Verbose -Debug
        Get-KfmFreeze -Verbose
        Get-KfmApiRef -Verbose
        Get-KfmRolloutHistory -Verbose

        # The bad deploy changes image, config and secret together.
        Invoke-KfmLabKubectl $lab set image deployment/kfm-api -n kfm "api=$($catalogue.'bad-5xx'.image)" | Out-Null
        Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api -n kfm --timeout=90s | Out-Null
        Set-Dsn $Canaries.DsnPassword2
        Set-Secret $Canaries.SecretAfter

        $script:plan = $incident | Get-KfmRollbackPlan -Verbose
        $plan
        # -WhatIf text goes to the host: a child pwsh, whose host output is captured, shows every planned change.
        $script:whatIf = Invoke-KfmChildPwsh -Script (
            "Import-Module '$KfmManifest'; " +
            "try { Invoke-KfmRollback -IncidentId $incidentId -Method Cluster -Surface Image, Config -WhatIf -Verbose -Debug *>&1 } catch { `$_ | Out-String }; " +
            "try { Get-KfmRollbackPlan -IncidentId $incidentId | Invoke-KfmRollback -WhatIf -Verbose *>&1 } catch { `$_ | Out-String }") | Out-String -Width 4096
        $whatIf

        # The Secret write fails at the apiserver: the failure is reported, with nothing of the request.
        Invoke-KfmLabAdmin -Lab $lab -Path faults -Method POST -Body @{ resource = 'secrets'; verb = 'update'; dryRun = $false; errorRate = '1'; errorCode = 500 } | Out-Null
        $script:failed = Invoke-KfmRollback -IncidentId $incidentId -Method Cluster -Surface Image, Config -Confirm:$false -Verbose -Debug -ErrorAction SilentlyContinue
        $failed
        Invoke-KfmLabAdmin -Lab $lab -Path faults -Method DELETE | Out-Null

        $script:result = Invoke-KfmRollback -IncidentId $incidentId -Method Cluster -Surface Image, Config -Wait -Timeout 90 -Confirm:$false -Verbose -Debug
        $result | Format-List * -Force
        $script:verified = $result | Test-KfmRollback -Verbose
        $verified | Format-List * -Force
        $script:saved = $verified | New-KfmRollbackReceipt -ApprovedBy bob -Verbose | Save-KfmRollbackReceipt -Confirm:$false -Verbose
        $saved
        $verified | Save-KfmEvidence -IncidentId $incidentId -Confirm:$false -Verbose
        $script:followUp = New-KfmFollowUp -IncidentId $incidentId -Confirm:$false -Verbose
        $followUp
        $script:report = Export-KfmIncidentReport -IncidentId $incidentId -Confirm:$false -Verbose
        $report
        $script:realign = @(Test-KfmDrift -IncidentId $incidentId -WarningAction Continue | Invoke-KfmRollback -Method GitOps -Confirm:$false -Verbose -Debug)
        $realign | Format-List * -Force
        Get-KfmIncident -Id $incidentId | Format-List * -Force
        (Get-KfmIncident -Id $incidentId).Timeline
    } *>&1 | Out-String -Width 4096

    $script:errorCount = $Error.Count
    $script:errors = @(
        $Error | Format-List * -Force | Out-String -Width 4096
        $Error | ForEach-Object { $e = $_.Exception; while ($e) { $e | Format-List * -Force | Out-String -Width 4096; $e = $e.InnerException } }
        Get-Error -Newest ([Math]::Max(1, $Error.Count)) | Out-String -Width 4096
        $Error | ForEach-Object { Get-ReachableText $_ }
    ) -join "`n"
}

AfterAll {
    Stop-KfmLoopbackGitHub $github
    Stop-KfmVerificationLab $lab
    Remove-Item env:KFM_ROLLBACK_STATE, env:KFM_SEC_GITHUB_TOKEN -ErrorAction SilentlyContinue
}

Describe 'A whole incident with planted secrets' {
    It 'went through every step (so each had the chance to leak)' {
        $failed.Outcome | Should -Be 'Failed'
        $failed.Error.ErrorId | Should -Be 'ClusterServerError'
        $result.Outcome | Should -Be 'Succeeded'
        $result.ChangedSurfaces | Should -Be @('api', 'config')
        $saved.Digest | Should -Match '^sha256:'
        $report.MarkdownPath | Should -Exist
        $followUp.Location | Should -Match '^https://github\.loopback\.test/kfm/kfm-api/issues/'
        $realign.Count | Should -Be 1
        $realign[0].Outcome | Should -Be 'PendingMerge'
        $realign[0].PullRequestUrl | Should -Match '^https://github\.loopback\.test/kfm/infra/pull/'
        @($github.Calls | Where-Object { $_.Method -eq 'POST' }).Count | Should -Be 2
        # The rollback restored what the good build ran with: the module sent the real values.
        $b64 = Invoke-KfmLabKubectl $lab get secret kfm-api-oidc -n kfm -o 'jsonpath={.data.client_secret}'
        [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($b64)) | Should -Be $Canaries.SecretBefore
        (Invoke-KfmLabKubectl $lab get configmap kfm-api-config -n kfm -o 'jsonpath={.data.DATABASE_URL}') | Should -Match ([regex]::Escape($Canaries.DsnPassword))
        $template = (Get-KfmLabDeployment $lab).spec.template.spec.containers[0].env
        ($template | Where-Object name -EQ 'API_SIGNING_KEY').value | Should -Be $Canaries.SigningKey
        $whatIf | Should -Match 'What if: lab: json-patch deployment kfm/kfm-api'
        $whatIf | Should -Match '<redacted sha256:[0-9a-f]{12}>'
    }

    It 'shows no canary and no token in any stream, -WhatIf text, error record or Get-Error' {
        foreach ($text in $streams, $whatIf, $errors) {
            Find-Leak $text $Canaries | Should -BeNullOrEmpty
            Find-Leak $text $Tokens | Should -BeNullOrEmpty
        }
        $errorCount | Should -BeGreaterThan 0
        $errors | Should -Match 'ClusterServerError'
        $errors | Should -Match 'k8s.Autorest.HttpOperationException'
    }

    It 'keeps no canary or token in RollbackResult.Error, walked like Get-Error does' {
        $text = @(
            $failed.Error | Format-List * -Force | Out-String -Width 4096
            Get-Error -InputObject $failed.Error | Out-String -Width 4096
            Get-ReachableText $failed
        ) -join "`n"
        $text | Should -Match 'kfm-api-oidc'
        Find-Leak $text $Canaries | Should -BeNullOrEmpty
        Find-Leak $text $Tokens | Should -BeNullOrEmpty
    }

    It 'writes no canary or token into the journal, receipts, evidence, report, follow-up or module state' {
        $state = @(
            (Join-Path $lab.Directory 'state')          # journal, receipts, evidence, reports, contracts
            $env:KFM_ROLLBACK_STATE                     # the GitOps clone cache
        )
        $files = @(Get-ChildItem -Recurse -File $state)
        $files.Count | Should -BeGreaterThan 20
        foreach ($f in $files) {
            $text = [IO.File]::ReadAllText($f.FullName)
            Find-Leak $text $Canaries | Should -BeNullOrEmpty -Because $f.FullName
            Find-Leak $text $Tokens | Should -BeNullOrEmpty -Because $f.FullName
        }
    }

    It 'leaves no canary anywhere in the lab directory but the apiserver''s own record of what it stores' {
        # audit.log is the cluster's storage of the objects it was sent (the Secret itself, by design);
        # lab.json and kubeconfig are the lab's credentials, which the test gave the module.
        $files = @(Get-ChildItem -Recurse -File $lab.Directory | Where-Object { $_.Name -notin 'audit.log', 'lab.json', 'kubeconfig' -and $_.FullName -notmatch '[\\/]prometheus[\\/]data[\\/]' })
        foreach ($f in $files) {
            $text = [IO.File]::ReadAllText($f.FullName)
            Find-Leak $text $Canaries | Should -BeNullOrEmpty -Because $f.FullName
        }
    }

    It 'commits no canary or token into any git repository, and sends none to GitHub' {
        foreach ($repo in @($bare) + @(Get-ChildItem -Directory (Join-Path $env:KFM_ROLLBACK_STATE 'gitops') | ForEach-Object FullName)) {
            $history = (git -C $repo log --all -p --format='%H%n%an <%ae>%n%B' 2>&1) -join "`n"
            $history | Should -Match 'Incident: '
            Find-Leak $history $Canaries | Should -BeNullOrEmpty -Because $repo
            Find-Leak $history $Tokens | Should -BeNullOrEmpty -Because $repo
        }
        $sent = ($github.Calls | ForEach-Object { "$($_.Method) $($_.Path)`n$($_.Body)" }) -join "`n"
        $sent | Should -Match 'Verification checklist'
        Find-Leak $sent $Canaries | Should -BeNullOrEmpty
        Find-Leak $sent ([ordered]@{ Admin = $Tokens.Admin; Public = $Tokens.Public; Steward = $Tokens.Steward }) | Should -BeNullOrEmpty
        # The GitHub token goes only where it belongs: the Authorization header of calls to the configured API.
        $github.Calls | ForEach-Object { $_.Authorization | Should -Be "token $($Tokens.GitHub)" }
    }
}
