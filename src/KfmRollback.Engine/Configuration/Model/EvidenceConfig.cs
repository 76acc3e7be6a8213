using KfmRollback.Engine.Configuration.Binding;

namespace KfmRollback.Engine.Configuration;

/// <summary>
/// Evidence bundles (runbook step 0 and the aftermath): where they are kept and how finely metric
/// ranges are sampled. Bundles are content-addressed directories, verified with the receipts.
/// </summary>
public sealed class EvidenceConfig : IConfigSection
{
    /// <summary>
    /// Directory holding the bundles; absent means <c>evidence/</c> inside the receipt store
    /// directory (or <c>&lt;receipts.git.path&gt;-evidence</c> next to a git receipt store).
    /// </summary>
    [LocalPath]
    public string? Directory { get; init; }

    /// <summary>Resolution of the Prometheus range queries (query_range <c>step</c>).</summary>
    public TimeSpan Step { get; init; } = TimeSpan.FromSeconds(15);

    void IConfigSection.Validate(ValidationScope scope)
    {
        if (Step < TimeSpan.FromSeconds(1) || Step > TimeSpan.FromHours(1))
            throw scope.Invalid("step", "must be between 1s and 1h.");
    }
}
