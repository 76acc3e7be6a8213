# Shared receipt stores for the Pester files: a git smart-HTTP server (lighttpd running git
# http-backend, as tests/KfmRollback.Engine.Tests/GitOps/GitHttpServer.cs does), Azurite's blob
# service, and "machines": child pwsh processes, each with its own state folder.

. (Join-Path $PSScriptRoot 'TestHelpers.ps1')
. (Join-Path $PSScriptRoot 'LoopbackListener.ps1')

$script:KfmTestGitToken = 'rcpt-token-7f3a9c'


function Wait-KfmPort {
    param([int] $Port, [Diagnostics.Process] $Process, [string] $What)
    $deadline = [DateTime]::UtcNow.AddSeconds(30)
    while ([DateTime]::UtcNow -lt $deadline) {
        if ($Process.HasExited) { throw "$What exited with $($Process.ExitCode)" }
        $client = [Net.Sockets.TcpClient]::new()
        try { $client.Connect([Net.IPAddress]::Loopback, $Port); return } catch { Start-Sleep -Milliseconds 100 } finally { $client.Dispose() }
    }
    throw "$What did not listen on $Port within 30 s"
}

# lighttpd serving bare repositories under <root>/repos at http://127.0.0.1:<port>/git/<name>, behind
# basic auth for user x-access-token (the user a token by reference is sent as). Its CGI wrapper can hold a
# push: while <root>/stall exists, a git-receive-pack POST touches <root>/stalled and waits; when the
# stall ends it goes on, or, if <root>/drop exists, ends without updating anything (the client is gone).
function Start-KfmTestGitServer {
    foreach ($needed in '/usr/sbin/lighttpd', '/usr/lib/git-core/git-http-backend') {
        if (-not (Test-Path $needed)) { throw "$needed is missing: build.ps1 -Task Test installs Debian's lighttpd (and git)." }
    }
    $root = New-KfmTestDirectory
    $repos = Join-Path $root 'repos'
    New-Item -ItemType Directory $repos | Out-Null
    $port = Get-KfmFreePort
    $sha1 = [Security.Cryptography.SHA1]::HashData([Text.Encoding]::UTF8.GetBytes($script:KfmTestGitToken))
    Set-Content (Join-Path $root 'htpasswd') "x-access-token:{SHA}$([Convert]::ToBase64String($sha1))"
    $wrapper = Join-Path $root 'git-cgi.sh'
    Set-Content $wrapper -NoNewline -Value @"
#!/bin/sh
case "`$PATH_INFO" in
  */git-receive-pack)
    if [ -e '$root/stall' ]; then
      : > '$root/stalled'
      while [ -e '$root/stall' ]; do sleep 0.1; done
      if [ -e '$root/drop' ]; then exit 0; fi
    fi ;;
esac
exec /usr/lib/git-core/git-http-backend

"@
    & chmod 755 $wrapper
    Set-Content (Join-Path $root 'lighttpd.conf') @"
server.modules = ("mod_alias", "mod_setenv", "mod_auth", "mod_authn_file", "mod_cgi")
server.document-root = "$root"
server.bind = "127.0.0.1"
server.port = $port
server.errorlog = "$root/error.log"
server.upload-dirs = ("$root")
auth.backend = "htpasswd"
auth.backend.htpasswd.userfile = "$root/htpasswd"
auth.require = ("/git/" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
alias.url = ("/git/" => "$wrapper/")
`$HTTP["url"] =~ "^/git/" {
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "$repos", "GIT_HTTP_EXPORT_ALL" => "1")
}
"@
    $process = Start-Process /usr/sbin/lighttpd -ArgumentList '-D', '-f', (Join-Path $root 'lighttpd.conf') -PassThru
    Wait-KfmPort -Port $port -Process $process -What 'lighttpd'
    [pscustomobject]@{ Root = $root; Repositories = $repos; Port = $port; Process = $process; Token = $script:KfmTestGitToken }
}

function Stop-KfmTestGitServer {
    param($Server)
    if ($Server -and -not $Server.Process.HasExited) { $Server.Process.Kill(); $Server.Process.WaitForExit(10000) | Out-Null }
}

# An empty bare repository served by $Server (pushes allowed); returns its directory and URL.
function New-KfmTestBareRepository {
    param($Server, [string] $Name = 'receipts.git')
    $bare = if ($Server) { Join-Path $Server.Repositories $Name } else { Join-Path (New-KfmTestDirectory) $Name }
    git init --bare -q -b main $bare | Out-Null
    git -C $bare config http.receivepack true
    $url = if ($Server) { "http://127.0.0.1:$($Server.Port)/git/$Name" } else { "file://$bare" }
    [pscustomobject]@{ Path = $bare; Url = $url }
}

# Azurite's blob service on a free loopback port, workspace in a temp folder, telemetry off.
function Start-KfmTestAzurite {
    $binary = if ($env:KFM_AZURITE_BLOB) { $env:KFM_AZURITE_BLOB } else { Join-Path $PSScriptRoot '../../out/tools/node_modules/.bin/azurite-blob' }
    if (-not (Test-Path $binary)) { throw "Azurite is not installed at ${binary}: run build.ps1 -Task Test (it installs the npm package azurite under out/tools)." }
    $port = Get-KfmFreePort
    $workspace = New-KfmTestDirectory
    $process = Start-Process $binary -ArgumentList '--blobHost', '127.0.0.1', '--blobPort', $port, '--location', $workspace, '--disableTelemetry', '--silent', '--skipApiVersionCheck' -PassThru `
        -RedirectStandardOutput (Join-Path $workspace 'out.log') -RedirectStandardError (Join-Path $workspace 'err.log')
    Wait-KfmPort -Port $port -Process $process -What 'azurite-blob'
    # Azurite's documented development account (public; Azurite accepts nothing else).
    $key = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
    [pscustomobject]@{
        Process          = $process
        Endpoint         = "http://127.0.0.1:$port/devstoreaccount1"
        Key              = $key
        ConnectionString = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$port/devstoreaccount1;"
    }
}

