using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Tests.Planning;

namespace KfmRollback.Engine.Tests.Verification;

/// <summary>
/// The lab's environment as the module reads it for probing its API: callers anon, public-user and
/// steward (tokens in environment variables of this call's own), one governed endpoint, plus
/// <paramref name="sections"/> (YAML at the environment's level, indented four spaces).
/// </summary>
internal static class LabProbeEnvironment
{
    public static EnvironmentConfig Load(PlanningLab lab, string dir, string sections, string? restrictedIds = null)
    {
        string prefix = "KFM_TEST_LAB_" + Guid.NewGuid().ToString("N")[..6].ToUpperInvariant();
        System.Environment.SetEnvironmentVariable(prefix + "_PUBLIC", lab.Host.PublicToken);
        System.Environment.SetEnvironmentVariable(prefix + "_STEWARD", lab.Host.StewardToken);
        System.Environment.SetEnvironmentVariable(prefix + "_RESTRICTED", restrictedIds);
        string yaml = $"""
            defaults:
              incident_journal: {dir}/incidents
              receipt_store: {dir}/receipts
            environments:
              lab:
                cluster: {"{"} kubeconfig_path: {lab.Host.KubeconfigPath}, context: lab, namespace: kfm, deployment: kfm-api, container: api {"}"}
                gitops: {"{"} path: {dir}/no-gitops, file: k.yaml, kind: kustomize, image_name: kfm-api {"}"}
                freeze: {"{"} mechanisms: [ {"{"} kind: argocd, name: kfm-api, namespace: argocd {"}"} ] {"}"}
                prometheus: {"{"} url: 'http://127.0.0.1:9' {"}"}
                api:
                  base_url: {lab.Host.KfmApiUrl}
                  openapi_path: /api/v1/openapi.json
                  probe:
                    {(restrictedIds is null ? "" : $"restricted_ids_env: {prefix}_RESTRICTED")}
                    callers:
                      anon: {"{"} anonymous: true, role: public {"}"}
                      public-user: {"{"} token_env: {prefix}_PUBLIC, role: public {"}"}
                      steward: {"{"} token_env: {prefix}_STEWARD, role: restricted {"}"}
                    endpoints: [ {"{"} path: /api/v1/datasets {"}"} ]

            """ + sections;
        return KfmConfigLoader.LoadFromText(yaml, Path.Combine(dir, "kfm-rollback.yaml"), dir).GetEnvironment("lab");
    }
}
