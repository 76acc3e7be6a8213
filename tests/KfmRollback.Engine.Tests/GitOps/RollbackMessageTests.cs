using KfmRollback.Engine.Refs;
using KfmRollback.Engine.Adapters.PullRequests;
using KfmRollback.Engine.Adapters.Git;

namespace KfmRollback.Engine.Tests.GitOps;

public class GitOpsRollbackMessageTests
{
    [Fact]
    public void NewlinesInReasonCannotForgeATrailer()
    {
        string message = RollbackMessage.Commit("INC-1", "pin", GitTestRepo.D2, "bad deploy\nIncident: INC-999", "api");
        Assert.Equal("INC-1", RollbackMessage.Trailer(message, "Incident"));
        Assert.Equal("bad deploy Incident: INC-999", RollbackMessage.Trailer(message, "Reason"));
    }

    [Fact]
    public void BranchNameIsUtcMinute() =>
        Assert.Equal("ops/rollback-api-20261128-2359", RollbackMessage.BranchName(new DateTimeOffset(2026, 11, 29, 1, 59, 30, TimeSpan.FromHours(2))));

    [Fact]
    public void NoProviderGivesACompareUrl()
    {
        var none = new NoPullRequests(new Uri("https://git.example.test/kfm/infra.git"));
        var draft = new PullRequestDraft("ops/rollback-api-20261128-0905", "main", "t", "b");
        Assert.Equal("https://git.example.test/kfm/infra/compare/main...ops/rollback-api-20261128-0905", none.CompareUrl(draft));
        Assert.Null(new NoPullRequests(new Uri("file:///srv/infra.git")).CompareUrl(draft));
    }

    [Fact]
    public void CredentialNeverPrintsItsPassword()
    {
        var credential = new GitCredential("deployer", "hunter2-secret");
        Assert.Equal("deployer:***", credential.ToString());
        Assert.Equal("remote: https://[REDACTED:url-credentials]@git.example.test/x.git failed", GitOpsRepository.Sanitize("remote: https://deployer:hunter2-secret@git.example.test/x.git failed"));
    }
}
