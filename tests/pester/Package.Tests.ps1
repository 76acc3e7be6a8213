# The packages users install from: Azure Automation zip and PowerShell Gallery nupkg.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $destination = New-KfmTestDirectory
    $package = & (Join-Path $PSScriptRoot '../../tools/New-KfmPackage.ps1') -ModulePath $KfmModulePath -DestinationPath $destination
}

Describe 'Packaging' {
    It 'makes an Azure Automation zip: KfmRollback/ folder with the manifest, under 100 MB, short paths' {
        $package.ZipMB | Should -BeLessOrEqual 100
        Add-Type -AssemblyName System.IO.Compression.FileSystem
        $archive = [IO.Compression.ZipFile]::OpenRead($package.Zip)
        try {
            $names = $archive.Entries.FullName -replace '\\', '/'
            $names | Should -Contain 'KfmRollback/KfmRollback.psd1'
            $names | Should -Contain 'KfmRollback/KfmRollback.dll'
            $names | Should -Contain 'KfmRollback/en-US/KfmRollback.dll-Help.xml'
            ($names | Where-Object Length -GE 140) | Should -BeNullOrEmpty
            foreach ($rid in 'linux-x64', 'linux-arm64', 'linux-musl-x64', 'win-x64', 'osx-arm64') {
                ($names | Where-Object { $_ -like "KfmRollback/Dependencies/runtimes/$rid/native/*git2*" }) | Should -Not -BeNullOrEmpty -Because "native libgit2 for $rid ships"
            }
        }
        finally { $archive.Dispose() }
    }

    It 'imports from the unpacked zip' {
        $unpacked = New-KfmTestDirectory
        Expand-Archive $package.Zip -DestinationPath $unpacked
        $out = Invoke-KfmChildPwsh -Script "Import-Module '$unpacked/KfmRollback/KfmRollback.psd1'; (Get-Command -Module KfmRollback).Count"
        [int] $out | Should -BeGreaterThan 5
    }

    It 'makes a PowerShell Gallery nupkg with the manifest' {
        $package.Nupkg | Should -Exist
        Add-Type -AssemblyName System.IO.Compression.FileSystem
        $archive = [IO.Compression.ZipFile]::OpenRead($package.Nupkg)
        try { $archive.Entries.FullName | Should -Contain 'KfmRollback.psd1' } finally { $archive.Dispose() }
    }
}
