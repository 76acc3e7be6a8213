using k8s;
using KfmRollback.Engine.Adapters.GitOpsControllers;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Context;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Freeze;

/// <summary>Builds the freeze mechanisms an environment configures, each behind <see cref="IFreezeMechanism"/>.</summary>
public sealed class FreezeMechanisms
{
    private readonly Func<EnvironmentConfig, IKubernetes> _cluster;
    private readonly Func<EnvironmentConfig, IFreezeMechanism>? _killSwitch;

    /// <param name="cluster">Client for an environment's cluster, asked for only when a cluster mechanism is used.</param>
    /// <param name="killSwitch">Builds the kill-switch mechanism (it lives in the GitOps repository).</param>
    public FreezeMechanisms(Func<EnvironmentConfig, IKubernetes> cluster, Func<EnvironmentConfig, IFreezeMechanism>? killSwitch)
    {
        _cluster = cluster;
        _killSwitch = killSwitch;
    }

    /// <summary>The mechanisms with the engine context's cluster clients and the kill switch.</summary>
    public FreezeMechanisms(EngineContext context)
        : this(context.Kubernetes, env => new KillSwitchFreeze(env.Name, env.Gitops))
    {
    }

    /// <summary>Only the mechanisms whose controllers live in the cluster and deploy from Git, so could revert a cluster rollback.</summary>
    public IReadOnlyList<IFreezeMechanism> ClusterControllers(EnvironmentConfig environment) =>
        environment.FreezeMechanisms
            .Where(m => m.Kind != FreezeKind.Killswitch)
            .Select(m => Build(environment, m))
            .Where(m => m is ControllerFreeze { Controller: IDeployingController })
            .ToList();

    /// <summary>The configured mechanisms, optionally only those of <paramref name="kinds"/>.</summary>
    public IReadOnlyList<IFreezeMechanism> For(EnvironmentConfig environment, IReadOnlyCollection<FreezeKind>? kinds = null)
    {
        var selected = environment.Freeze.Mechanisms.Where(m => kinds is null || kinds.Count == 0 || kinds.Contains(m.Kind)).ToList();
        if (kinds is { Count: > 0 })
        {
            FreezeKind missing = kinds.FirstOrDefault(k => selected.All(m => m.Kind != k), (FreezeKind)(-1));
            if ((int)missing >= 0)
            {
                throw new KfmException("FreezeMechanismNotConfigured", KfmErrorKind.ObjectNotFound,
                    $"Environment '{environment.Name}' configures no {missing} freeze mechanism; it has {string.Join(", ", environment.Freeze.Mechanisms.Select(m => m.Kind))}. " +
                    "Add it under freeze.mechanisms or choose another -Mechanism.", missing);
            }
        }
        return selected.Select(m => Build(environment, m)).ToList();
    }

    private IFreezeMechanism Build(EnvironmentConfig environment, FreezeMechanism mechanism)
    {
        IFreezeMechanism? built = mechanism.Kind == FreezeKind.Killswitch
            ? _killSwitch?.Invoke(environment)
            : GitOpsControllerKinds.For(_cluster(environment), mechanism) is { } controller ? new ControllerFreeze(controller, environment.Name) : null;
        return built ?? throw new KfmException("FreezeMechanismUnavailable", KfmErrorKind.NotInstalled,
            $"The {mechanism.Kind} freeze mechanism is not available in this context. Choose the mechanisms to use with -Mechanism.", mechanism.Kind);
    }
}
