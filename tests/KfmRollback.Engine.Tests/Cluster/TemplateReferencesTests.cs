using KfmRollback.Engine.Adapters.Kubernetes;
using k8s.Models;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Tests.Cluster;

public sealed class TemplateReferencesTests
{
    private static V1PodTemplateSpec Template() => new()
    {
        Metadata = new V1ObjectMeta { Annotations = new Dictionary<string, string> { ["kfm.dev/policy-bundle"] = "kfm-policy@sha256-aa" } },
        Spec = new V1PodSpec
        {
            Volumes = new List<V1Volume>
            {
                new() { Name = "cfg", ConfigMap = new V1ConfigMapVolumeSource { Name = "kfm-api-config" } },
                new() { Name = "tls", Secret = new V1SecretVolumeSource { SecretName = "kfm-api-tls" } },
                new()
                {
                    Name = "proj",
                    Projected = new V1ProjectedVolumeSource
                    {
                        Sources = new List<V1VolumeProjection>
                        {
                            new() { ConfigMap = new V1ConfigMapProjection { Name = "kfm-api-flags" } },
                            new() { Secret = new V1SecretProjection { Name = "kfm-api-oidc" } },
                        },
                    },
                },
            },
            InitContainers = new List<V1Container> { new() { Name = "init", EnvFrom = new List<V1EnvFromSource> { new() { SecretRef = new V1SecretEnvSource { Name = "kfm-init" } } } } },
            Containers = new List<V1Container>
            {
                new()
                {
                    Name = "api",
                    EnvFrom = new List<V1EnvFromSource> { new() { ConfigMapRef = new V1ConfigMapEnvSource { Name = "kfm-api-env" } } },
                    Env = new List<V1EnvVar>
                    {
                        new() { Name = "POLICY_BUNDLE", Value = "kfm-policy@sha256-bb" },
                        new() { Name = "LEVEL", ValueFrom = new V1EnvVarSource { ConfigMapKeyRef = new V1ConfigMapKeySelector { Name = "kfm-api-config", Key = "log_level" } } },
                        new() { Name = "PASSWORD", ValueFrom = new V1EnvVarSource { SecretKeyRef = new V1SecretKeySelector { Name = "kfm-db", Key = "password" } } },
                    },
                },
            },
        },
    };

    [Fact]
    public void Finds_configmaps_in_volumes_projections_envfrom_and_env_once_each()
    {
        Assert.Equal(new[] { "kfm-api-config", "kfm-api-env", "kfm-api-flags" }, TemplateReferences.ConfigMaps(Template()));
    }

    [Fact]
    public void Finds_secrets_including_init_containers()
    {
        Assert.Equal(new[] { "kfm-api-oidc", "kfm-api-tls", "kfm-db", "kfm-init" }, TemplateReferences.Secrets(Template()));
    }

    [Fact]
    public void Reads_the_policy_bundle_ref_where_the_configuration_says_it_lives()
    {
        Assert.Equal("kfm-policy@sha256-bb", TemplateReferences.PolicyBundleRef(Template(), "api", new PolicySurfaceConfig { Env = "POLICY_BUNDLE" }));
        Assert.Equal("kfm-policy@sha256-aa", TemplateReferences.PolicyBundleRef(Template(), "api", new PolicySurfaceConfig { Annotation = "kfm.dev/policy-bundle" }));
        Assert.Equal("configmap/kfm-api-policy#bundle_ref", TemplateReferences.PolicyBundleRef(Template(), "api", new PolicySurfaceConfig { Configmap = "kfm-api-policy", Key = "bundle_ref" }));
        Assert.Null(TemplateReferences.PolicyBundleRef(Template(), "api", null));
    }
}
