# Starts the lab cluster (tests/KfmRollback.Lab) in its own process and waits until it is ready.
# One place for the drill, the tests and build.ps1 -Task Lab, so a lab that cannot start says why
# on screen (its own error, e.g. a missing Prometheus) instead of a bare time-out.

function Start-KfmLabProcess {
    param(
        [Parameter(Mandatory)] [string] $LabDll,
        [Parameter(Mandatory)] [string] $Directory,
        # Lab arguments after --out (see KfmRollback.Lab --help).
        [string[]] $Arguments = @(),
        [int] $TimeoutSeconds = 30,
        # Output on this console (build.ps1 -Task Lab); otherwise lab.out and lab.err in the directory.
        [switch] $Foreground
    )
    if (-not (Test-Path $LabDll)) { throw "The lab is not built at ${LabDll}: run build.ps1 (it builds the lab for Test, Drill and Lab)." }
    # The lab is a .NET program: run it with the dotnet host, even from a pwsh installed natively.
    $dotnet = [Environment]::ProcessPath
    if ([IO.Path]::GetFileNameWithoutExtension($dotnet) -ne 'dotnet') { $dotnet = (Get-Command dotnet -CommandType Application -ErrorAction Stop)[0].Source }
    $start = @{ FilePath = $dotnet; ArgumentList = @($LabDll, '--out', $Directory) + $Arguments; PassThru = $true; NoNewWindow = $true }
    $errorLog = Join-Path $Directory 'lab.err'
    if (-not $Foreground) {
        $start.RedirectStandardOutput = Join-Path $Directory 'lab.out'
        $start.RedirectStandardError = $errorLog
    }
    $process = Start-Process @start
    $ready = Join-Path $Directory 'ready'
    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    while (-not (Test-Path $ready)) {
        if ($process.HasExited) {
            $process.WaitForExit()
            throw "The lab exited with code $($process.ExitCode) before it was ready: $(Get-KfmLabError $errorLog)"
        }
        if ([DateTime]::UtcNow -gt $deadline) {
            $process.Kill($true)
            $process.WaitForExit(10000) | Out-Null
            throw "The lab did not become ready within $TimeoutSeconds s: $(Get-KfmLabError $errorLog)"
        }
        Start-Sleep -Milliseconds 50
    }
    $process
}

function Get-KfmLabError([string] $Path) {
    $text = if (Test-Path $Path) { (Get-Content -Raw $Path) } else { $null }
    if ([string]::IsNullOrWhiteSpace($text)) { return '(the lab wrote no error; its output is on the console or in lab.out)' }
    $text.Trim()
}

function Stop-KfmLabProcess {
    param($Process)
    if ($Process -and -not $Process.HasExited) {
        $Process.Kill($true)
        $Process.WaitForExit(10000) | Out-Null
    }
}

# The lab as build.ps1 -Task Lab starts it, for the task and for the test of the README's quick tour:
# Prometheus on, then tests/lab/Initialize-KfmLabTour.ps1 in a fresh pwsh (it imports the module)
# puts it where the tour begins and writes what the tour needs beside its configuration. The setup's
# output is shown with -Foreground, else kept in tour-setup.log; a setup that fails stops the lab.
function Start-KfmTourLab {
    param(
        [Parameter(Mandatory)] [string] $LabDll,
        [Parameter(Mandatory)] [string] $Directory,
        [Parameter(Mandatory)] [string] $ModulePath,
        [switch] $Foreground
    )
    $process = Start-KfmLabProcess -LabDll $LabDll -Directory $Directory -Arguments @('--prometheus', '--parent-pid', "$PID") -Foreground:$Foreground
    try {
        $pwsh = [Environment]::ProcessPath
        $prefix = @(if ([IO.Path]::GetFileNameWithoutExtension($pwsh) -eq 'dotnet') { Join-Path $PSHOME 'pwsh.dll' })
        $setup = Join-Path $PSScriptRoot 'Initialize-KfmLabTour.ps1'
        $output = & $pwsh @prefix -NoProfile -NonInteractive -File $setup -LabDirectory $Directory -ModulePath $ModulePath 2>&1 | ForEach-Object { "$_" }
        $code = $LASTEXITCODE
        if ($Foreground) { $output | Out-Host } else { $output | Set-Content (Join-Path $Directory 'tour-setup.log') }
        if ($code -ne 0) { throw "The lab started, but putting it where the quick tour begins failed (exit $code): $(($output | Select-Object -Last 5) -join ' ')" }
    }
    catch {
        Stop-KfmLabProcess $process
        throw
    }
    $process
}
