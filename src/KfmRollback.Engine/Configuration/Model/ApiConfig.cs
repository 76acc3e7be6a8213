using KfmRollback.Engine.Configuration.Binding;

namespace KfmRollback.Engine.Configuration;

/// <summary>The governed API (the Policy Enforcement Point) as the verification cmdlets see it.</summary>
public sealed class ApiConfig : IConfigSection
{
    /// <summary>Base URL of the API; the paths below are resolved against it.</summary>
    [RequiredKey]
    public Uri BaseUrl { get; init; } = null!;

    /// <summary>Health/readiness paths that must answer 200 (KFM's documents disagree, hence configurable).</summary>
    [UrlPath, NonEmpty]
    public IReadOnlyList<string> HealthPaths { get; init; } = new[] { "/api/v1/healthz", "/api/v1/readyz" };

    /// <summary>Path reporting service, api_version, contract_version, commit, build_time.</summary>
    [UrlPath]
    public string MetaPath { get; init; } = "/api/v1/meta";

    /// <summary>Path serving the OpenAPI document; absent means contract checks use the snapshot only.</summary>
    [UrlPath]
    public string? OpenapiPath { get; init; }

    /// <summary>Directory of known-good contract snapshots compared after rollback.</summary>
    [LocalPath]
    public string? ContractSnapshotDir { get; init; }

    /// <summary>Policy-invariant probes (existence leakage, auth, required fields).</summary>
    [RequiredKey]
    public ProbePlan Probe { get; init; } = null!;

    void IConfigSection.Validate(ValidationScope scope)
    {
        if (OpenapiPath is null && ContractSnapshotDir is null)
            throw scope.Missing("contract_snapshot_dir", "contract checks need openapi_path, contract_snapshot_dir or both.");
        scope.CredentialsTravelSafely("base_url", BaseUrl, Probe.Callers.Values.Any(c => !c.Anonymous), "the probe callers' bearer tokens (api.probe.callers)");
    }
}
