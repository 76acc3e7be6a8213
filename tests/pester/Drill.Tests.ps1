# The README's main command: the drill on the embedded lab, run as users run it.

BeforeAll { . (Join-Path $PSScriptRoot 'LabHelpers.ps1') }

Describe 'The rollback drill' {
    It 'rolls a bad deploy back, serves the good build again, and leaves no process behind' {
        $drill = Join-Path $PSScriptRoot '../drill/Invoke-KfmDrill.ps1'
        $workspace = New-KfmTestDirectory
        $out = Invoke-KfmChildPwsh -Script "& '$drill' -ModulePath '$KfmModulePath' -LabDll '$script:LabDll' -Workspace '$workspace'"
        ($out -join "`n") | Should -Match 'DRILL PASSED: the API serves good-1\.5\.1 again'
        ($out -join "`n") | Should -Match '"run_type": "ops.api.rollback"'
        Test-Path $workspace | Should -BeFalse -Because 'a passing drill cleans up after itself'
        Get-Process -Name dotnet -ErrorAction SilentlyContinue |
            Where-Object { $_.CommandLine -like "*$workspace*" } | Should -BeNullOrEmpty
    }
}
