using KfmRollback.Engine.Adapters.Kubernetes;
using KfmRollback.Engine.Rollback;
using k8s.Models;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Rollback.Cluster;

namespace KfmRollback.Engine.Tests.Rollback;

public sealed class ClusterRollbackPlannerTests
{
    private const string Uid = "d-uid";
    private static string Digest(char c) => "sha256:" + new string(c, 64);

    private static V1PodTemplateSpec Template(char digest, string? hash = null, string? env = null) => new()
    {
        Metadata = new V1ObjectMeta { Labels = hash is null ? new Dictionary<string, string> { ["app"] = "kfm-api" } : new Dictionary<string, string> { ["app"] = "kfm-api", ["pod-template-hash"] = hash } },
        Spec = new V1PodSpec
        {
            Containers = new List<V1Container>
            {
                new() { Name = "api", Image = "registry.kfm.local/kfm-api@" + Digest(digest), Env = env is null ? null : new List<V1EnvVar> { new V1EnvVar { Name = "MODE", Value = env } } },
            },
        },
    };

    private static V1ReplicaSet Set(string name, string? revision, char digest, string owner = Uid, Dictionary<string, string>? annotations = null, string? env = null)
    {
        var all = new Dictionary<string, string>(annotations ?? new());
        if (revision is not null)
        {
            all[DeploymentRevisions.RevisionAnnotation] = revision;
        }
        return new V1ReplicaSet
        {
            Metadata = new V1ObjectMeta
            {
                Name = name,
                Annotations = all,
                OwnerReferences = new List<V1OwnerReference> { new() { ApiVersion = "apps/v1", Kind = "Deployment", Name = "kfm-api", Uid = owner, Controller = true } },
            },
            Spec = new V1ReplicaSetSpec { Template = Template(digest, hash: name[^4..], env: env) },
        };
    }

    private static V1Deployment Deployment(char digest, string revision = "3", bool paused = false, Dictionary<string, string>? annotations = null)
    {
        var all = new Dictionary<string, string>(annotations ?? new()) { [DeploymentRevisions.RevisionAnnotation] = revision };
        return new V1Deployment
        {
            Metadata = new V1ObjectMeta { Name = "kfm-api", NamespaceProperty = "kfm", Uid = Uid, ResourceVersion = "41", Annotations = all },
            Spec = new V1DeploymentSpec { Paused = paused, Template = Template(digest), Selector = new V1LabelSelector() },
        };
    }

    [Fact]
    public void Previous_revision_is_the_second_highest_and_hash_label_is_dropped()
    {
        var sets = new[] { Set("kfm-api-aaaa", "1", 'a'), Set("kfm-api-bbbb", "2", 'b'), Set("kfm-api-cccc", "3", 'c') };
        ClusterRollbackPlan plan = ClusterRollbackPlanner.Plan(Deployment('c'), sets, RollbackTarget.Previous);

        Assert.Equal("kfm-api-bbbb", plan.TargetReplicaSet);
        Assert.Equal(2, plan.TargetRevision);
        Assert.False(plan.AlreadyAtTarget);
        Assert.Null(plan.TargetTemplate["metadata"]!["labels"]!["pod-template-hash"]);
        Assert.Equal("kfm-api", (string?)plan.TargetTemplate["metadata"]!["labels"]!["app"]);
    }

    [Fact]
    public void A_fast_rollout_record_is_never_copied_back_from_a_replica_set()
    {
        // The deployment controller copied a -Fast record onto the target ReplicaSet while it was current; it is stale there.
        var stale = new Dictionary<string, string> { [FastRollout.Annotation] = "{\"run\":\"old\"}" };
        var sets = new[] { Set("kfm-api-aaaa", "1", 'a', annotations: stale), Set("kfm-api-cccc", "2", 'c') };
        ClusterRollbackPlan plan = ClusterRollbackPlanner.Plan(Deployment('c', "2"), sets, RollbackTarget.Previous);
        Assert.False(plan.Annotations.ContainsKey(FastRollout.Annotation));

        // One the Deployment carries (a raise not yet restored) stays as it is.
        plan = ClusterRollbackPlanner.Plan(Deployment('c', "2", annotations: new() { [FastRollout.Annotation] = "{\"run\":\"now\"}" }), sets, RollbackTarget.Previous);
        Assert.Equal("{\"run\":\"now\"}", plan.Annotations[FastRollout.Annotation]);
    }

