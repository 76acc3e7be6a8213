# The README's main command, run as a new user runs it: on a copy of this checkout, on a machine
# where Prometheus is not installed yet (the test removes the package first), so the command has
# to install what the drill needs by itself.

BeforeDiscovery {
    # -Skip is decided at discovery: a root shell with apt-get on a git checkout can remove and reinstall packages.
    $script:CanManagePackages = [bool] (Get-Command apt-get -ErrorAction SilentlyContinue) -and (& id -u) -eq '0' -and
        (Test-Path (Join-Path $PSScriptRoot '../../.git'))
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:RepoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $script:CanManagePackages = [bool] (Get-Command apt-get -ErrorAction SilentlyContinue) -and (& id -u) -eq '0' -and
        (Test-Path (Join-Path $script:RepoRoot '.git'))

    # The files a fresh clone of this working tree has (tracked and new, nothing ignored such as out/).
    function Copy-KfmCheckout([string] $Destination) {
        $files = & git -C $script:RepoRoot ls-files -co --exclude-standard
        foreach ($file in $files) {
            $source = Join-Path $script:RepoRoot $file
            if (-not (Test-Path -LiteralPath $source -PathType Leaf)) { continue }   # deleted in the working tree
            $target = Join-Path $Destination $file
            New-Item -ItemType Directory -Force (Split-Path $target) | Out-Null
            Copy-Item -LiteralPath $source $target
        }
    }

    function Test-DebianPackageInstalled([string] $Name) {
        [bool] (& dpkg-query -W -f='${Status}' $Name 2>$null | Select-String 'install ok installed')
    }
}

AfterAll {
    # Whatever happened above, the rest of the suite finds Prometheus installed again.
    if ($script:CanManagePackages -and -not (Test-DebianPackageInstalled 'prometheus')) {
        & apt-get install -y -qq --no-install-recommends prometheus | Out-Null
    }
}

Describe 'The README main command (the drill) on a fresh machine' {
    It 'installs Prometheus itself, rolls the bad deploy back, names the report on its last line and leaves nothing behind' -Skip:(-not $script:CanManagePackages) {
        $checkout = New-KfmTestDirectory
        try {
            Copy-KfmCheckout $checkout
            & apt-get remove -y -qq prometheus 2>&1 | Out-Null
            Test-Path /usr/bin/prometheus | Should -BeFalse -Because 'the drill must start without Prometheus installed'

            # Exactly the README's command, in the copy's directory.
            $log = Join-Path $checkout 'drill.log'
            & bash -c "cd '$checkout' && dotnet tool restore && dotnet pwsh -NoProfile -File ./build.ps1 -Task Drill" *> $log
            $code = $LASTEXITCODE
            $lines = @(Get-Content $log | Where-Object { $_.Trim() })
            $text = $lines -join "`n"
            $code | Should -Be 0 -Because "the drill passes on a fresh machine; its log ends:`n$(($lines | Select-Object -Last 15) -join "`n")"

            Test-Path /usr/bin/prometheus | Should -BeTrue -Because 'the drill installs the packages it needs'
            $lines[-1] | Should -Match '^DRILL PASSED: the API serves good-1\.5\.1 again \(Preferred and Emergency paths\); report: (out/drill-report/\S+-report\.html)$'
            $null = $lines[-1] -match 'report: (\S+)$'
            Test-Path (Join-Path $checkout $Matches[1]) | Should -BeTrue -Because 'the last line names a report that exists'
            $text | Should -Match '"run_type": "ops.api.rollback"'
            $text | Should -Not -Match "`e\[" -Because 'a log file gets plain text'

            $workspace = if ($text -match 'Starting the lab cluster in (\S+)') { $Matches[1] } else { throw 'the drill did not say where its lab ran' }
            Test-Path $workspace | Should -BeFalse -Because 'the drill removes its temporary workspace'
            Get-Process -Name dotnet, prometheus -ErrorAction SilentlyContinue |
                Where-Object { $_.CommandLine -like "*$workspace*" } | Should -BeNullOrEmpty -Because 'the drill stops every process it started'
        }
        finally {
            Remove-Item $checkout -Recurse -Force -ErrorAction SilentlyContinue
        }
    }
}

Describe 'Starting the lab' {
    BeforeAll { . (Join-Path $PSScriptRoot 'LabHelpers.ps1') }

    It 'shows the lab''s own error when it cannot start, at once rather than after a time-out' {
        $dir = New-KfmTestDirectory
        try {
            # A time-out this long would fail the test by its message: an exited lab is reported when it exits.
            { Start-KfmLabProcess -LabDll $script:LabDll -Directory $dir -Arguments @('--time-scale', 'fast') -TimeoutSeconds 600 } |
                Should -Throw -ExpectedMessage "*exited with code 2 before it was ready: bad arguments: *'fast'*"
        }
        finally { Remove-Item $dir -Recurse -Force }
    }
}
