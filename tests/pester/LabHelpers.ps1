# Starts and stops the lab cluster (tests/KfmRollback.Lab) for Pester files, one per file.

. (Join-Path $PSScriptRoot 'TestHelpers.ps1')
. (Join-Path $PSScriptRoot '../lab/LabProcess.ps1')

$script:LabDll = if ($env:KFM_LAB_DLL) { $env:KFM_LAB_DLL } else { Join-Path $PSScriptRoot '../../out/lab-bin/KfmRollback.Lab.dll' }

# Starts a lab in its own process (it exits if this pwsh dies) and writes a module configuration
# for it. Returns an object with the lab's facts, its directory and the config path.
function Start-KfmTestLab {
    param([double] $TimeScale = 10, [double] $PodStartSeconds = 2, [switch] $Prometheus, [string[]] $ExtraArguments = @())
    $dir = New-KfmTestDirectory
    $arguments = @('--time-scale', "$TimeScale", '--pod-start-seconds', "$PodStartSeconds", '--parent-pid', "$PID") + $ExtraArguments
    if ($Prometheus) { $arguments += '--prometheus' }
    $process = Start-KfmLabProcess -LabDll $script:LabDll -Directory $dir -Arguments $arguments
    $facts = Get-Content -Raw (Join-Path $dir 'lab.json') | ConvertFrom-Json
    $config = & (Join-Path $PSScriptRoot '../lab/New-KfmLabConfig.ps1') -LabDirectory $dir
    [pscustomobject]@{
        Directory  = $dir
        Process    = $process
        Kubeconfig = Join-Path $dir 'kubeconfig'
        Config     = $config
        Facts      = $facts
        AdminToken = $facts.adminToken
        Url        = $facts.apiserver.url
    }
}

function Stop-KfmTestLab {
    param($Lab)
    if ($Lab) {
        Stop-KfmLabProcess $Lab.Process
        # Its state, logs and Prometheus data go with it (benches and ad hoc runs have no run root that would).
        if ($Lab.Directory) { Remove-Item -LiteralPath $Lab.Directory -Recurse -Force -ErrorAction SilentlyContinue }
    }
}

# Calls the lab's admin endpoints (faults, image marks, state).
function Invoke-KfmLabAdmin {
    param([Parameter(Mandatory)] $Lab, [Parameter(Mandatory)] [string] $Path, [string] $Method = 'GET', $Body)
    $parameters = @{
        Uri                  = "$($Lab.Url)/lab/$Path"
        Method               = $Method
        Headers              = @{ Authorization = "Bearer $($Lab.AdminToken)" }
        SkipCertificateCheck = $true
    }
    if ($null -ne $Body) { $parameters.Body = ($Body | ConvertTo-Json -Depth 10); $parameters.ContentType = 'application/json' }
    Invoke-RestMethod @parameters
}

# Real kubectl against the lab: Invoke-KfmLabKubectl $lab get pods -n kfm -o json. A simple
# function on purpose, so kubectl flags such as -o reach kubectl instead of PowerShell's binder.
# Returns stdout; throws with stderr when kubectl fails.
function Invoke-KfmLabKubectl {
    $lab, $arguments = $args
    $result = Invoke-KfmLabKubectlRaw $lab @arguments
    if ($result.ExitCode -ne 0) { throw "kubectl $($arguments -join ' ') failed: $($result.Error)" }
    $result.Output
}

# Like Invoke-KfmLabKubectl, but returns Output, Error and ExitCode instead of throwing.
function Invoke-KfmLabKubectlRaw {
    $lab, $arguments = $args
    $err = New-TemporaryFile
    try {
        $out = & /usr/bin/kubectl --kubeconfig $lab.Kubeconfig @arguments 2>$err
        [pscustomobject]@{ Output = $out; Error = (Get-Content -Raw $err); ExitCode = $LASTEXITCODE }
    }
    finally { Remove-Item $err }
}

