using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Context;
using KfmRollback.Engine.Refs;

namespace KfmRollback.Engine.Planning;

/// <summary>
/// The decision tree step (Get-KfmRollbackPlan): the plan from the cluster and, when the environment has
/// a GitOps section, Git's pin; then the proposed rollback's preflight. Built from the engine context.
/// </summary>
public sealed class RollbackPlanning(EngineContext context, RefSources sources)
{
    public async Task<RollbackDecision> PlanAsync(EnvironmentConfig environment, RollbackPlanRequest request, GitCredential? credential, LastKnownGoodAuthority authority, CancellationToken cancellationToken)
    {
        var planSources = new PlanSources
        {
            Trust = authority.For(environment),
            GitOpsRef = environment.GitopsSection is null ? null
                : token => sources.For(RefSource.GitOps).ReadAsync(new RefQuery(environment, IncidentId: request.IncidentId, Credential: credential), authority, token),
            Http = context.Http,
        };
        RollbackDecision decision = await new RollbackPlanner(context.Kubernetes(environment), environment, planSources).PlanAsync(request, cancellationToken).ConfigureAwait(false);
        var preflight = new PlanPreflight(new Rollback.RollbackEngine(new Rollback.RollbackMechanisms(context), context.Clock, textSafety: context.TextSafety));
        return decision with { Preflight = await preflight.RunAsync(environment, decision, request.Container, credential, cancellationToken).ConfigureAwait(false) };
    }
}
