using KfmRollback.Engine.Adapters.Git;

namespace KfmRollback.Engine.Refs;

/// <summary>
/// Git's refs: the digest the GitOps file pins at the deploy branch's tip, and the last-known-good
/// from the file's history, read by <see cref="GitOpsRefReader"/>. Git's history is its commit log:
/// this source lists no revisions of its own.
/// </summary>
public sealed class GitOpsRefSource : IRefSource
{
    public RefSource Source => RefSource.GitOps;

    public Task<ApiRef> ReadAsync(RefQuery query, LastKnownGoodAuthority authority, CancellationToken cancellationToken) =>
        Task.Run(() =>
        {
            var environment = query.Environment;
            using GitOpsRepository repository = GitOpsRepository.Open(environment.Gitops, query.Credential, cancellationToken: cancellationToken);
            GitOpsRefReport report = new GitOpsRefReader(environment.Name, environment.Gitops).Read(repository, authority.For(environment));
            return report.Ref with { IncidentId = query.IncidentId };
        }, cancellationToken);

    public Task<IReadOnlyList<object>> HistoryAsync(RefQuery query, long? revision, CancellationToken cancellationToken) =>
        throw RefSources.NoHistory(Source);
}
