# Shared by the Pester files: where the built module is and how to start a fresh pwsh.

$script:KfmModulePath = if ($env:KFM_MODULE_PATH) { $env:KFM_MODULE_PATH } else { Join-Path $PSScriptRoot '../../out/KfmRollback' }
$script:KfmManifest = Join-Path $script:KfmModulePath 'KfmRollback.psd1'

# Runs a script in a brand-new pwsh (assemblies cannot be unloaded, so isolation tests need one).
# Returns stdout lines; throws with stderr when the child fails.
function Invoke-KfmChildPwsh {
    param([Parameter(Mandatory)] [string] $Script, [hashtable] $Environment = @{})
    $process = [Environment]::ProcessPath
    $prefix = @(if ([IO.Path]::GetFileNameWithoutExtension($process) -eq 'dotnet') { Join-Path $PSHOME 'pwsh.dll' })
    $encoded = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($Script))
    $saved = @{}
    foreach ($key in $Environment.Keys) { $saved[$key] = [Environment]::GetEnvironmentVariable($key); [Environment]::SetEnvironmentVariable($key, $Environment[$key]) }
    try {
        $errFile = New-TemporaryFile
        $output = & $process @prefix -NoProfile -NonInteractive -EncodedCommand $encoded 2>$errFile
        $code = $LASTEXITCODE
        $stderr = Get-Content -Raw $errFile
        Remove-Item $errFile
        if ($code -ne 0) { throw "child pwsh exited $code`n$($output -join "`n")`n$stderr" }
        $output
    }
    finally {
        foreach ($key in $saved.Keys) { [Environment]::SetEnvironmentVariable($key, $saved[$key]) }
    }
}

function New-KfmTestDirectory {
    # Under the run's root when Invoke-KfmPester set one (it removes the root at the end), else the temp folder.
    $parent = if ($env:KFM_TEST_ROOT -and (Test-Path -LiteralPath $env:KFM_TEST_ROOT)) { $env:KFM_TEST_ROOT } else { [IO.Path]::GetTempPath() }
    $path = Join-Path $parent ("kfm-test-" + [Guid]::NewGuid().ToString('N').Substring(0, 12))
    New-Item -ItemType Directory -Path $path | Out-Null
    $path
}

function New-KfmTestDigest {
    param([char] $Fill)
    'sha256:' + ([string] $Fill) * 64
}

# An ECDSA P-256 key pair as PEM files, for receipt signing tests.
function New-KfmTestKeyPair {
    param([Parameter(Mandatory)] [string] $PrivatePath, [Parameter(Mandatory)] [string] $PublicPath)
    $key = [Security.Cryptography.ECDsa]::Create([Security.Cryptography.ECCurve+NamedCurves]::nistP256)
    try {
        New-Item -ItemType Directory -Force (Split-Path $PrivatePath) | Out-Null
        Set-Content -Path $PrivatePath -Value $key.ExportPkcs8PrivateKeyPem() -NoNewline
        Set-Content -Path $PublicPath -Value $key.ExportSubjectPublicKeyInfoPem() -NoNewline
    }
    finally { $key.Dispose() }
}
