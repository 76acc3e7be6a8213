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
        new() { Name = name, Cluster = cluster, Gitops = gitops };

    /// <summary>The cluster, namespace and Deployment that run the API.</summary>
    [RequiredKey]
    public ClusterConfig Cluster { get; init; } = null!;

    /// <summary>The GitOps repository holding the desired state (preferred rollback path).</summary>
    [RequiredKey]
    public GitOpsConfig Gitops { get; init; } = null!;

    /// <summary>How deploys are frozen before anything is touched.</summary>
    [RequiredKey]
    public FreezeConfig Freeze { get; init; } = null!;

    /// <summary>Metrics source and thresholds for verifying health after rollback.</summary>
    [RequiredKey]
    public PrometheusConfig Prometheus { get; init; } = null!;

    /// <summary>The governed API: health, contract and policy-invariant probes.</summary>
    [RequiredKey]
    public ApiConfig Api { get; init; } = null!;

    /// <summary>ConfigMaps/Secrets the API reads, snapshotted as evidence (undo does not revert them).</summary>
    public ConfigSurfaceConfig ConfigSurface { get; init; } = new();

    /// <summary>Where the policy bundle reference lives; absent means the policy surface cannot be rolled back.</summary>
    public PolicySurfaceConfig? PolicySurface { get; init; }

    /// <summary>The Helm release that deploys the API; absent means the Helm source and method are unavailable.</summary>
    public HelmConfig? Helm { get; init; }

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

    /// <summary>Evidence bundles: where they are kept and the metric resolution.</summary>
    public EvidenceConfig Evidence { get; init; } = new();

    /// <summary>Where the post-incident follow-up goes (an issue or work item); absent means a checklist file.</summary>
    public PullRequestConfig? FollowUp { get; init; }

    /// <summary>
    /// The evidence directory: <c>evidence.directory</c>, else <c>evidence/</c> inside a receipt store
    /// directory, else a <c>-evidence</c> sibling of a git receipt store (whose tree holds receipts only).
    /// </summary>
    public string? EvidenceDirectory => Evidence.Directory
        ?? (Receipts is null ? null : Engine.Receipts.ReceiptStoreLocation.FromConfig(Receipts).EvidenceDirectory);

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

        if (Freeze.Mechanisms.Any(m => m.Kind == FreezeKind.Killswitch) && Gitops.KillSwitchPath is null)
            throw (scope.For(Gitops) ?? scope).Missing("kill_switch_path",
                "freeze.mechanisms lists a killswitch, which needs the file's path in the GitOps repository.");
    }
}
