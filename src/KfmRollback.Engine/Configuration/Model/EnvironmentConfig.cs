using KfmRollback.Engine.Configuration.Binding;

namespace KfmRollback.Engine.Configuration;

/// <summary>Everything the runbook needs to roll back the API in one environment.</summary>
public sealed class EnvironmentConfig : IConfigSection
{
    /// <summary>The environment's name (its key under <c>environments</c>).</summary>
    [NotAKey]
    public string Name { get; private set; } = "";

    /// <summary>An environment built in code, not bound from a file (engine tests).</summary>
    internal static EnvironmentConfig Create(string name, ClusterConfig cluster, GitOpsConfig gitops) =>
        new() { Name = name, Cluster = cluster, GitopsSection = gitops };

    /// <summary>The cluster, namespace and Deployment that run the API.</summary>
    [RequiredKey]
    public ClusterConfig Cluster { get; init; } = null!;

    // Only cluster is required: a cluster-only environment is six lines. Each optional section
    // below is read through a property that names the section and why when it is missing
    // (ConfigSectionMissing), so a cmdlet that needs one says so instead of failing on a null.

    /// <summary>The GitOps repository holding the desired state (preferred rollback path).</summary>
    [YamlName("gitops")]
    public GitOpsConfig? GitopsSection { get; init; }

    /// <summary>How deploys are frozen before anything is touched; absent means no deploy controller is known.</summary>
    [YamlName("freeze")]
    public FreezeConfig? FreezeSection { get; init; }

    /// <summary>Metrics source and thresholds for verifying health after rollback.</summary>
    [YamlName("prometheus")]
    public PrometheusConfig? PrometheusSection { get; init; }

    /// <summary>The governed API: health, contract and policy-invariant probes.</summary>
    [YamlName("api")]
    public ApiConfig? ApiSection { get; init; }

    public GitOpsConfig Gitops => GitopsSection ?? throw new ConfigSectionMissingException(Name, "gitops",
        "the GitOps repository (Get-KfmApiRef -Source GitOps, Invoke-KfmRollback -Method GitOps, Test-KfmDrift, the kill switch)");

    public FreezeConfig Freeze => FreezeSection ?? throw new ConfigSectionMissingException(Name, "freeze",
        "the deploy freeze mechanisms (Argo CD, Flux, kill switch) to freeze, thaw or inspect");

    public PrometheusConfig Prometheus => PrometheusSection ?? throw new ConfigSectionMissingException(Name, "prometheus",
        "the metrics that judge health (verification checklist A, Test-KfmApiHealth, Test-KfmRollback)");

    public ApiConfig Api => ApiSection ?? throw new ConfigSectionMissingException(Name, "api",
        "the governed API's URL and probe plan (verification checklists A-D: Test-KfmPolicyInvariant, Test-KfmContract, Test-KfmObservability, Test-KfmRollback)");

    /// <summary>The freeze mechanisms configured, none when the environment has no freeze section.</summary>
    public IReadOnlyList<FreezeMechanism> FreezeMechanisms => FreezeSection?.Mechanisms ?? Array.Empty<FreezeMechanism>();

    /// <summary>ConfigMaps/Secrets the API reads, snapshotted as evidence (undo does not revert them).</summary>
    public ConfigSurfaceConfig ConfigSurface { get; init; } = new();

    /// <summary>Where the policy bundle reference lives; absent means the policy surface cannot be rolled back.</summary>
    public PolicySurfaceConfig? PolicySurface { get; init; }

    /// <summary>The Helm release that deploys the API; absent means the Helm source and method are unavailable.</summary>
    public HelmConfig? Helm { get; init; }

    /// <summary>The OCI registry the API's images come from; absent means the preflight does not check that the target digest exists.</summary>
    public RegistryConfig? Registry { get; init; }

    /// <summary>What a rollback target must prove (cosign signature, not revoked); absent means the target is not verified.</summary>
    public VerifyConfig? Verify { get; init; }

    /// <summary>How to fail closed when rollback does not succeed; absent means manual escalation only.</summary>
    public FailClosedConfig? FailClosed { get; init; }

    /// <summary>Where rollback receipts are stored (falls back to <c>defaults.receipt_store</c>).</summary>
    public ReceiptsConfig? Receipts { get; internal set; }

    /// <summary>Where the incident journal lives (falls back to <c>defaults.incident_journal</c>).</summary>
    public IncidentsConfig? Incidents { get; internal set; }

    /// <summary>Whether a named approver is required before a change (default true: fail closed).</summary>
    public bool ApprovalRequired { get; init; } = true;

    /// <summary>Log checks: which identifiers must never appear in logs, and how far back to look.</summary>
    public ObservabilityConfig Observability { get; init; } = new();

    /// <summary>What people may see in clear (env var names shown unredacted).</summary>
    public RedactionConfig Redaction { get; init; } = new();

    /// <summary>Evidence bundles: where they are kept and the metric resolution.</summary>
    public EvidenceConfig Evidence { get; init; } = new();

    /// <summary>Where the post-incident follow-up goes (an issue or work item); absent means a checklist file.</summary>
    public TrackerConfig? FollowUp { get; init; }

    /// <summary>Where New-KfmIncidentUpdate -Post sends updates (Slack, Teams, PagerDuty, Statuspage); absent means updates are recorded only.</summary>
    public CommsConfig? Comms { get; init; }

    internal void Inherit(string name, DefaultsConfig defaults)
    {
        Name = name;
        if (Receipts is null && defaults.ReceiptStore is not null)
            Receipts = new ReceiptsConfig { Store = defaults.ReceiptStore };
        if (Incidents is null && defaults.IncidentJournal is not null)
            Incidents = new IncidentsConfig { Journal = defaults.IncidentJournal };
    }

    void IConfigSection.Validate(ValidationScope scope)
    {
        // Both are demanded by the runbook ("rollback receipt required", incident timeline), so an
        // environment that cannot record them is refused up front rather than at the end of a rollback.
        if (Receipts is null)
            throw scope.Missing("receipts", "every rollback must leave a receipt; set it here or set defaults.receipt_store.");
        if (Incidents is null)
            throw scope.Missing("incidents", "every rollback is journalled; set it here or set defaults.incident_journal.");

        if (Verify is { ChecksSignatures: true } && Registry is null)
            throw scope.Missing("registry", "verify.public_key_file checks the target's cosign signature, which is read from the registry; configure the registry section.");

        if (FreezeMechanisms.Any(m => m.Kind == FreezeKind.Killswitch))
        {
            if (GitopsSection is null)
                throw scope.Missing("gitops", "freeze.mechanisms lists a killswitch, which is a file in the GitOps repository.");
            if (GitopsSection.KillSwitchPath is null)
                throw (scope.For(GitopsSection) ?? scope).Missing("kill_switch_path",
                    "freeze.mechanisms lists a killswitch, which needs the file's path in the GitOps repository.");
        }
    }
}
