using KfmRollback.Engine.Adapters.Kubernetes;
using k8s.Models;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Rollback;
using KfmRollback.Engine.Rollback.Cluster;
using KfmRollback.Engine.Tests.Configuration;

namespace KfmRollback.Engine.Tests.Refs;

/// <summary>-ToRef takes what the tables show: a full digest, or a unique prefix of at least 12 hex, resolved against the history it came from.</summary>
public sealed class DigestPrefixTests
{
    // Two digests that share their first 12 hex characters, and one that does not.
    private const string Good = "sha256:6bee652533e43e0d317f1a5f53cac50d332e849db092c96211dab3400af29daa";
    private const string Twin = "sha256:6bee652533e4ffff317f1a5f53cac50d332e849db092c96211dab3400af29daa";
    private const string Bad = "sha256:d49d44c11309c8cb5510b62176d4c4728e165f6da40a30658b99945aba54f83f";
    private static readonly string[] History = { Good, Twin, Bad };

    [Theory]
    [InlineData("sha256:d49d44c11309")]
    [InlineData("d49d44c11309")]
    [InlineData("sha256:d49d44c11309c8cb5510b6")]
    public void A_unique_prefix_of_twelve_hex_or_more_names_its_digest(string given)
    {
        Assert.Equal(Bad, ImageRefs.ResolvePrefix(given, History, "the history"));
    }

    [Fact]
    public void A_full_digest_is_taken_as_given_whether_or_not_the_history_has_it()
    {
        string other = "sha256:" + new string('e', 64);
        Assert.Equal(other, ImageRefs.ResolvePrefix(other, History, "the history"));
    }

    [Fact]
    public void An_ambiguous_prefix_is_refused_naming_the_candidates()
    {
        var e = Assert.Throws<KfmException>(() => ImageRefs.ResolvePrefix("sha256:6bee652533e4", History, "the rollout history of deployment \"kfm-api\""));
        Assert.Equal(ImageRefs.PrefixAmbiguous, e.ErrorId);
        Assert.Equal(KfmErrorKind.Ambiguous, e.Kind);
        Assert.Contains(Good, e.Message, StringComparison.Ordinal);
        Assert.Contains(Twin, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Bad, e.Message, StringComparison.Ordinal);
        // One more hex character tells them apart.
        Assert.Equal(Good, ImageRefs.ResolvePrefix("sha256:6bee652533e43", History, "the history"));
    }

    [Fact]
    public void An_unknown_prefix_is_refused_naming_what_the_history_has()
    {
        var e = Assert.Throws<KfmException>(() => ImageRefs.ResolvePrefix("sha256:0123456789ab", History, "the rollout history of deployment \"kfm-api\""));
        Assert.Equal(ImageRefs.PrefixUnknown, e.ErrorId);
        Assert.Equal(KfmErrorKind.ObjectNotFound, e.Kind);
        Assert.Contains("the rollout history of deployment \"kfm-api\"", e.Message, StringComparison.Ordinal);
        Assert.Contains(Bad, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("sha256:d49d44c1130")]
    [InlineData("d49d")]
    public void A_prefix_shorter_than_twelve_hex_is_refused(string given)
    {
        var e = Assert.Throws<KfmException>(() => ImageRefs.ResolvePrefix(given, History, "the history"));
        Assert.Equal(ImageRefs.PrefixTooShort, e.ErrorId);
    }

    [Fact]
    public void Request_validation_lets_a_prefix_through_and_still_refuses_a_tag()
    {
        RollbackRequest Request(string digest) => new()
        {
            Environment = ConfigTestSupport.Load(ConfigTestSupport.Minimal).GetEnvironment("prod"),
            Method = RollbackMethod.Cluster,
            Actor = "tester",
            Target = new RollbackTarget(null, digest),
        };
        RollbackRules.Validate(Request("sha256:d49d44c11309"), new PolicySafeText());
        var e = Assert.Throws<KfmException>(() => RollbackRules.Validate(Request("registry.kfm.local/kfm-api:1.6.0"), new PolicySafeText()));
        Assert.Equal("RollbackTargetNotDigest", e.ErrorId);
    }

    [Fact]
    public void The_cluster_planner_resolves_a_short_digest_against_the_deployments_revisions()
    {
        V1ReplicaSet Set(string name, string revision, string digest) => new()
        {
            Metadata = new V1ObjectMeta
            {
                Name = name,
                Annotations = new Dictionary<string, string> { [DeploymentRevisions.RevisionAnnotation] = revision },
                OwnerReferences = new List<V1OwnerReference> { new() { ApiVersion = "apps/v1", Kind = "Deployment", Name = "kfm-api", Uid = "d-uid", Controller = true } },
            },
            Spec = new V1ReplicaSetSpec { Template = Template(digest, name[^4..]) },
        };
        var deployment = new V1Deployment
        {
            Metadata = new V1ObjectMeta { Name = "kfm-api", NamespaceProperty = "kfm", Uid = "d-uid", ResourceVersion = "9", Annotations = new Dictionary<string, string> { [DeploymentRevisions.RevisionAnnotation] = "3" } },
            Spec = new V1DeploymentSpec { Template = Template(Bad, null), Selector = new V1LabelSelector() },
        };
        var sets = new[] { Set("kfm-api-aaaa", "1", Good), Set("kfm-api-bbbb", "2", Twin), Set("kfm-api-cccc", "3", Bad) };

        ClusterRollbackPlan plan = ClusterRollbackPlanner.Plan(deployment, sets, new RollbackTarget(null, "sha256:6bee652533e43"));
        Assert.Equal(1, plan.TargetRevision);

        var e = Assert.Throws<KfmException>(() => ClusterRollbackPlanner.Plan(deployment, sets, new RollbackTarget(null, "sha256:6bee652533e4")));
        Assert.Equal(ImageRefs.PrefixAmbiguous, e.ErrorId);
        Assert.Contains("rollout history of deployment \"kfm-api\"", e.Message, StringComparison.Ordinal);
    }

    private static V1PodTemplateSpec Template(string digest, string? hash) => new()
    {
        Metadata = new V1ObjectMeta { Labels = hash is null ? new Dictionary<string, string> { ["app"] = "kfm-api" } : new Dictionary<string, string> { ["app"] = "kfm-api", ["pod-template-hash"] = hash } },
        Spec = new V1PodSpec { Containers = new List<V1Container> { new() { Name = "api", Image = "registry.kfm.local/kfm-api@" + digest } } },
    };
}
