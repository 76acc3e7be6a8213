<#
.SYNOPSIS
    Writes kfm-rollback.yaml for a running lab (from its lab.json), so the module, the tests and
    the drill talk to the lab exactly as they would to a real cluster.
#>
param(
    [Parameter(Mandatory)] [string] $LabDirectory,
    [string] $Path = (Join-Path $LabDirectory 'kfm-rollback.yaml'),
    # Read the probe callers' tokens and the restricted ids from files in this directory (public-token,
    # steward-token, restricted-ids) instead of environment variables (build.ps1 -Task Lab).
    [string] $SecretsDirectory
)
$ErrorActionPreference = 'Stop'
$lab = Get-Content -Raw (Join-Path $LabDirectory 'lab.json') | ConvertFrom-Json
$prometheus = if ($lab.prometheus) { $lab.prometheus.url } else { 'http://127.0.0.1:9' }
$public, $steward, $restricted = if ($SecretsDirectory) {
    "token_file: $(Join-Path $SecretsDirectory 'public-token')", "token_file: $(Join-Path $SecretsDirectory 'steward-token')", "restricted_ids_file: $(Join-Path $SecretsDirectory 'restricted-ids')"
}
else { 'token_env: KFM_LAB_PUBLIC_TOKEN', 'token_env: KFM_LAB_STEWARD_TOKEN', 'restricted_ids_env: KFM_LAB_RESTRICTED_IDS' }

@"
# Generated for the lab in $LabDirectory. Secrets are references: the lab's tokens are in lab.json
# and reach the module through $(if ($SecretsDirectory) { "files in $SecretsDirectory" } else { 'environment variables (KFM_LAB_PUBLIC_TOKEN, KFM_LAB_STEWARD_TOKEN, KFM_LAB_RESTRICTED_IDS)' }).
defaults:
  incident_journal: state/incidents
  receipt_store: state/receipts

environments:
  lab:
    cluster:
      kubeconfig_path: $(Join-Path $LabDirectory 'kubeconfig')
      context: lab
      namespace: kfm
      deployment: kfm-api
      container: api
      lease_duration: 2m
    gitops:
      path: gitops
      branch: main
      file: infra/gitops/apps/kfm-api/overlays/prod/kustomization.yaml
      kind: kustomize
      image_name: registry.kfm.local/kfm-api
      kill_switch_path: infra/gitops/FREEZE
    helm:
      release: kfm-api
      history_max: 10
    freeze:
      mechanisms:
        - kind: argocd
          name: kfm-api
          namespace: argocd
    prometheus:
      url: $prometheus
      selector: job="kfm-api"
      baseline_window: 1m
      evaluation_window: 30s
      thresholds:
        min_requests: 40
        # The lab's light traffic: a 2 % limit lets the sequential 5xx test pass a clean build in ~300 requests.
        max_error_ratio: 0.02
        error_ratio_floor: 0.02
      baseline:
        min_window: 10s
        deploy_settle: 5s
        slo_step: 5s
        lookback: 1h
    api:
      base_url: $($lab.kfmApi.url)
      openapi_path: /api/v1/openapi.json
      contract_snapshot_dir: state/contracts
      probe:
        callers:
          anonymous:
            anonymous: true
            role: public
          public-user:
            $public
            role: public
          steward:
            $steward
            role: restricted
        endpoints:
          - path: /api/v1/datasets
          - path: /api/v1/datasets/{id}
        $restricted
    config_surface:
      configmaps: [kfm-api-config]
    fail_closed:
      mode: maintenance-flag
      configmap: kfm-api-config
      key: maintenance
    observability:
      traces:
        url: $($lab.zipkin.url)
        kind: zipkin
        deadline: 15s
    evidence:
      step: 2s
    approval_required: false
"@ | Set-Content -Path $Path
$Path
