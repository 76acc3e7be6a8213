using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Context;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Refs;

/// <summary>What a ref source reads for: the environment, the container (null: the configured or only one), the incident, and the Git credential a GitOps read may need.</summary>
public sealed record RefQuery(EnvironmentConfig Environment, string? Container = null, string? IncidentId = null, GitCredential? Credential = null);

/// <summary>
/// One source of the API's refs per mechanism (the cluster's Deployment, Git's pin, the Helm release),
/// behind one interface as kubectl's HistoryViewerFor is per kind. Every source lets the one
/// last-known-good authority (<see cref="LastKnownGoodAuthority"/>, <see cref="EnvironmentTrust"/>)
/// choose; none has a rule of its own. A new source is one file and one line in <see cref="RefSources"/>.
/// </summary>
public interface IRefSource
{
    RefSource Source { get; }

    /// <summary>The current ref and the last-known-good (runbook step 1).</summary>
    Task<ApiRef> ReadAsync(RefQuery query, LastKnownGoodAuthority authority, CancellationToken cancellationToken);

    /// <summary>The revisions, oldest first (only <paramref name="revision"/> when given), as the mechanism's own history tool lists them.</summary>
    Task<IReadOnlyList<object>> HistoryAsync(RefQuery query, long? revision, CancellationToken cancellationToken);
}

/// <summary>The ref sources, built from the engine context: the one place that knows which exist.</summary>
public sealed class RefSources
{
    private readonly IReadOnlyDictionary<RefSource, IRefSource> _sources;

    public RefSources(EngineContext context)
        : this(new ClusterRefSource(context), new GitOpsRefSource(), new HelmRefSource(context))
    {
    }

    public RefSources(params IRefSource[] sources) => _sources = sources.ToDictionary(s => s.Source);

    public IRefSource For(RefSource source) => _sources.TryGetValue(source, out IRefSource? found) ? found
        : throw new KfmException("RefSourceUnavailable", KfmErrorKind.NotInstalled,
            $"No {source} ref source is available here; use -Source {string.Join(" or -Source ", _sources.Keys)}.", source);

    /// <summary>A source without a history of its own (Git's is its commit log, read by <see cref="GitOpsRefSource"/>).</summary>
    internal static KfmException NoHistory(RefSource source) =>
        new("RefSourceHasNoHistory", KfmErrorKind.InvalidArgument,
            $"The {source} source keeps no revision history of its own; use -Source Cluster (the Deployment's ReplicaSets) or -Source Helm (the release).", source);
}
