# Get-KfmEnvironment and the configuration rules, as users meet them.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Import-Module $KfmManifest -Force
    $example = Join-Path $KfmModulePath 'kfm-rollback.example.yaml'
}

Describe 'Get-KfmEnvironment' {
    It 'reads the shipped example' {
        $environments = Get-KfmEnvironment -ConfigPath $example
        $environments.Name | Should -Be @('dr', 'prod', 'staging')
        (Get-KfmEnvironment -ConfigPath $example -Name prod).Cluster.Deployment | Should -Be 'kfm-api'
    }

    It 'finds the configuration through KFM_ROLLBACK_CONFIG and ./kfm-rollback.yaml' {
        $dir = New-KfmTestDirectory
        Copy-Item $example (Join-Path $dir 'kfm-rollback.yaml')
        Push-Location $dir
        try { (Get-KfmEnvironment -Name staging).Name | Should -Be 'staging' } finally { Pop-Location }
        $env:KFM_ROLLBACK_CONFIG = $example
        try { (Get-KfmEnvironment).Count | Should -Be 3 } finally { Remove-Item env:KFM_ROLLBACK_CONFIG }
    }

    It 'names file, line and column for malformed YAML' {
        $bad = Join-Path (New-KfmTestDirectory) 'kfm-rollback.yaml'
        "environments:`n  prod: [unclosed`n" | Set-Content $bad
        $err = { Get-KfmEnvironment -ConfigPath $bad } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ConfigYamlMalformed,*'
        $err.Exception.Message | Should -Match 'kfm-rollback\.yaml:\d+:\d+'
    }

    It 'refuses an unknown key and suggests the right one' {
        $bad = Join-Path (New-KfmTestDirectory) 'kfm-rollback.yaml'
        (Get-Content -Raw $example) -replace '      namespace: kfm\n', "      namspace: kfm`n" | Set-Content $bad
        $err = { Get-KfmEnvironment -ConfigPath $bad } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ConfigUnknownKey,*'
        $err.Exception.Message | Should -Match "unknown key 'namspace'.*did you mean 'namespace'"
        $err.CategoryInfo.Category | Should -Be 'InvalidData'
    }

    It 'refuses a literal secret without echoing it' {
        $bad = Join-Path (New-KfmTestDirectory) 'kfm-rollback.yaml'
        (Get-Content -Raw $example) -replace 'token_env: KFM_GITOPS_TOKEN', 'token: ghp_CanaryCanaryCanaryCanaryCanary0123' | Set-Content $bad
        $err = { Get-KfmEnvironment -ConfigPath $bad } | Should -Throw -PassThru
        $err.Exception.Message | Should -Not -Match 'CanaryCanary'
        $err.Exception.Message | Should -Match 'token_env'
    }

    It 'says where it looked when there is no configuration' {
        Push-Location (New-KfmTestDirectory)
        try {
            $err = { Get-KfmEnvironment } | Should -Throw -PassThru
            $err.FullyQualifiedErrorId | Should -BeLike 'ConfigNotFound,*'
            $err.Exception.Message | Should -Match 'KFM_ROLLBACK_CONFIG'
        }
        finally { Pop-Location }
    }

    It 'completes -Environment from the configuration' {
        $env:KFM_ROLLBACK_CONFIG = $example
        try {
            $line = 'Get-KfmEnvironment -Name st'
            $completion = TabExpansion2 -inputScript $line -cursorColumn $line.Length
            $completion.CompletionMatches.CompletionText | Should -Be @('staging')
            $line = 'New-KfmIncident -Environment p'
            (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Be @('prod')
        }
        finally { Remove-Item env:KFM_ROLLBACK_CONFIG }
    }
}
