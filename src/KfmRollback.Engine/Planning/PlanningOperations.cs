using KfmRollback.Engine.Cluster;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.GitOps;

namespace KfmRollback.Engine.Planning;

/// <summary>Get-KfmRollbackPlan's entry point, taking configuration and plain values only, as <see cref="ClusterOperations"/> does.</summary>
public static class PlanningOperations
{
    private static readonly HttpClient s_http = new() { Timeout = TimeSpan.FromSeconds(10) };

    public static async Task<RollbackDecision> PlanAsync(EnvironmentConfig environment, RollbackPlanRequest request, string? gitUser, string? gitPassword, Refs.LastKnownGoodAuthority authority, CancellationToken cancellationToken)
    {
        var sources = new PlanSources
        {
            Trust = authority.For(environment),
            GitOpsRef = environment.GitopsSection is null ? null : token => Task.Run(() => GitOpsOperations.ReadApiRef(environment, request.IncidentId, gitUser, gitPassword, authority, token), token),
            Http = s_http,
        };
        RollbackDecision decision = await new RollbackPlanner(ClusterClientFactory.For(environment.Cluster), environment, sources).PlanAsync(request, cancellationToken).ConfigureAwait(false);
        var preflight = new PlanPreflight(Rollback.RollbackEngine.Default);
        return decision with { Preflight = await preflight.RunAsync(environment, decision, request.Container, GitOpsOperations.Credential(gitUser, gitPassword), cancellationToken).ConfigureAwait(false) };
    }
}
