using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Rollback.Preflight;
using KfmRollback.Engine.Rollback.Surfaces;

namespace KfmRollback.Engine.Planning;

/// <summary>
/// Get-KfmRollbackPlan's preflight: the rollback the decision tree proposes (its method, target and
/// surfaces) planned by that mechanism exactly as Invoke-KfmRollback would plan it, with the plan's
/// preflight (server dry runs, target digest in the registry). Nothing is sent but dry runs. A
/// mechanism that refuses to plan (a controller not frozen, a pending Helm release, missing
/// permissions) shows as a failed "plan" check carrying its error id.
/// </summary>
public sealed class PlanPreflight
{
    public const string PlanCheck = "plan";

    private readonly RollbackEngine _engine;

    public PlanPreflight(RollbackEngine engine) => _engine = engine;

    public async Task<IReadOnlyList<PreflightCheck>> RunAsync(EnvironmentConfig environment, RollbackDecision decision, string? container, GitCredential? credential, CancellationToken cancellationToken)
    {
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
        return plan.Preflight.Prepend(passed).ToList();
    }
}
