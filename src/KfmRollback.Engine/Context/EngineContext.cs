using k8s;
using KfmRollback.Engine.Adapters.Kubernetes;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Context;

/// <summary>
/// What every step service is handed, as helm's <c>action.Configuration</c> is: a Kubernetes client per
/// environment, one HTTP client, the clock and the policy-safe text rule. The cmdlet layer builds one
/// per module session (<see cref="CreateDefault"/>); tests build one over in-memory fakes or the lab.
/// It knows the adapters, never a step.
/// </summary>
public sealed class EngineContext
{
    private readonly Func<ClusterConfig, IKubernetes> _kubernetes;

    public EngineContext(Func<ClusterConfig, IKubernetes> kubernetes, HttpClient http, IClock clock, ITextSafety textSafety)
    {
        _kubernetes = kubernetes;
        Http = http;
        Clock = clock;
        TextSafety = textSafety;
    }

    /// <summary>The module's context: clients from each environment's kubeconfig (cached per cluster), one HTTP client with a 10 s timeout, the system clock.</summary>
    public static EngineContext CreateDefault() =>
        new(ClusterClientFactory.For, new HttpClient { Timeout = TimeSpan.FromSeconds(10) }, SystemClock.Instance, new PolicySafeText());

    /// <summary>A context whose every environment's cluster is <paramref name="client"/> (tests: the lab, or an in-memory fake).</summary>
    public static EngineContext For(IKubernetes client, IClock? clock = null, HttpClient? http = null) =>
        new(_ => client, http ?? new HttpClient { Timeout = TimeSpan.FromSeconds(10) }, clock ?? SystemClock.Instance, new PolicySafeText());

    /// <summary>The Kubernetes client for <paramref name="environment"/>'s cluster.</summary>
    public IKubernetes Kubernetes(EnvironmentConfig environment) => _kubernetes(environment.Cluster);

    /// <summary>The Kubernetes client for a cluster section (what <see cref="Kubernetes(EnvironmentConfig)"/> asks).</summary>
    public Func<ClusterConfig, IKubernetes> KubernetesFor => _kubernetes;

    public HttpClient Http { get; }
    public IClock Clock { get; }
    public ITextSafety TextSafety { get; }
}
