using k8s;
using k8s.Models;
using KfmRollback.Engine.Adapters.Helm;
using KfmRollback.Engine.Context;

namespace KfmRollback.Engine.Refs;

/// <summary>
/// The Helm release's refs: what the deployed release runs and the last-known-good, read from the
/// release Secrets the way helm reads them (<see cref="HelmReleaseRefs"/>), and its history as
/// <c>helm history</c> lists it.
/// </summary>
public sealed class HelmRefSource(EngineContext context) : IRefSource
{
    public RefSource Source => RefSource.Helm;

    public async Task<ApiRef> ReadAsync(RefQuery query, LastKnownGoodAuthority authority, CancellationToken cancellationToken)
    {
        var environment = query.Environment;
        IKubernetes client = context.Kubernetes(environment);
        IReadOnlyList<StoredRelease> history = await HelmReleaseRefs.Store(client, environment).RequireHistoryAsync(environment.Helm!.Release, cancellationToken).ConfigureAwait(false);
        // The Deployment carries the quarantine too (a sandbox with an empty journal still sees it).
        V1Deployment deployment = await client.AppsV1.ReadNamespacedDeploymentAsync(environment.Cluster.Deployment, environment.Cluster.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        EnvironmentTrust trust = authority.For(environment).With(HelmReleaseRefs.Quarantine(deployment));
        return HelmReleaseRefs.Ref(history, environment, query.Container, trust) with { IncidentId = query.IncidentId };
    }

    public async Task<IReadOnlyList<object>> HistoryAsync(RefQuery query, long? revision, CancellationToken cancellationToken)
    {
        IReadOnlyList<StoredRelease> history = await HelmReleaseRefs.Store(context.Kubernetes(query.Environment), query.Environment).RequireHistoryAsync(query.Environment.Helm!.Release, cancellationToken).ConfigureAwait(false);
        return HelmReleaseRefs.History(history, query.Environment, query.Container).Where(r => revision is null || r.Revision == revision).ToList<object>();
    }
}
