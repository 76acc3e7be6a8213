using System.Text.Json.Nodes;
using k8s;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Freeze;

/// <summary>
/// Stops Argo CD Image Updater for one Application: the updater processes only Applications carrying
/// its <c>argocd-image-updater.argoproj.io/image-list</c> annotation (it skips the others, "required
/// annotation is missing"), so the freeze removes that annotation and keeps its value in the freeze
/// record; thaw puts the exact value back. Otherwise the updater writes a newer image into the
/// Application (argoproj/argo-cd#9570), which a thaw would deploy.
/// </summary>
public sealed class ArgoCdImageUpdaterFreeze : CustomObjectFreeze
{
    /// <summary>The annotation Argo CD Image Updater (0.x) reads the images to update from.</summary>
    public const string ImageListAnnotation = "argocd-image-updater.argoproj.io/image-list";

    public ArgoCdImageUpdaterFreeze(IKubernetes client, string environment, string @namespace, string name)
        : base(client, environment, "argoproj.io", "v1alpha1", "applications", @namespace, name)
    {
    }

    /// <summary>Its own freeze record: the Application's <see cref="FreezeRecord.Annotation"/> belongs to the auto-sync freeze.</summary>
    public const string RecordAnnotationKey = "kfm.dev/freeze-image-updater";

    public override FreezeKind Kind => FreezeKind.ArgocdImageUpdater;
    protected override string RecordAnnotation => RecordAnnotationKey;
    protected override string KindName => "argocd-image-updater Application";

    protected override bool IsStopped(JsonObject resource) => ImageList(resource) is null;

    protected override JsonNode? CurrentSetting(JsonObject resource) => ImageList(resource) is { } list ? JsonValue.Create(list) : null;

    // The setting lives in an annotation, not the spec: the patches below replace the spec fragments.
    protected override JsonObject StopSpec() => new();

    protected override JsonObject RestoreSpec(JsonNode? prior) => new();

    protected override JsonObject StopPatch() => Annotation(null);

    protected override JsonObject RestorePatch(JsonNode? prior) => Annotation(prior?.GetValue<string>());

    private static JsonObject Annotation(string? value) => new()
    {
        ["metadata"] = new JsonObject { ["annotations"] = new JsonObject { [ImageListAnnotation] = value } },
    };

    private static string? ImageList(JsonObject resource) => (string?)resource["metadata"]?["annotations"]?[ImageListAnnotation];
}
