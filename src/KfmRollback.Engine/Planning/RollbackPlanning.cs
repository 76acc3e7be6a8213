using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Context;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Refs;
using KfmRollback.Engine.Rollback.Preflight;
using KfmRollback.Engine.Rollback.Surfaces;
using KfmRollback.Engine.Rollback;

namespace KfmRollback.Engine.Planning;

/// <summary>
/// The decision tree step (Get-KfmRollbackPlan): the plan from the cluster and, when the environment has
/// a GitOps section, Git's pin; then the proposed rollback's preflight. Built from the engine context.
/// </summary>
public sealed class RollbackPlanning(EngineContext context, RefSources sources)
{
    public const string PlanCheck = "plan";

    /// <summary>The engine Invoke-KfmRollback plans with, from the same context: the preflight plans exactly what it would.</summary>
    private readonly RollbackEngine _engine = new(new RollbackMechanisms(context), context.Clock, textSafety: context.TextSafety);

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
        return decision with { Preflight = await PreflightAsync(environment, decision, request, credential, cancellationToken).ConfigureAwait(false) };
    }

    /// <summary>
    /// The proposed rollback (its method, target and surfaces) planned by that mechanism exactly as
    /// Invoke-KfmRollback would plan it, with the plan's preflight (server dry runs, target digest in the
    /// registry). Nothing is sent but dry runs. A mechanism that refuses to plan (a controller not frozen,
    /// a pending Helm release, missing permissions) shows as a failed "plan" check carrying its error id.
    /// </summary>
    private async Task<IReadOnlyList<PreflightCheck>> PreflightAsync(EnvironmentConfig environment, RollbackDecision decision, RollbackPlanRequest asked, GitCredential? credential, CancellationToken cancellationToken)
    {
        string? container = asked.Container;
        var method = Enum.Parse<RollbackMethod>(decision.Method);
        RollbackSurfaces surfaces = decision.Surface.Select(s => Enum.Parse<RollbackSurfaces>(s)).Aggregate((RollbackSurfaces)0, (all, s) => all | s);
        string target = $"{method} rollback of {environment.Name} to {(decision.ToRevision is { } revision ? $"revision {revision}" : ImageRefs.Short(decision.ToRef ?? decision.RollbackTargetRef))}";
        var request = new RollbackRequest
        {
            Environment = environment,
            Method = method,
            IncidentId = decision.IncidentId,
            Actor = Actor.Current(),
            Reason = "preflight of Get-KfmRollbackPlan",
            Target = new RollbackTarget(decision.ToRevision, decision.ToRef),
            Surfaces = surfaces == 0 ? RollbackSurfaces.Image : surfaces,
            Container = container,
            GitCredential = credential,
            // -Fast goes with -Wait (RollbackRules): the preflight plans what Invoke-KfmRollback -Fast -Wait would send.
            Fast = asked.Fast && method == RollbackMethod.Cluster,
            Wait = asked.Fast && method == RollbackMethod.Cluster,
        };
        MechanismPlan plan;
        try
        {
            plan = await _engine.PlanAsync(request, RollbackReporter.Silent, cancellationToken).ConfigureAwait(false);
        }
        catch (KfmException ex) when (ex.ErrorId == "RollbackIncidentRequired")
        {
            return new[]
            {
                new PreflightCheck
                {
                    Environment = environment.Name, Check = PlanCheck, Target = target, Verdict = PreflightVerdict.Skipped,
                    Saw = "a GitOps rollback names its incident in the branch, commit and pull request; pass -IncidentId to preflight it",
                },
            };
        }
        catch (KfmException ex)
        {
            return new[]
            {
                new PreflightCheck
                {
                    Environment = environment.Name, Check = PlanCheck, Target = target, Verdict = PreflightVerdict.Failed,
                    Saw = $"the {method} mechanism refused to plan it: {ex.Message.TrimEnd('.')}", ErrorId = ex.ErrorId, Kind = ex.Kind,
                    Advice = "Invoke-KfmRollback would refuse it the same way.",
                },
            };
        }
        var passed = new PreflightCheck { Environment = environment.Name, Check = PlanCheck, Target = target, Verdict = PreflightVerdict.Passed, Saw = plan.Summary };
        IEnumerable<PreflightCheck> checks = plan.Preflight.Prepend(passed);
        if (asked.Fast && method != RollbackMethod.Cluster)
        {
            checks = checks.Append(new PreflightCheck
            {
                Environment = environment.Name, Check = Rollback.Cluster.FastRollout.CheckName, Target = target, Verdict = PreflightVerdict.Skipped,
                Saw = $"-Fast applies to -Method Cluster only; the decision tree chose {method}",
            });
        }
        return checks.ToList();
    }
}
