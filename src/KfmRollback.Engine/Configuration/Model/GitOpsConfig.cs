using System.Text.RegularExpressions;
using KfmRollback.Engine.Configuration.Binding;

namespace KfmRollback.Engine.Configuration;

/// <summary>How the API image is pinned in the GitOps repository.</summary>
public enum GitOpsKind
{
    /// <summary>A kustomization.yaml <c>images:</c> entry (name/newName/newTag/digest).</summary>
    Kustomize,
    /// <summary>A Helm values file (image.repository/image.tag/image.digest by default).</summary>
    Helm,
    /// <summary>A raw manifest with <c>image: repo@sha256:…</c>.</summary>
    Raw,
}

/// <summary>The GitOps repository that holds the desired state; the preferred rollback path.</summary>
public sealed partial class GitOpsConfig : IConfigSection
{
    /// <summary>Remote repository (https; http only to loopback; file) cloned into a cache directory.</summary>
    [GitRemoteUrl]
    public Uri? Url { get; init; }

    /// <summary>An existing local clone (alternative to <see cref="Url"/>).</summary>
    [LocalPath]
    public string? Path { get; init; }

    /// <summary>Branch the reconciler watches.</summary>
    public string Branch { get; init; } = "main";

    /// <summary>File that pins the image, relative to the repository root.</summary>
    [RequiredKey, RepoPath]
    public string File { get; init; } = null!;

    /// <summary>How that file pins the image.</summary>
    [RequiredKey]
    public GitOpsKind Kind { get; init; }

    /// <summary>Image name to edit: the kustomize <c>images[].name</c>, or the repository matched in a raw manifest.</summary>
    public string? ImageName { get; init; }

    /// <summary>Dotted paths of the image fields inside a Helm values file.</summary>
    public HelmValuePaths HelmValues { get; init; } = new();

    /// <summary>
    /// Kustomize: path of the images list (default <c>images</c>; Argo CD <c>spec.source.kustomize.images</c>,
    /// Flux <c>spec.images</c>, HelmRelease <c>spec.postRenderers[].kustomize.images</c>).
    /// </summary>
    public string ImagesPath { get; init; } = "images";

    /// <summary>
    /// Raw: the container (its <c>name</c>) whose <c>image:</c> is the API, when one image runs in several
    /// containers; or several (<c>[migrate, api]</c>: an init container running migrations on the same
    /// image), all pinned together, the first being the one read as the API's.
    /// </summary>
    [OneOrMany]
    public IReadOnlyList<string> Container { get; init; } = Array.Empty<string>();

    /// <summary><c>Kind/name</c> of the document to edit when the file holds several that pin the image.</summary>
    public string? Resource { get; init; }

    /// <summary>Pull request settings for the rollback change.</summary>
    public PullRequestConfig Pr { get; init; } = new();

    /// <summary>Commit author of rollback commits.</summary>
    public GitAuthor Author { get; init; } = new();

    /// <summary>Permit pushing straight to <see cref="Branch"/> (default false: changes go through a PR).</summary>
    public bool AllowDirectPush { get; init; }

    /// <summary>Repository path of the kill-switch file pipelines check before deploying.</summary>
    [RepoPath]
    public string? KillSwitchPath { get; init; }

    /// <summary>Environment variable holding the token used for clone and push over https.</summary>
    [EnvVarName]
    public string? TokenEnv { get; init; }

    /// <summary>File holding the token used for clone and push over https.</summary>
    [LocalPath]
    public string? TokenFile { get; init; }

    [GeneratedRegex(@"^[A-Za-z0-9._/-]+$", RegexOptions.CultureInvariant)]
    private static partial Regex BranchShape();

    void IConfigSection.Validate(ValidationScope scope)
    {
        scope.ExactlyOne("the reconciler's repository is needed to roll back through Git.", "url", "path");
        scope.AtMostOne("token_env", "token_file");
        if (!BranchShape().IsMatch(Branch) || Branch.Contains("..") || Branch.StartsWith('/') || Branch.EndsWith('/'))
            throw scope.Invalid("branch", $"is not a valid branch name (got '{Branch}').");
        if (Kind != GitOpsKind.Helm && ImageName is null)
            throw scope.Missing("image_name", $"kind {ConfigSchema.YamlName(Kind)} needs the image name to find the entry to pin.");
        if (Kind != GitOpsKind.Helm && scope.Has("helm_values"))
            throw scope.Invalid("helm_values", $"only applies to kind helm (kind is {ConfigSchema.YamlName(Kind)}).");
        if (!KfmRollback.Engine.Configuration.YamlPath.IsValid(ImagesPath))
            throw scope.Invalid("images_path", $"must be a dotted path such as spec.images or spec.postRenderers[0].kustomize.images (got '{ImagesPath}').");
        if (Kind != GitOpsKind.Kustomize && scope.Has("images_path"))
            throw scope.Invalid("images_path", $"only applies to kind kustomize (kind is {ConfigSchema.YamlName(Kind)}).");
        if (Kind != GitOpsKind.Raw && scope.Has("container"))
            throw scope.Invalid("container", $"only applies to kind raw (kind is {ConfigSchema.YamlName(Kind)}).");
        if (Container.GroupBy(c => c).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw scope.Invalid("container", $"names container '{twice.Key}' twice.");
        if (Resource is not null && (Resource.Split('/') is not [{ Length: > 0 }, { Length: > 0 }]))
            throw scope.Invalid("resource", $"must be Kind/name such as Application/kfm-api (got '{Resource}').");
    }
}

/// <summary>Dotted paths of the image fields in a Helm values file.</summary>
public sealed partial class HelmValuePaths : IConfigSection
{
    /// <summary>Path of the image repository value.</summary>
    public string Repository { get; init; } = "image.repository";

    /// <summary>Path of the image tag value (cleared when pinning by digest).</summary>
    public string Tag { get; init; } = "image.tag";

    /// <summary>Path of the image digest value.</summary>
    public string Digest { get; init; } = "image.digest";

    /// <summary>
    /// Argo CD <c>spec.source.helm.parameters</c>: path of a <c>name</c>/<c>value</c> list whose names
    /// are the three paths above; unset, the paths address the document itself.
    /// </summary>
    public string? Parameters { get; init; }

    /// <summary>
    /// Argo CD <c>spec.source.helm.values: |</c>: path of a string (a literal block) holding the values
    /// as YAML; the three paths above then address that string's content. Unset, they address the document.
    /// </summary>
    public string? Block { get; init; }

    void IConfigSection.Validate(ValidationScope scope)
    {
        if (Block is not null && Parameters is not null)
            throw scope.Invalid("block", "values come either from a string (block) or from a parameters list, not both.");
        foreach (var (key, value) in new[] { ("repository", Repository), ("tag", Tag), ("digest", Digest), ("parameters", Parameters ?? "p"), ("block", Block ?? "b") })
            if (!KfmRollback.Engine.Configuration.YamlPath.IsValid(value))
                throw scope.Invalid(key, $"must be a dotted values path such as image.tag or api.containers[0].image.digest (got '{value}').");
    }
}

/// <summary>Commit author of rollback commits.</summary>
public sealed class GitAuthor : IConfigSection
{
    /// <summary>Author name.</summary>
    public string Name { get; init; } = "KfmRollback";

    /// <summary>Author e-mail.</summary>
    public string Email { get; init; } = "kfm-rollback@localhost";

    void IConfigSection.Validate(ValidationScope scope)
    {
        if (!Email.Contains('@') || Email.Any(char.IsWhiteSpace))
            throw scope.Invalid("email", $"must be an e-mail address (got '{Email}').");
    }
}