    [Fact]
    public void Patch_is_kubectls_with_a_resource_version_test_first()
    {
        var sets = new[] { Set("kfm-api-aaaa", "1", 'a'), Set("kfm-api-cccc", "2", 'c') };
        var patch = ClusterRollbackPlanner.Plan(Deployment('c', "2"), sets, RollbackTarget.Previous).Patch();

        Assert.Equal(new[] { "test", "replace", "replace" }, patch.Select(op => (string)op!["op"]!));
        Assert.Equal("/metadata/resourceVersion", (string)patch[0]!["path"]!);
        Assert.Equal("41", (string)patch[0]!["value"]!);
        Assert.Equal("/spec/template", (string)patch[1]!["path"]!);
        Assert.Equal("/metadata/annotations", (string)patch[2]!["path"]!);
    }

    [Fact]
    public void Annotations_keep_skip_list_values_from_the_deployment_and_take_the_rest_from_the_replicaset()
    {
        var deployment = Deployment('c', annotations: new()
        {
            [DeploymentRevisions.LastAppliedAnnotation] = "{}",
            ["team"] = "platform",
            [DeploymentRevisions.ChangeCauseAnnotation] = "deploy c",
        });
        var sets = new[]
        {
            Set("kfm-api-bbbb", "2", 'b', annotations: new() { [DeploymentRevisions.ChangeCauseAnnotation] = "deploy b", [DeploymentRevisions.DesiredReplicasAnnotation] = "3" }),
            Set("kfm-api-cccc", "3", 'c'),
        };
        var plan = ClusterRollbackPlanner.Plan(deployment, sets, RollbackTarget.Previous);

        Assert.Equal("deploy b", plan.Annotations[DeploymentRevisions.ChangeCauseAnnotation]);
        Assert.Equal("{}", plan.Annotations[DeploymentRevisions.LastAppliedAnnotation]);
        Assert.Equal("3", plan.Annotations[DeploymentRevisions.RevisionAnnotation]);
        Assert.False(plan.Annotations.ContainsKey("team"));
        Assert.False(plan.Annotations.ContainsKey(DeploymentRevisions.DesiredReplicasAnnotation));
    }

    [Fact]
    public void ReplicaSets_owned_by_another_uid_or_not_as_controller_are_ignored()
    {
        var foreign = Set("other-bbbb", "2", 'b', owner: "someone-else");
        var sets = new[] { foreign, Set("kfm-api-cccc", "3", 'c') };
        var ex = Assert.Throws<KfmException>(() => ClusterRollbackPlanner.Plan(Deployment('c'), sets, RollbackTarget.Previous));
        Assert.Equal("RollbackNoHistory", ex.ErrorId);
        Assert.Contains("no rollout history found for deployment \"kfm-api\"", ex.Message);
    }

    [Fact]
    public void Missing_revision_counts_as_zero_and_unparsable_is_skipped()
    {
        var sets = new[] { Set("kfm-api-aaaa", null, 'a'), Set("kfm-api-xxxx", "abc", 'x'), Set("kfm-api-cccc", "3", 'c') };
        var plan = ClusterRollbackPlanner.Plan(Deployment('c'), sets, RollbackTarget.Previous);
        Assert.Equal("kfm-api-aaaa", plan.TargetReplicaSet);
        Assert.Equal(0, plan.TargetRevision);
    }

    [Theory]
    [InlineData(7)]
    [InlineData(-1)]
    public void Unknown_or_negative_revisions_fail_like_kubectl(long revision)
    {
        var sets = new[] { Set("kfm-api-bbbb", "2", 'b'), Set("kfm-api-cccc", "3", 'c') };
        var ex = Assert.Throws<KfmException>(() => ClusterRollbackPlanner.Plan(Deployment('c'), sets, new RollbackTarget(revision, null)));
        Assert.Equal("RollbackRevisionNotFound", ex.ErrorId);
        Assert.Contains($"unable to find specified revision {revision} in history", ex.Message);
    }

