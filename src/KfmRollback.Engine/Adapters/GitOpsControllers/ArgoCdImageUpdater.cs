using System.Text.Json.Nodes;
using k8s;
using KfmRollback.Engine.Adapters.Kubernetes;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Adapters.GitOpsControllers;

/// <summary>
/// Argo CD Image Updater for one Application: the updater processes only Applications carrying its
/// <c>argocd-image-updater.argoproj.io/image-list</c> annotation (it skips the others, "required
/// annotation is missing"), so the freeze removes that annotation and thaw puts the exact value
/// back. Otherwise the updater writes a newer image into the Application (argoproj/argo-cd#9570),
/// which a thaw would deploy. It deploys nothing itself.
/// </summary>
public sealed class ArgoCdImageUpdater(IKubernetes client, string @namespace, string name)
    : CustomObjectController(client, new CustomObjectRef("argoproj.io", "v1alpha1", "applications", @namespace, name, $"argocd-image-updater Application {@namespace}/{name}"))
{
    /// <summary>The annotation Argo CD Image Updater (0.x) reads the images to update from.</summary>
    public const string ImageListAnnotation = "argocd-image-updater.argoproj.io/image-list";

    /// <summary>Its own freeze record: the Application's default record belongs to the auto-sync freeze.</summary>
    public const string RecordAnnotationKey = "kfm.dev/freeze-image-updater";

    public override FreezeKind Kind => FreezeKind.ArgocdImageUpdater;
    public override string RecordAnnotation => RecordAnnotationKey;

    public override bool IsStopped(JsonObject resource) => ImageList(resource) is null;

    public override JsonNode? CurrentSetting(JsonObject resource) => ImageList(resource) is { } list ? JsonValue.Create(list) : null;

    // The setting lives in an annotation, not the spec: the patches below replace the spec fragments.
    protected override JsonObject StopSpec() => new();

    protected override JsonObject RestoreSpec(JsonNode? prior) => new();

    public override JsonObject FreezePatch() => Annotation(null);

    public override JsonObject ThawPatch(JsonNode? prior) => Annotation(prior?.GetValue<string>());

    private static JsonObject Annotation(string? value) => new()
    {
        ["metadata"] = new JsonObject { ["annotations"] = new JsonObject { [ImageListAnnotation] = value } },
    };

    private static string? ImageList(JsonObject resource) => (string?)resource["metadata"]?["annotations"]?[ImageListAnnotation];
}
