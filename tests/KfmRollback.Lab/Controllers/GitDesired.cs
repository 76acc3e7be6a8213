using System.Text.Json.Nodes;

namespace KfmRollback.Lab.Controllers;

/// <summary>
/// The image a directory of a Git source deploys to one container, as kustomize, helm or plain
/// manifests would render it: a kustomization.yaml's <c>images:</c> override (entry matched by
/// <c>name</c> against the image's repository) on the manifests beside it, a chart's values files
/// (<c>image.repository</c>/<c>tag</c>/<c>digest</c>), or a Deployment manifest's container image.
/// </summary>
public static class GitDesired
{
    static readonly string[] KustomizationNames = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

    /// <param name="imageName">The kustomize images[].name to use (annotation lab.kfm.local/image-name); null matches the live image's repository.</param>
    /// <param name="liveImage">What the container runs now (for matching, and the base when nothing in Git names an image).</param>
    /// <exception cref="GitSourceException">a file is not YAML, or nothing in the directory names the image</exception>
    public static string Image(GitSnapshot snap, string deployment, string? container, string? imageName, string? liveImage, IReadOnlyList<string> valueFiles)
    {
        var kustomization = KustomizationNames.Where(snap.Files.ContainsKey).Select(n => Parse(snap, n).FirstOrDefault()).FirstOrDefault();
        if (kustomization is not null)
        {
            string? baseImage = FromManifests(snap, deployment, container) ?? liveImage;
            var repo = baseImage is null ? imageName : Repo(baseImage);
            var entries = (kustomization["images"] as JsonArray)?.OfType<JsonObject>().ToList() ?? [];
            var entry = entries.FirstOrDefault(e => Matches(e.Str("name"), imageName ?? repo))
                        ?? (imageName is null && entries.Count == 1 ? entries[0] : null);
            if (entry is null)
                return baseImage ?? throw new GitSourceException("kustomization has no images entry for the container and no manifest names its image");
            var e2 = (JsonObject)entry.DeepClone();
            if (e2.Str("newName") is null && repo is not null) e2["newName"] = repo;
            return GitOps.KustomizeImage(new JsonArray(e2))!;
        }
        if (snap.Files.ContainsKey("Chart.yaml") || valueFiles.Count > 0)
        {
            var values = new JsonObject();
            foreach (var f in new[] { "values.yaml" }.Concat(valueFiles).Distinct().Where(snap.Files.ContainsKey))
                Merge(values, Parse(snap, f).FirstOrDefault() as JsonObject);
            return GitOps.HelmImage(values["image"]) ?? throw new GitSourceException("values have no image.repository");
        }
        return FromManifests(snap, deployment, container) ?? throw new GitSourceException($"no manifest in the directory defines Deployment {deployment}");
    }

    static bool Matches(string? name, string? repo) => name is not null && repo is not null && (name == repo || repo.EndsWith("/" + name, StringComparison.Ordinal));

    /// <summary>The repository part of an image reference (no tag, no digest).</summary>
    public static string Repo(string image)
    {
        var at = image.IndexOf('@');
        if (at >= 0) image = image[..at];
        var colon = image.LastIndexOf(':');
        return colon > image.LastIndexOf('/') ? image[..colon] : image;
    }

    static string? FromManifests(GitSnapshot snap, string deployment, string? container)
    {
        foreach (var (name, _) in snap.Files.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            if (!name.EndsWith(".yaml", StringComparison.Ordinal) && !name.EndsWith(".yml", StringComparison.Ordinal)) continue;
            if (KustomizationNames.Contains(name) || name.StartsWith("values", StringComparison.Ordinal)) continue;
            foreach (var doc in Parse(snap, name))
                if (doc.Str("kind") == "Deployment" && doc.Str("metadata.name") == deployment
                    && (doc.At("spec.template.spec.containers") as JsonArray)?.OfType<JsonObject>().FirstOrDefault(c => container == null || c.Str("name") == container) is { } c)
                    return c.Str("image");
        }
        return null;
    }

    static IReadOnlyList<JsonNode?> Parse(GitSnapshot snap, string file) =>
        GitSource.Yaml(snap.Files[file]) ?? throw new GitSourceException($"{file} at {snap.Sha[..12]} is not valid YAML");

    static void Merge(JsonObject into, JsonObject? from)
    {
        if (from is null) return;
        foreach (var (k, v) in from.ToList())
        {
            if (v is JsonObject o && into[k] is JsonObject existing) Merge(existing, o);
            else into[k] = v?.DeepClone();
        }
    }
}