# What the lab's apiserver stored since line $Skip of its audit log: dry runs (dryRun=All) store nothing.
function Get-KfmLabStoredWrites {
    param([Parameter(Mandatory)] $Lab, [int] $Skip = 0)
    @(Get-Content (Join-Path $Lab.Directory 'audit.log') | Select-Object -Skip $Skip | ConvertFrom-Json -Depth 50 | Where-Object { $_.requestURI -notmatch 'dryRun=All' -and $_.responseStatus.code -lt 300 })
}

# The Deployment as JSON (parsed), for comparing templates and annotations.
# Deploys a catalogue build by hand (as a person with kubectl would) and waits for its rollout: how the
# tests and benches put a bad build in place before a rollback.
function Deploy-KfmLabBuild {
    param([Parameter(Mandatory)] $Lab, [Parameter(Mandatory)] [string] $Build, [int] $TimeoutSeconds = 60)
    Invoke-KfmLabKubectl $Lab set image deployment/kfm-api -n kfm "api=$($Lab.Facts.catalogue.$Build.image)" | Out-Null
    Invoke-KfmLabKubectl $Lab rollout status deployment/kfm-api -n kfm "--timeout=${TimeoutSeconds}s" | Out-Null
}

function Get-KfmLabDeployment {
    param([Parameter(Mandatory)] $Lab, [string] $Name = 'kfm-api', [string] $Namespace = 'kfm')
    (Invoke-KfmLabKubectl $Lab get deployment $Name -n $Namespace -o json) -join "`n" | ConvertFrom-Json -Depth 50
}

# A lab with Prometheus and steady traffic, configured for verification: the module's config and
# the probe callers' credentials and restricted ids in the environment, as an operator sets them.
function Start-KfmVerificationLab {
    $lab = Start-KfmTestLab -TimeScale 5 -Prometheus -ExtraArguments @('--traffic', '10')
    $env:KFM_ROLLBACK_CONFIG = $lab.Config
    $env:KFM_LAB_PUBLIC_TOKEN = $lab.Facts.kfmApi.tokens.public
    $env:KFM_LAB_STEWARD_TOKEN = $lab.Facts.kfmApi.tokens.steward
    $env:KFM_LAB_RESTRICTED_IDS = 'burial_sites,tribal_consultation_notes'
    $lab
}

function Stop-KfmVerificationLab {
    param($Lab)
    Stop-KfmTestLab $Lab
    Remove-Item env:KFM_ROLLBACK_CONFIG, env:KFM_LAB_PUBLIC_TOKEN, env:KFM_LAB_STEWARD_TOKEN, env:KFM_LAB_RESTRICTED_IDS -ErrorAction SilentlyContinue
}

# A deploy repository for the lab (bare "remote" infra.git and a clone infra-work in -Directory):
# the prod overlay's kustomization pinning each of -Digests in turn, one commit each, pushed.
# Returns Bare, Work and File (the overlay's path in the repository).
function New-KfmTestDeployRepository {
    param([Parameter(Mandatory)] [string] $Directory, [Parameter(Mandatory)] [string[]] $Digests, [string[]] $Messages)
    $bare = Join-Path $Directory 'infra.git'
    $work = Join-Path $Directory 'infra-work'
    git init -q --bare -b main $bare
    git clone -q $bare $work 2>$null
    $file = 'infra/gitops/apps/kfm-api/overlays/prod/kustomization.yaml'
    New-Item -ItemType Directory -Force (Join-Path $work (Split-Path $file)) | Out-Null
    for ($i = 0; $i -lt $Digests.Count; $i++) {
        @"
# prod overlay for the KFM API
resources:
  - ../../base
images:
  - name: registry.kfm.local/kfm-api   # the governed API
    digest: $($Digests[$i])
"@ | Set-Content -NoNewline (Join-Path $work $file)
        git -C $work add -A
        git -C $work -c user.name=deployer -c user.email=deployer@kfm.local commit -q -m ($Messages ? $Messages[$i] : "deploy $($Digests[$i])")
    }
    git -C $work push -q origin main 2>$null
    [pscustomobject]@{ Bare = $bare; Work = $work; File = $file }
}
