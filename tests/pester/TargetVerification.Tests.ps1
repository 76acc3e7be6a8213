# Verifying the rollback target (issue 19 item 3), as an operator meets it on the lab: the target
# build's cosign signature is read from a real OCI registry on loopback (Debian's docker-registry)
# and checked with the release pipeline's key. Images and signatures are written here by the
# published formats: the OCI distribution spec v1.1 "Push" section (POST/PUT blob uploads, PUT
# manifests) and sigstore/cosign's signature specification (specs/SIGNATURE_SPEC.md: the manifest
# tagged sha256-<hex>.sig, each layer an application/vnd.dev.cosign.simplesigning.v1+json payload
# whose critical.image.docker-manifest-digest is the signed digest, its annotation
# dev.cosignproject.cosign/signature the base64 ECDSA P-256/SHA-256 DER signature over the payload).

BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    . (Join-Path $PSScriptRoot 'LoopbackListener.ps1')
    Import-Module $KfmManifest -Force
    $lab = Start-KfmTestLab
    $env:KFM_ROLLBACK_CONFIG = $lab.Config
    $audit = Join-Path $lab.Directory 'audit.log'
    function Get-StoredWrites([int] $Skip) { Get-KfmLabStoredWrites $lab -Skip $Skip }
    function Get-Image { Invoke-KfmLabKubectl $lab get deployment kfm-api -n kfm -o 'jsonpath={.spec.template.spec.containers[0].image}' }

    # The registry: docker-registry serving a fresh storage directory on a free loopback port.
    $registryDir = Join-Path $lab.Directory 'registry'
    New-Item -ItemType Directory $registryDir | Out-Null
    $port = Get-KfmFreePort
    "version: 0.1`nlog:`n  level: warn`nstorage:`n  filesystem:`n    rootdirectory: $registryDir/data`nhttp:`n  addr: 127.0.0.1:$port`n  secret: kfm-lab-only`n" | Set-Content (Join-Path $registryDir 'config.yml')
    $registryProcess = Start-Process /usr/bin/docker-registry -ArgumentList 'serve', (Join-Path $registryDir 'config.yml') -PassThru `
        -RedirectStandardOutput (Join-Path $registryDir 'out.log') -RedirectStandardError (Join-Path $registryDir 'err.log')
    $registry = "http://127.0.0.1:$port"
    $ready = $false
    foreach ($i in 1..200) {
        try { if ((Invoke-WebRequest "$registry/v2/" -SkipHttpErrorCheck).StatusCode -eq 200) { $ready = $true; break } } catch { }
        Start-Sleep -Milliseconds 50
    }
    if (-not $ready) { throw "docker-registry did not answer on $registry" }

    $repository = 'kfm/api'
    function Get-Digest([byte[]] $Bytes) { 'sha256:' + [Convert]::ToHexString([Security.Cryptography.SHA256]::HashData($Bytes)).ToLowerInvariant() }
    # "Pushing blobs": POST /v2/<name>/blobs/uploads/, then PUT <location>&digest=<digest> (monolithic).
    function Push-Blob([byte[]] $Bytes) {
        $started = Invoke-WebRequest -Method Post "$registry/v2/$repository/blobs/uploads/"
        $location = [Uri]::new([Uri]$registry, "$($started.Headers.Location)").AbsoluteUri
        $separator = if ($location.Contains('?')) { '&' } else { '?' }
        $digest = Get-Digest $Bytes
        Invoke-WebRequest -Method Put "$location$($separator)digest=$([Uri]::EscapeDataString($digest))" -Body $Bytes -ContentType 'application/octet-stream' | Out-Null
        $digest
    }
    # "Pushing Manifests": PUT /v2/<name>/manifests/<tag>.
    function Push-Manifest([string] $Tag, [string] $Json) {
        $bytes = [Text.Encoding]::UTF8.GetBytes($Json)
        Invoke-WebRequest -Method Put "$registry/v2/$repository/manifests/$Tag" -Body $bytes -ContentType 'application/vnd.oci.image.manifest.v1+json' | Out-Null
        Get-Digest $bytes
    }
    $config = [Text.Encoding]::UTF8.GetBytes('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')
    $configDigest = Push-Blob $config
    function Push-Image([string] $Tag, [string] $Content) {
        $layer = [Text.Encoding]::UTF8.GetBytes($Content)
        $layerDigest = Push-Blob $layer
        Push-Manifest $Tag "{`"schemaVersion`":2,`"mediaType`":`"application/vnd.oci.image.manifest.v1+json`",`"config`":{`"mediaType`":`"application/vnd.oci.image.config.v1+json`",`"digest`":`"$configDigest`",`"size`":$($config.Length)},`"layers`":[{`"mediaType`":`"application/vnd.oci.image.layer.v1.tar`",`"digest`":`"$layerDigest`",`"size`":$($layer.Length)}]}"
    }
    # A cosign signature of $Target: the simple-signing payload as one layer of sha256-<hex>.sig.
    function Set-Signature([string] $Target, [Security.Cryptography.ECDsa] $Key, [string] $Scenario) {
        $payload = [Text.Encoding]::UTF8.GetBytes("{`"critical`":{`"identity`":{`"docker-reference`":`"registry.kfm.local/$repository`"},`"image`":{`"docker-manifest-digest`":`"$Target`"},`"type`":`"cosign container image signature`"},`"optional`":{`"scenario`":`"$Scenario`"}}")
        $signature = [Convert]::ToBase64String($Key.SignData($payload, [Security.Cryptography.HashAlgorithmName]::SHA256, [Security.Cryptography.DSASignatureFormat]::Rfc3279DerSequence))
        $payloadDigest = Push-Blob $payload
        Push-Manifest ($Target.Replace(':', '-') + '.sig') "{`"schemaVersion`":2,`"mediaType`":`"application/vnd.oci.image.manifest.v1+json`",`"config`":{`"mediaType`":`"application/vnd.oci.image.config.v1+json`",`"digest`":`"$configDigest`",`"size`":$($config.Length)},`"layers`":[{`"mediaType`":`"application/vnd.dev.cosign.simplesigning.v1+json`",`"digest`":`"$payloadDigest`",`"size`":$($payload.Length),`"annotations`":{`"dev.cosignproject.cosign/signature`":`"$signature`"}}]}" | Out-Null
        $payloadDigest
    }

    $pipeline = [Security.Cryptography.ECDsa]::Create([Security.Cryptography.ECCurve+NamedCurves]::nistP256)
    $stranger = [Security.Cryptography.ECDsa]::Create([Security.Cryptography.ECCurve+NamedCurves]::nistP256)
    $pipeline.ExportSubjectPublicKeyInfoPem() | Set-Content (Join-Path $lab.Directory 'cosign.pub')
    Add-Content $lab.Config "    registry:`n      url: $registry`n      repository: $repository`n    verify:`n      public_key_file: cosign.pub`n"

    $good = Push-Image '1.7.0' 'good build'
    $bad = Push-Image '1.7.1' 'bad build'
    # The good build is deployed through Argo CD (whose self-heal would otherwise put the seeded build
    # back) and runs when the incident is frozen (the freeze snapshots its configuration); then the bad one.
    Invoke-KfmLabKubectl $lab annotate application kfm-api -n argocd "lab.kfm.local/desired-image=registry.kfm.local/$repository@$good" --overwrite | Out-Null
    Invoke-KfmLabKubectl $lab set image deployment/kfm-api -n kfm "api=registry.kfm.local/$repository@$good" | Out-Null
    Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api -n kfm --timeout=60s | Out-Null
    New-KfmIncident -Id INC-SIG -Commander alice -Reason '5xx after deploy' -Environment lab | Out-Null
    Start-KfmFreeze -IncidentId INC-SIG -Confirm:$false | Out-Null
    Invoke-KfmLabKubectl $lab set image deployment/kfm-api -n kfm "api=registry.kfm.local/$repository@$bad" | Out-Null
    Invoke-KfmLabKubectl $lab rollout status deployment/kfm-api -n kfm --timeout=60s | Out-Null
}

AfterAll {
    if ($registryProcess) { Stop-Process -Id $registryProcess.Id -ErrorAction SilentlyContinue }
    Stop-KfmTestLab $lab
    Remove-Item env:KFM_ROLLBACK_CONFIG -ErrorAction SilentlyContinue
}

Describe 'A target that fails verification is refused before any change' {
    It 'unsigned: the plan shows target-verify failed, and Invoke-KfmRollback refuses with PreflightTargetUnsigned' {
        $plan = Get-KfmRollbackPlan -IncidentId INC-SIG -WarningAction SilentlyContinue
        $plan.Method | Should -Be 'Cluster'
        $plan.PreflightPassed | Should -BeFalse
        $check = $plan.Preflight | Where-Object Check -eq 'target-verify'
        $check.Verdict | Should -Be 'Failed'
        $check.ErrorId | Should -Be 'PreflightTargetUnsigned'
        $check.Target | Should -Be "127.0.0.1:$port/$repository@$good"
        ($plan | Out-String -Width 300) | Should -Match 'FAILED: target-verify \(PreflightTargetUnsigned\)'
        $before = @(Get-Content $audit).Count

        $thrown = { Invoke-KfmRollback -IncidentId INC-SIG -Method Cluster -Confirm:$false } |
            Should -Throw -ErrorId 'PreflightTargetUnsigned,KfmRollback.Cmdlets.Rollback.InvokeKfmRollbackCommand' -PassThru

        $thrown.Exception.Message | Should -Match 'Nothing was changed'
        $thrown.Exception.Message | Should -Match '-Force -ForceReason'
        $thrown.CategoryInfo.Category | Should -Be 'SecurityError'
        Get-StoredWrites $before | Should -BeNullOrEmpty -Because 'not even the rollback lock is taken'
        Get-Image | Should -Be "registry.kfm.local/$repository@$bad"
    }

    It 'signed with another key: PreflightTargetSignatureInvalid, nothing changed' {
        Set-Signature $good $stranger 'wrong-key' | Out-Null
        $before = @(Get-Content $audit).Count

        { Invoke-KfmRollback -IncidentId INC-SIG -Method Cluster -Confirm:$false } |
            Should -Throw -ErrorId 'PreflightTargetSignatureInvalid,KfmRollback.Cmdlets.Rollback.InvokeKfmRollbackCommand'

        Get-StoredWrites $before | Should -BeNullOrEmpty
        Get-Image | Should -Be "registry.kfm.local/$repository@$bad"
    }

    It 'signed by the pipeline: -WhatIf shows the check passed' {
        $script:payloadDigest = Set-Signature $good $pipeline 'valid'
        $whatIf = Invoke-KfmChildPwsh -Script "`$env:KFM_ROLLBACK_CONFIG = '$($lab.Config)'; Import-Module '$KfmManifest'; Invoke-KfmRollback -IncidentId INC-SIG -Method Cluster -WhatIf 2>&1 | Out-String -Width 1000; exit 0" | Out-String -Width 1000
        $whatIf | Should -Match 'What if: lab: preflight target-verify Passed: .*verifies with the configured key'
    }

    It 'its payload tampered with in the registry''s storage: PreflightTargetPayloadTampered, nothing changed' {
        $hex = $payloadDigest.Substring(7)
        $stored = Join-Path $registryDir "data/docker/registry/v2/blobs/sha256/$($hex.Substring(0, 2))/$hex/data"
        (Get-Content -Raw $stored).Replace('valid', 'VALID') | Set-Content -NoNewline $stored
        $before = @(Get-Content $audit).Count

        { Invoke-KfmRollback -IncidentId INC-SIG -Method Cluster -Confirm:$false } |
            Should -Throw -ErrorId 'PreflightTargetPayloadTampered,KfmRollback.Cmdlets.Rollback.InvokeKfmRollbackCommand'

        Get-StoredWrites $before | Should -BeNullOrEmpty
        Get-Image | Should -Be "registry.kfm.local/$repository@$bad"
    }
}

Describe '-Force -ForceReason past a refused target' {
    It 'rolls back, warns, and the timeline and the receipt record the override' {
        $result = Invoke-KfmRollback -IncidentId INC-SIG -Method Cluster -Force -ForceReason 'registry storage restored from backup; build checked by hand' -Confirm:$false -WarningVariable warned 3>$null

        $result.Outcome | Should -Be 'Succeeded'
        Get-Image | Should -Be "registry.kfm.local/$repository@$good"
        "$warned" | Should -Match 'preflight target-verify refused the target \(PreflightTargetPayloadTampered'
        $result.ForcedChecks.ErrorId | Should -Be 'PreflightTargetPayloadTampered'
        (Get-KfmIncident INC-SIG).Timeline.Event | Where-Object { $_ -like 'FORCED Cluster rollback of lab past preflight target-verify (PreflightTargetPayloadTampered:*registry storage restored from backup; build checked by hand' } |
            Should -HaveCount 1
        $receipt = $result | New-KfmRollbackReceipt -ApprovedBy bob -Health pass -PolicyInvariants pass -ContractSmoke pass
        $receipt.KfmIntegrity.ForcedChecks.ErrorId | Should -Be 'PreflightTargetPayloadTampered'
        $receipt.KfmIntegrity.ForcedChecks.Reason | Should -Be 'registry storage restored from backup; build checked by hand'
        $receipt.ToJson() | Should -Match '"forced_checks"'
    }
}