    [Fact]
    public void A_paused_deployment_is_refused_with_kubectls_words()
    {
        var sets = new[] { Set("kfm-api-bbbb", "2", 'b'), Set("kfm-api-cccc", "3", 'c') };
        var ex = Assert.Throws<KfmException>(() => ClusterRollbackPlanner.Plan(Deployment('c', paused: true), sets, RollbackTarget.Previous));
        Assert.Equal("RollbackDeploymentPaused", ex.ErrorId);
        Assert.StartsWith("you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again", ex.Message);
    }

    [Fact]
    public void Rolling_back_to_the_running_template_is_a_no_op()
    {
        var sets = new[] { Set("kfm-api-bbbb", "2", 'b'), Set("kfm-api-cccc", "3", 'c') };
        var plan = ClusterRollbackPlanner.Plan(Deployment('c'), sets, new RollbackTarget(3, null));
        Assert.True(plan.AlreadyAtTarget);
    }

    [Fact]
    public void A_digest_target_finds_its_revision()
    {
        var sets = new[] { Set("kfm-api-aaaa", "1", 'a'), Set("kfm-api-bbbb", "2", 'b'), Set("kfm-api-cccc", "3", 'c') };
        var plan = ClusterRollbackPlanner.Plan(Deployment('c'), sets, new RollbackTarget(null, Digest('a')));
        Assert.Equal(1, plan.TargetRevision);
    }

    [Fact]
    public void A_digest_in_two_different_templates_is_ambiguous_and_names_the_revisions()
    {
        var sets = new[] { Set("kfm-api-aaaa", "1", 'a', env: "x"), Set("kfm-api-abab", "2", 'a', env: "y"), Set("kfm-api-cccc", "3", 'c') };
        var ex = Assert.Throws<KfmException>(() => ClusterRollbackPlanner.Plan(Deployment('c'), sets, new RollbackTarget(null, Digest('a'))));
        Assert.Equal("RollbackTargetAmbiguous", ex.ErrorId);
        Assert.Equal(KfmErrorKind.Ambiguous, ex.Kind);
        Assert.Contains("2, 1", ex.Message);
        Assert.Contains("-ToRevision", ex.Message);
    }

    [Fact]
    public void A_digest_no_revision_runs_is_not_found()
    {
        var sets = new[] { Set("kfm-api-bbbb", "2", 'b'), Set("kfm-api-cccc", "3", 'c') };
        var ex = Assert.Throws<KfmException>(() => ClusterRollbackPlanner.Plan(Deployment('c'), sets, new RollbackTarget(null, Digest('e'))));
        Assert.Equal("RollbackTargetNotInHistory", ex.ErrorId);
    }

    [Fact]
    public void Several_containers_and_no_choice_is_ambiguous_and_a_wrong_name_is_not_found()
    {
        V1PodTemplateSpec template = Template('a');
        template.Spec.Containers.Add(new V1Container { Name = "sidecar", Image = "registry.kfm.local/proxy:1" });

        var ambiguous = Assert.Throws<KfmException>(() => PodTemplates.ContainerImage(template, null, "kfm-api"));
        Assert.Equal("ContainerAmbiguous", ambiguous.ErrorId);
        Assert.Contains("-Container", ambiguous.Message);
        Assert.Equal(Digest('a'), ImageRefs.DigestOf(PodTemplates.ContainerImage(template, "api", "kfm-api")));
        Assert.Equal("ContainerNotFound", Assert.Throws<KfmException>(() => PodTemplates.ContainerImage(template, "web", "kfm-api")).ErrorId);
    }

    [Theory]
    [InlineData("docker-pullable://registry.kfm.local/kfm-api@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [InlineData("registry.kfm.local/kfm-api@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [InlineData("sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    public void Image_ids_normalise_to_the_digest(string imageId)
    {
        Assert.Equal(Digest('a'), ImageRefs.NormaliseImageId(imageId));
    }

    [Theory]
    [InlineData("registry.kfm.local/kfm-api:v1.2", "registry.kfm.local/kfm-api")]
    [InlineData("localhost:5000/kfm-api@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "localhost:5000/kfm-api")]
    [InlineData("kfm-api", "kfm-api")]
    public void Repository_strips_tag_and_digest(string image, string repository)
    {
        Assert.Equal(repository, ImageRefs.Repository(image));
        Assert.Null(image.Contains('@') ? null : ImageRefs.DigestOf(image));
    }
}
