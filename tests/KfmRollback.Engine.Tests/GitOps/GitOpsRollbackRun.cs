using KfmRollback.Engine.Adapters.PullRequests;
using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Rollback.GitOps;

namespace KfmRollback.Engine.Tests.GitOps;

/// <summary>What a GitOps rollback test asks for, in the words the tests use.</summary>
public sealed record GitOpsRollbackRequest
{
    public required string Environment { get; init; }
    public required string IncidentId { get; init; }
    public required string Reason { get; init; }
    public string BlastRadius { get; init; } = "api";
    public string? RevertCommit { get; init; }
    public string? ToRef { get; init; }
    public bool DryRun { get; init; }
    public bool DirectPush { get; init; }
    public GitCredential? Credential { get; init; }
    public KfmRollback.Engine.Refs.EnvironmentTrust? Trust { get; init; }
}

/// <summary>
/// The GitOps mechanism the way the engine drives it: the shared request rules, Plan, then (unless
/// a dry run) Apply of exactly that plan.
/// </summary>
public sealed class GitOpsRollbackRun
{
    private readonly GitOpsConfig _config;
    private readonly IClock? _clock;
    private readonly string? _cacheRoot;
    private readonly Func<PullRequestConfig, Uri?, IPullRequestProvider>? _providers;

    public GitOpsRollbackRun(GitOpsConfig config, IClock? clock = null, string? cacheRoot = null, Func<PullRequestConfig, Uri?, IPullRequestProvider>? providers = null)
    {
        _config = config;
        _clock = clock;
        _cacheRoot = cacheRoot;
        _providers = providers;
    }

    public RollbackResult Run(GitOpsRollbackRequest test)
    {
        var mechanism = new GitOpsRollbackMechanism(_config, _clock, _cacheRoot, _providers);
        var request = new RollbackRequest
        {
            Environment = EnvironmentConfig.Create(test.Environment, new ClusterConfig { Namespace = "kfm", Deployment = "kfm-api" }, _config),
            Method = RollbackMethod.GitOps,
            IncidentId = test.IncidentId,
            Actor = "test",
            Reason = test.Reason,
            BlastRadius = test.BlastRadius,
            Target = new RollbackTarget(null, test.ToRef, test.RevertCommit),
            DirectPush = test.DirectPush,
            GitCredential = test.Credential,
            Trust = test.Trust,
        };
        RollbackRules.Validate(request, new PolicySafeText());
        MechanismPlan plan = mechanism.PlanAsync(request, RollbackReporter.Silent, CancellationToken.None).GetAwaiter().GetResult();
        if (test.DryRun || plan.NoOp)
        {
            return RollbackEngine.Preview(request, plan);
        }
        return mechanism.ApplyAsync(request, plan, RollbackReporter.Silent, CancellationToken.None).GetAwaiter().GetResult();
    }
}
