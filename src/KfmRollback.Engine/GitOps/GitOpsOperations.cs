using KfmRollback.Engine.Cluster;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Receipts;
using KfmRollback.Engine.Refs;
using KfmRollback.Engine.Rollback;

namespace KfmRollback.Engine.GitOps;

/// <summary>
/// The GitOps operations the cmdlets call, taking configuration and plain values only so that no
/// LibGit2Sharp or Octokit type reaches the cmdlet assembly.
/// </summary>
public static class GitOpsOperations
{
    /// <summary>The desired ref in Git and its last-known-good, as the one authority chooses it (Refs/LastKnownGood.cs).</summary>
    public static ApiRef ReadApiRef(EnvironmentConfig environment, string? incidentId, string? user, string? password, LastKnownGoodAuthority authority, CancellationToken cancellationToken = default)
    {
        using GitOpsRepository repository = GitOpsRepository.Open(environment.Gitops, Credential(user, password), cancellationToken: cancellationToken);
        GitOpsRefReport report = new GitOpsRefReader(environment.Name, environment.Gitops).Read(repository, authority.For(environment));
        return report.Ref with { IncidentId = incidentId };
    }

    /// <summary>Git's desired ref against what the cluster runs, one item per difference.</summary>
    public static async Task<IReadOnlyList<DriftItem>> DriftAsync(EnvironmentConfig environment, string? user, string? password, CancellationToken cancellationToken)
    {
        ApiRef desired = await Task.Run(() => ReadApiRef(environment, null, user, password, LastKnownGoodAuthority.HistoryOnly, cancellationToken), cancellationToken).ConfigureAwait(false);
        // Only what runs matters here, not its last-known-good.
        ApiRef live = await ClusterOperations.ReadApiRefAsync(environment, null, null, LastKnownGoodAuthority.HistoryOnly, cancellationToken).ConfigureAwait(false);
        return GitOpsDrift.Compare(desired, live).Select(i => i with { Environment = environment.Name }).ToList();
    }

    /// <summary>The kill-switch mechanism for an environment (it lives in the GitOps repository).</summary>
    public static Freeze.IFreezeMechanism KillSwitch(EnvironmentConfig environment) => new Freeze.KillSwitchFreeze(environment.Name, environment.Gitops);

    public static GitCredential? Credential(string? user, string? password) =>
        password is null ? null : new GitCredential(user ?? "x-access-token", password);
}