function Stop-KfmTestAzurite {
    param($Azurite)
    if ($Azurite -and -not $Azurite.Process.HasExited) { $Azurite.Process.Kill($true); $Azurite.Process.WaitForExit(10000) | Out-Null }
}

# A call to the Blob service REST API signed with the account key (Shared Key), as an administrator makes it.
function Invoke-KfmTestBlobAdmin {
    param($Azurite, [string] $Method, [string] $Path, [string] $Query = '')
    $date = [DateTime]::UtcNow.ToString('R')
    $version = '2021-08-06'
    $resource = "/devstoreaccount1/devstoreaccount1/$Path"
    $canonicalQuery = ($Query -split '&' | Where-Object { $_ } | ForEach-Object { $k, $v = $_ -split '=', 2; "`n${k}:$v" }) -join ''
    $toSign = "$Method`n`n`n`n`n`n`n`n`n`n`n`nx-ms-date:$date`nx-ms-version:$version`n$resource$canonicalQuery"
    $hmac = [Security.Cryptography.HMACSHA256]::new([Convert]::FromBase64String($Azurite.Key))
    $signature = [Convert]::ToBase64String($hmac.ComputeHash([Text.Encoding]::UTF8.GetBytes($toSign)))
    $uri = "$($Azurite.Endpoint)/$Path$(if ($Query) { "?$Query" })"
    Invoke-WebRequest -Method $Method -Uri $uri -Headers @{ 'x-ms-date' = $date; 'x-ms-version' = $version; Authorization = "SharedKey devstoreaccount1:$signature" } -SkipHeaderValidation
}

function New-KfmTestBlobContainer {
    param($Azurite)
    $name = 'receipts-' + [Guid]::NewGuid().ToString('N').Substring(0, 12)
    Invoke-KfmTestBlobAdmin $Azurite PUT $name 'restype=container' | Out-Null
    $name
}

function Get-KfmTestBlobNames {
    param($Azurite, [string] $Container)
    $response = Invoke-KfmTestBlobAdmin $Azurite GET $Container 'comp=list&restype=container'
    ([xml] $response.Content.TrimStart([char] 0xFEFF)).EnumerationResults.Blobs.Blob.Name
}

# What each machine runs: New-KfmRollbackReceipt | Save-KfmRollbackReceipt for incidents
# INC-<machine>-1..N of environment prod (opened in the journal first with KFM_TEST_INCIDENTS),
# one line '<digest> <AlreadyStored>' per save. With
# KFM_TEST_GO set it first says it is ready (a file) and waits for that file, so several machines start together.
$script:KfmSaveScript = @'
$ErrorActionPreference = 'Stop'
Import-Module $env:KFM_TEST_MANIFEST
if ($env:KFM_TEST_GO) {
    Set-Content "$env:KFM_TEST_GO.$env:KFM_TEST_MACHINE" 'ready'
    while (-not (Test-Path $env:KFM_TEST_GO)) { Start-Sleep -Milliseconds 20 }
}
$started = [DateTimeOffset] '2026-03-02T12:00:00Z'
foreach ($i in 1..[int] $env:KFM_TEST_COUNT) {
    $id = "INC-$($env:KFM_TEST_MACHINE)-$i"
    if ($env:KFM_TEST_INCIDENTS) {
        try { Get-KfmIncident -Id $id -JournalPath $env:KFM_TEST_JOURNAL | Out-Null }
        catch { New-KfmIncident -Id $id -Commander alice -Reason 'bad deploy' -Environment prod -StartedAt $started -JournalPath $env:KFM_TEST_JOURNAL -Confirm:$false | Out-Null }
    }
    try {
        $saved = New-KfmRollbackReceipt -IncidentId $id -RequestedBy alice -ApprovedBy bob -Environment prod -Reason 'bad deploy' -StartedAt $started `
            -CompletedAt $started.AddMinutes(9) -CurrentRef ('sha256:' + 'a' * 64) -RollbackTargetRef ('sha256:' + 'b' * 64) -ChangedSurface api `
            -Health pass -PolicyInvariants pass -ContractSmoke pass |
            Save-KfmRollbackReceipt -Environment prod -JournalPath $env:KFM_TEST_JOURNAL -Confirm:$false
    }
    catch {
        "ERROR $($_.FullyQualifiedErrorId) $($_.Exception.Message)"
        exit 1
    }
    "$($saved.Digest) $($saved.AlreadyStored)"
}
'@

