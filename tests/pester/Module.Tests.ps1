# The module as users import it: manifest, isolation, re-import, help.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
}

Describe 'Module manifest' {
    BeforeAll {
        $manifest = Test-ModuleManifest -Path $KfmManifest
        Import-Module $KfmManifest -Force
        $cmdlets = @(Get-Command -Module KfmRollback -CommandType Cmdlet)
    }

    It 'declares Core 7.4+, author, description, tags and formats' {
        $manifest.CompatiblePSEditions | Should -Be @('Core')
        $manifest.PowerShellVersion | Should -Be ([version] '7.4')
        $manifest.Author | Should -Not -BeNullOrEmpty
        $manifest.Description | Should -Match 'rollback'
        $manifest.Tags | Should -Contain 'PSEdition_Core'
        $manifest.ExportedFormatFiles | Should -Not -BeNullOrEmpty
    }

    It 'exports exactly the cmdlets the assembly defines, and nothing else' {
        $declared = (Import-PowerShellDataFile $KfmManifest).CmdletsToExport | Sort-Object
        $assembly = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'KfmRollback' }
        $defined = $assembly.GetExportedTypes() |
            ForEach-Object { $_.GetCustomAttributes([Management.Automation.CmdletAttribute], $false) } |
            ForEach-Object { "$($_.VerbName)-$($_.NounName)" } | Sort-Object
        $defined | Should -Be $declared
        ($cmdlets.Name | Sort-Object) | Should -Be $declared
        (Get-Module KfmRollback).ExportedFunctions.Count | Should -Be 0
        (Get-Module KfmRollback).ExportedAliases.Count | Should -Be 0
        (Get-Module KfmRollback).ExportedVariables.Count | Should -Be 0
    }

    It 'uses approved verbs and declares an output type on <Name>' -ForEach @(
        (Import-PowerShellDataFile (Join-Path ($env:KFM_MODULE_PATH ?? "$PSScriptRoot/../../out/KfmRollback") 'KfmRollback.psd1')).CmdletsToExport | ForEach-Object { @{ Name = $_ } }
    ) {
        $command = Get-Command $Name
        (Get-Verb).Verb | Should -Contain $command.Verb
        $command.OutputType | Should -Not -BeNullOrEmpty -Because "$Name must declare [OutputType]"
    }

    It 'offers -WhatIf and -Confirm on every cmdlet that changes something' {
        # These only build an object in memory; everything else with a changing verb writes somewhere.
        $inMemoryOnly = 'New-KfmRollbackReceipt', 'New-KfmIncidentUpdate'
        $writers = $cmdlets | Where-Object { $_.Verb -in 'New', 'Add', 'Save', 'Start', 'Stop', 'Invoke', 'Enable', 'Disable', 'Set', 'Remove' -and $_.Name -notin $inMemoryOnly }
        $writers | Should -Not -BeNullOrEmpty
        foreach ($command in $writers) {
            $command.Parameters.Keys | Should -Contain 'WhatIf' -Because "$($command.Name) changes state"
            $command.Parameters.Keys | Should -Contain 'Confirm' -Because "$($command.Name) changes state"
        }
    }
}

Describe 'Dependency isolation' {
    It 'loads no KubernetesClient, LibGit2Sharp, YamlDotNet or Microsoft.OpenApi assembly on import' {
        $script = @"
Import-Module '$KfmManifest'
`$null = Get-Command -Module KfmRollback
[AppDomain]::CurrentDomain.GetAssemblies() | ForEach-Object { `$_.GetName().Name }
"@
        $loaded = Invoke-KfmChildPwsh -Script $script
        $loaded | Should -Contain 'KfmRollback'
        $loaded | Should -Not -Contain 'KubernetesClient'
        $loaded | Should -Not -Contain 'LibGit2Sharp'
        $loaded | Should -Not -Contain 'YamlDotNet'
        $loaded | Should -Not -Contain 'Microsoft.OpenApi'
        $loaded | Should -Not -Contain 'SharpYaml'
    }

    It 'keeps the engine in the module''s own load context' {
        $script = @"
Import-Module '$KfmManifest'
`$env:KFM_ROLLBACK_STATE = '$(New-KfmTestDirectory)'
`$null = New-KfmIncident -Id INC-ALC -Commander a -Reason r -Confirm:`$false
`$engine = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { `$_.GetName().Name -eq 'KfmRollback.Engine' }
[Runtime.Loader.AssemblyLoadContext]::GetLoadContext(`$engine).Name
"@
        Invoke-KfmChildPwsh -Script $script | Should -Be 'KfmRollback'
    }

    It 'survives Import-Module -Force twice' {
        $script = @"
Import-Module '$KfmManifest'
Import-Module '$KfmManifest' -Force
Import-Module '$KfmManifest' -Force
`$env:KFM_ROLLBACK_STATE = '$(New-KfmTestDirectory)'
(New-KfmIncident -Id INC-FORCE -Commander a -Reason r -Confirm:`$false).IncidentId
"@
        Invoke-KfmChildPwsh -Script $script | Should -Be 'INC-FORCE'
    }
}

Describe 'Help' {
    BeforeAll { Import-Module $KfmManifest -Force }

    It 'shows synopsis, description, every parameter and an example for <Name>' -ForEach @(
        (Import-PowerShellDataFile (Join-Path ($env:KFM_MODULE_PATH ?? "$PSScriptRoot/../../out/KfmRollback") 'KfmRollback.psd1')).CmdletsToExport | ForEach-Object { @{ Name = $_ } }
    ) {
        $help = Get-Help $Name -Full
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Synopsis | Should -Not -Match '^\s*\S+ \['  # PowerShell's generated fallback is the syntax line
        ($help.description.Text -join ' ') | Should -Not -BeNullOrEmpty
        @($help.examples.example).Count | Should -BeGreaterOrEqual 1
        $help.examples.example[0].code | Should -Match $Name
        $documented = @($help.parameters.parameter | Where-Object { $_.description.Text } | ForEach-Object name)
        $common = [Management.Automation.Cmdlet]::CommonParameters
        foreach ($parameter in (Get-Command $Name).Parameters.Keys | Where-Object { $_ -notin $common }) {
            $documented | Should -Contain $parameter -Because "-$parameter of $Name needs a description"
        }
    }

    It 'ships about_KfmRollback' {
        Get-Help about_KfmRollback | Out-String | Should -Match 'KfmRollback'
    }
}
