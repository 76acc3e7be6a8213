# Reading the API's ref and history from a Helm release (the lab seeds kfm/kfm-api's release
# Secrets in helm v3's format: revisions 1-3 superseded, 4 deployed, 1 stored uncompressed).

BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    Import-Module $KfmManifest -Force
    $lab = Start-KfmTestLab
    $env:KFM_ROLLBACK_CONFIG = $lab.Config
    $catalogue = @{}
    foreach ($name in $lab.Facts.catalogue.PSObject.Properties.Name) { $catalogue[$name] = $lab.Facts.catalogue.$name.digest }
}

AfterAll {
    Stop-KfmTestLab $lab
    Remove-Item env:KFM_ROLLBACK_CONFIG -ErrorAction SilentlyContinue
}

Describe 'Get-KfmApiRef -Source Helm' {
    It 'reads the deployed revision and the previous revision running another digest' {
        $ref = Get-KfmApiRef -Source Helm
        $ref.Source | Should -Be 'Helm'
        $ref.Revision | Should -Be 4
        $ref.CurrentRef | Should -Be $catalogue['good-1.5.1']
        $ref.LastKnownGoodRef | Should -Be $catalogue['good-1.5.0']
        $ref.LastKnownGoodRevision | Should -Be 3
        $ref.LastKnownGoodSource | Should -Be 'previous-release'
    }

    It 'agrees with what the cluster runs' {
        (Get-KfmApiRef -Source Helm).CurrentRef | Should -Be (Get-KfmApiRef -Source Cluster).CurrentRef
    }
}

Describe 'Get-KfmRolloutHistory -Source Helm' {
    It 'lists every revision as helm history does, with digests' {
        $history = Get-KfmRolloutHistory -Source Helm
        $history.Revision | Should -Be @(1, 2, 3, 4)
        $history.Status | Should -Be @('superseded', 'superseded', 'superseded', 'deployed')
        $history[0].Description | Should -Be 'Install complete'
        $history[0].Digest | Should -Be $catalogue['good-1.4.0'] -Because 'revision 1 is stored without gzip, as helm 3.0 did'
        $history[3].Chart | Should -Be 'kfm-api-1.5.1'
        ($history | Where-Object IsCurrent).Revision | Should -Be 4
    }

    It 'filters one revision with -Revision' {
        (Get-KfmRolloutHistory -Source Helm -Revision 2).Digest | Should -Be $catalogue['good-1.4.1']
    }

    It 'shows a table with status and never the values' {
        $table = Get-KfmRolloutHistory -Source Helm | Out-String -Width 250
        $table | Should -Match 'Status'
        $table | Should -Match 'superseded'
        $table | Should -Not -Match 'lab-canary'
    }

    It 'refuses an environment without a helm section, saying what to add' {
        $config = Join-Path $lab.Directory 'nohelm.yaml'
        (Get-Content -Raw $lab.Config) -replace '(?m)^    helm:\r?\n(      .*\r?\n)+', '' | Set-Content $config
        $err = { Get-KfmRolloutHistory -Source Helm -ConfigPath $config } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'HelmNotConfigured,*'
        $err.Exception.Message | Should -Match 'helm.release'
    }
}
