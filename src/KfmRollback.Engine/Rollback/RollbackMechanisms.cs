using k8s;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Context;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Freeze;
using KfmRollback.Engine.Rollback.Cluster;
using KfmRollback.Engine.Rollback.GitOps;
using KfmRollback.Engine.Rollback.Helm;

namespace KfmRollback.Engine.Rollback;

/// <summary>
/// Picks the adapter for a method (kubectl's RollbackerFor): one folder per mechanism under
/// Rollback/, nothing else knows which exist.
/// </summary>
public sealed class RollbackMechanisms
{
    private readonly Func<EnvironmentConfig, IKubernetes> _cluster;
    private readonly FreezeMechanisms _freezes;
    private readonly IClock _clock;
    private readonly Func<RollbackMethod, EnvironmentConfig, IRollbackMechanism>? _only;
    // One operation's access review answers: a fleet's environments in one namespace ask each permission once.
    private readonly Adapters.Kubernetes.AccessReviews _reviews = new();

    public RollbackMechanisms(Func<EnvironmentConfig, IKubernetes> cluster, FreezeMechanisms freezes, IClock? clock = null)
    {
        _cluster = cluster;
        _freezes = freezes;
        _clock = clock ?? SystemClock.Instance;
    }

    /// <summary>The mechanisms with the engine context's cluster clients (one per kubeconfig context), clock and freezes.</summary>
    public RollbackMechanisms(EngineContext context)
        : this(context.Kubernetes, new FreezeMechanisms(context), context.Clock)
    {
    }

    /// <summary>Tests of the engine itself: every method is <paramref name="mechanism"/> (an in-memory stand-in).</summary>
    internal RollbackMechanisms(Func<RollbackMethod, EnvironmentConfig, IRollbackMechanism> mechanism, Func<EnvironmentConfig, IKubernetes> cluster)
        : this(cluster, new FreezeMechanisms(cluster, null))
    {
        _only = mechanism;
    }

    public IRollbackMechanism For(RollbackMethod method, EnvironmentConfig environment) => _only?.Invoke(method, environment) ?? method switch
    {
        RollbackMethod.Cluster => new ClusterRollbackMechanism(_cluster(environment), _freezes.ClusterControllers(environment), _clock, _reviews),
        RollbackMethod.GitOps => new GitOpsRollbackMechanism(environment.Gitops, _clock, cluster: _cluster),
        RollbackMethod.Helm => new HelmRollbackMechanism(_cluster(environment), _freezes.ClusterControllers(environment), _clock, _reviews),
        _ => throw new KfmException("RollbackMethodUnavailable", KfmErrorKind.NotInstalled,
            $"The {method} rollback mechanism is not available for environment '{environment.Name}'. Use -Method Cluster, GitOps or Helm.", method),
    };

    public IKubernetes ClusterClient(EnvironmentConfig environment) => _cluster(environment);
}