# Starts one "machine" (a fresh pwsh with its own KFM_ROLLBACK_STATE) running the save script; returns
# the process with its output files.
function Start-KfmTestMachine {
    param([string] $Name, [string] $Config, [string] $State, [int] $Count = 1, [string] $Journal, [string] $Go, [hashtable] $Environment = @{})
    $process = [Environment]::ProcessPath
    $prefix = @(if ([IO.Path]::GetFileNameWithoutExtension($process) -eq 'dotnet') { Join-Path $PSHOME 'pwsh.dll' })
    $encoded = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($script:KfmSaveScript))
    $info = [Diagnostics.ProcessStartInfo]::new($process)
    foreach ($argument in $prefix + @('-NoProfile', '-NonInteractive', '-EncodedCommand', $encoded)) { $info.ArgumentList.Add($argument) }
    $info.RedirectStandardOutput = $true
    $info.RedirectStandardError = $true
    $info.UseShellExecute = $false
    $variables = @{
        KFM_TEST_MANIFEST = $KfmManifest; KFM_ROLLBACK_CONFIG = $Config; KFM_ROLLBACK_STATE = $State
        KFM_TEST_MACHINE = $Name; KFM_TEST_COUNT = "$Count"; KFM_TEST_JOURNAL = $Journal; KFM_TEST_GO = $Go
    } + $Environment
    foreach ($key in $variables.Keys) { $info.Environment[$key] = $variables[$key] }
    $started = [Diagnostics.Process]::Start($info)
    [pscustomobject]@{ Name = $Name; Process = $started; Output = $started.StandardOutput.ReadToEndAsync(); Errors = $started.StandardError.ReadToEndAsync() }
}

# Waits for a machine; returns its output lines, or throws with its errors.
function Wait-KfmTestMachine {
    param($Machine, [switch] $AllowFailure)
    if (-not $Machine.Process.WaitForExit(600000)) { $Machine.Process.Kill($true); throw "machine $($Machine.Name) did not finish in 10 minutes" }
    $Machine.Process.WaitForExit()
    $output = @($Machine.Output.GetAwaiter().GetResult() -split "`n" | Where-Object { $_ })
    $errors = $Machine.Errors.GetAwaiter().GetResult()
    if ($Machine.Process.ExitCode -ne 0 -and -not $AllowFailure) { throw "machine $($Machine.Name) exited $($Machine.Process.ExitCode):`n$($output -join "`n")`n$errors" }
    [pscustomobject]@{ Lines = $output; Errors = $errors; ExitCode = $Machine.Process.ExitCode }
}

# Several machines saving $Count receipts each, released together once every one has imported the module.
function Invoke-KfmTestMachines {
    param([string[]] $Names, [string] $Config, [string] $Root, [int] $Count, [hashtable] $Environment = @{})
    $go = Join-Path $Root 'go'
    $machines = foreach ($name in $Names) {
        Start-KfmTestMachine -Name $name -Config $Config -State (Join-Path $Root "state-$name") -Count $Count -Journal (Join-Path $Root "journal-$name") -Go $go -Environment $Environment
    }
    $deadline = [DateTime]::UtcNow.AddMinutes(3)
    while (@($Names | Where-Object { -not (Test-Path "$go.$_") }).Count -gt 0) {
        if ([DateTime]::UtcNow -gt $deadline -or @($machines | Where-Object { $_.Process.HasExited }).Count -gt 0) { break }
        Start-Sleep -Milliseconds 50
    }
    Set-Content $go 'go'
    foreach ($machine in $machines) { Wait-KfmTestMachine $machine }
}
