namespace KfmRollback.Engine.Adapters.Kubernetes;

/// <summary>One custom resource (an Argo CD Application, a Flux Kustomization) read and merge-patched as JSON.</summary>
public sealed record CustomObjectRef(string Group, string Version, string Plural, string Namespace, string Name, string Description)
{
    public static CustomObjectRef Application(string ns, string name) => new("argoproj.io", "v1alpha1", "applications", ns, name, $"argocd Application {ns}/{name}");
    public static CustomObjectRef Kustomization(string ns, string name) => new("kustomize.toolkit.fluxcd.io", "v1", "kustomizations", ns, name, $"flux Kustomization {ns}/{name}");
    public static CustomObjectRef HelmRelease(string ns, string name) => new("helm.toolkit.fluxcd.io", "v2", "helmreleases", ns, name, $"flux HelmRelease {ns}/{name}");
    public static CustomObjectRef GitRepository(string ns, string name) => new("source.toolkit.fluxcd.io", "v1", "gitrepositories", ns, name, $"flux GitRepository {ns}/{name}");

    public override string ToString() => Description;
}
