<#
.SYNOPSIS
    Puts a running lab (build.ps1 -Task Lab) into the state the README's quick tour starts from, and
    writes beside its configuration everything the tour needs.
.DESCRIPTION
    The lab starts with good-1.5.1 serving (revision 4). This script, run in a fresh pwsh against the
    built module:
      1. writes the probe callers' credentials and the restricted ids the lab knows to files under
         <lab>/secrets (owner-only), and kfm-rollback.yaml reading them from there (token_file,
         restricted_ids_file), so no secret is printed or has to be typed;
      2. writes <lab>/lab.env.ps1, which points $env:KFM_ROLLBACK_CONFIG at that configuration and
         imports the module: dot-source it in the shell where you run the tour;
      3. records the good build's contract snapshot (Test-KfmContract -RecordSnapshot), which
         checklist C compares against, as an operator does for an accepted build, and freezes and
         thaws deploys once while it runs (Start-KfmFreeze snapshots the runtime configuration of the
         running revision, which Get-KfmRollbackPlan compares against: a lab with a freeze in its past);
      4. lets Prometheus see the good build serve for a while (the baseline), then deploys bad-5xx
         through Argo CD (a new desired image on the Application, synced by auto-sync): revision 5,
         2 of every 5 governed requests answer 500. That is the incident the tour rolls back.
    Prints one line per step.
#>
param(
    [Parameter(Mandatory)] [string] $LabDirectory,
    [Parameter(Mandatory)] [string] $ModulePath,
    # Seconds of good traffic Prometheus sees before the bad deploy (the metric baseline and the plots').
    [int] $BaselineSeconds = 20
)
$ErrorActionPreference = 'Stop'
if ([Console]::IsOutputRedirected -or $env:NO_COLOR) { $PSStyle.OutputRendering = 'PlainText' }
$LabDirectory = (Resolve-Path $LabDirectory).Path
$lab = Get-Content -Raw (Join-Path $LabDirectory 'lab.json') | ConvertFrom-Json
$good = $lab.catalogue.'good-1.5.1'
$bad = $lab.catalogue.'bad-5xx'

# 1. Secrets as files only the owner can read; the configuration names the files, never the values.
$secrets = Join-Path $LabDirectory 'secrets'
New-Item -ItemType Directory -Force $secrets | Out-Null
$files = [ordered]@{
    'public-token'   = $lab.kfmApi.tokens.public
    'steward-token'  = $lab.kfmApi.tokens.steward
    # Restricted datasets the stand-in API serves (tests/KfmRollback.Lab/KfmApi.cs).
    'restricted-ids' = 'burial_sites,tribal_consultation_notes'
}
foreach ($name in $files.Keys) {
    $path = Join-Path $secrets $name
    [IO.File]::WriteAllText($path, $files[$name])
    if (-not $IsWindows) { [IO.File]::SetUnixFileMode($path, [IO.UnixFileMode] 'UserRead, UserWrite') }
}
$config = & (Join-Path $PSScriptRoot 'New-KfmLabConfig.ps1') -LabDirectory $LabDirectory -SecretsDirectory $secrets
Write-Host "Configuration: $config (probe credentials and restricted ids read from $secrets)"

# 2. What the tour's shell needs: the configuration and the module.
$manifest = Join-Path (Resolve-Path $ModulePath).Path 'KfmRollback.psd1'
$envScript = Join-Path $LabDirectory 'lab.env.ps1'
@"
# Written by build.ps1 -Task Lab for the lab in $LabDirectory. Dot-source it where you run the README's
# quick tour:  . $envScript
`$env:KFM_ROLLBACK_CONFIG = '$($config -replace "'", "''")'
Import-Module '$($manifest -replace "'", "''")'
"@ | Set-Content -Path $envScript
Write-Host "Tour environment: $envScript"

$env:KFM_ROLLBACK_CONFIG = $config
Import-Module $manifest

function Get-ServedDigest {
    $meta = Invoke-RestMethod -Uri "$($lab.kfmApi.url)/api/v1/meta" -Headers @{ Authorization = "Bearer $($lab.kfmApi.tokens.public)" } -SkipHttpErrorCheck
    $meta.image_digest
}
function Wait-Until([scriptblock] $Condition, [string] $What, [int] $Seconds = 90) {
    $deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
    while (-not (& $Condition)) {
        if ([DateTime]::UtcNow -gt $deadline) { throw "Timed out after $Seconds s waiting for $What." }
        Start-Sleep -Milliseconds 250
    }
}

# 3. The accepted build's contract, recorded while it serves.
Wait-Until { (Get-ServedDigest) -eq $good.digest } 'the lab to serve good-1.5.1'
$recorded = @(Test-KfmContract -Environment lab -RecordSnapshot)
$refused = $recorded | Where-Object Check -EQ 'C.record'
if ($refused) { throw "The contract snapshot of good-1.5.1 was not recorded: $($refused.Summary)" }
Write-Host "Contract snapshot of good-1.5.1 ($($good.digest)) recorded"
$reason = 'lab history: deploys frozen once while good-1.5.1 served (its runtime configuration snapshotted)'
Start-KfmFreeze -Environment lab -Reason $reason -Confirm:$false | Out-Null
Stop-KfmFreeze -Environment lab -Reason $reason -Confirm:$false -WarningAction SilentlyContinue | Out-Null   # the lab has no Git desired state to check
Write-Host 'Runtime configuration of revision 4 (good-1.5.1) snapshotted by a freeze and thaw'

# 4. A baseline of good traffic, then the bad deploy through Argo CD, as a pipeline would make it.
Start-Sleep -Seconds $BaselineSeconds
$patch = @{
    metadata = @{ annotations = @{ 'lab.kfm.local/change-cause' = 'deploy kfm-api 1.6.0-5xx (CHG-1005)' } }
    spec     = @{ source = @{ kustomize = @{ images = @($bad.image) } } }
} | ConvertTo-Json -Depth 10 -Compress
Invoke-RestMethod -Method Patch -Uri "$($lab.apiserver.url)/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/kfm-api" `
    -Headers @{ Authorization = "Bearer $($lab.adminToken)" } -ContentType 'application/merge-patch+json' -Body $patch -SkipCertificateCheck | Out-Null
# Done when every pod runs the bad build (the rollout is complete), as kubectl rollout status says.
function Get-Deployment { Invoke-RestMethod -Uri "$($lab.apiserver.url)/apis/apps/v1/namespaces/kfm/deployments/kfm-api" -Headers @{ Authorization = "Bearer $($lab.adminToken)" } -SkipCertificateCheck }
Wait-Until {
    $d = Get-Deployment
    $d.status.observedGeneration -ge $d.metadata.generation -and $d.status.updatedReplicas -eq $d.spec.replicas -and
        $d.status.replicas -eq $d.spec.replicas -and $d.status.availableReplicas -eq $d.spec.replicas -and
        $d.spec.template.spec.containers[0].image -eq $bad.image
} 'the bad-5xx rollout to complete'
Write-Host "Deployed bad-5xx ($($bad.digest)) through Argo CD: revision $((Get-Deployment).metadata.annotations.'deployment.kubernetes.io/revision') serves it"
