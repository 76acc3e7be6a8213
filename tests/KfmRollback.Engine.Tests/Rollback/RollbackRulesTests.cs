using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Rollback.Surfaces;
using Xunit;

namespace KfmRollback.Engine.Tests.Rollback;

/// <summary>One set of refusals for every mechanism, with one error id each.</summary>
public sealed class RollbackRulesTests
{
    private static readonly EnvironmentConfig Prod = EnvironmentConfig.Create("prod",
        new ClusterConfig { Namespace = "kfm", Deployment = "kfm-api" }, new GitOpsConfig { Path = "infra", File = "k.yaml", Kind = GitOpsKind.Kustomize, ImageName = "kfm-api" });

    private static RollbackRequest Request(RollbackMethod method) => new() { Environment = Prod, Method = method, Actor = "t", IncidentId = "INC-1" };

    public static TheoryData<RollbackMethod, RollbackRequest, string, KfmErrorKind> Refusals => new()
    {
        { RollbackMethod.Cluster, Request(RollbackMethod.Cluster) with { Target = new RollbackTarget(null, "registry/kfm-api:1.2") }, "RollbackTargetNotDigest", KfmErrorKind.Ambiguous },
        { RollbackMethod.GitOps, Request(RollbackMethod.GitOps) with { Target = new RollbackTarget(null, "1.2.0") }, "RollbackTargetNotDigest", KfmErrorKind.Ambiguous },
        { RollbackMethod.Helm, Request(RollbackMethod.Helm) with { Target = new RollbackTarget(null, "latest") }, "RollbackTargetNotDigest", KfmErrorKind.Ambiguous },
        { RollbackMethod.Cluster, Request(RollbackMethod.Cluster) with { Force = true }, "ForceReasonMissing", KfmErrorKind.InvalidArgument },
        { RollbackMethod.Cluster, Request(RollbackMethod.Cluster) with { Target = new RollbackTarget(null, null, "abc1234") }, "RollbackRevertNeedsGitOps", KfmErrorKind.InvalidArgument },
        { RollbackMethod.GitOps, Request(RollbackMethod.GitOps) with { Target = new RollbackTarget(3, null) }, "RollbackRevisionNeedsCluster", KfmErrorKind.InvalidArgument },
        { RollbackMethod.GitOps, Request(RollbackMethod.GitOps) with { IncidentId = null }, "RollbackIncidentRequired", KfmErrorKind.InvalidArgument },
        { RollbackMethod.GitOps, Request(RollbackMethod.GitOps) with { Surfaces = RollbackSurfaces.Image | RollbackSurfaces.Config }, "RollbackSurfaceNeedsRevert", KfmErrorKind.InvalidArgument },
        { RollbackMethod.Cluster, Request(RollbackMethod.Cluster) with { DirectPush = true }, "RollbackDirectPushNeedsGitOps", KfmErrorKind.InvalidArgument },
        { RollbackMethod.Cluster, Request(RollbackMethod.Cluster) with { Target = new RollbackTarget(3, "sha256:" + new string('a', 64)) }, "RollbackTargetConflict", KfmErrorKind.InvalidArgument },
        { RollbackMethod.GitOps, Request(RollbackMethod.GitOps) with { Fast = true, Wait = true }, "RollbackFastNeedsCluster", KfmErrorKind.InvalidArgument },
        { RollbackMethod.Helm, Request(RollbackMethod.Helm) with { Fast = true, Wait = true }, "RollbackFastNeedsCluster", KfmErrorKind.InvalidArgument },
        { RollbackMethod.Cluster, Request(RollbackMethod.Cluster) with { Fast = true }, "RollbackFastNeedsWait", KfmErrorKind.InvalidArgument },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void Refuses_what_a_method_cannot_do_with_one_id(RollbackMethod method, RollbackRequest request, string errorId, KfmErrorKind kind)
    {
        Assert.Equal(method, request.Method);
        var e = Assert.Throws<KfmException>(() => RollbackRules.Validate(request, new PolicySafeText()));
        Assert.Equal(errorId, e.ErrorId);
        Assert.Equal(kind, e.Kind);
    }

    [Fact]
    public void Accepts_a_digest_a_revision_and_a_revert_where_they_apply()
    {
        string digest = "sha256:" + new string('a', 64);
        RollbackRules.Validate(Request(RollbackMethod.Cluster) with { Target = new RollbackTarget(null, digest) }, new PolicySafeText());
        RollbackRules.Validate(Request(RollbackMethod.Helm) with { Target = new RollbackTarget(4, null) }, new PolicySafeText());
        RollbackRules.Validate(Request(RollbackMethod.GitOps) with { Target = new RollbackTarget(null, null, "abc1234"), Surfaces = RollbackSurfaces.Config }, new PolicySafeText());
        RollbackRules.Validate(Request(RollbackMethod.Cluster) with { Force = true, ForceReason = "GitOps down" }, new PolicySafeText());
    }
}
