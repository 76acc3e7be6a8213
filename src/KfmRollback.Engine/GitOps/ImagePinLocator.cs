using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using YamlDotNet.RepresentationModel;

namespace KfmRollback.Engine.GitOps;

/// <summary>
/// Finds the API image pin in a Kustomize, Helm values or raw manifest file. Fails closed: no
/// match, or more than one, is an error naming what is ambiguous and which setting resolves it.
/// </summary>
public sealed class ImagePinLocator
{
    private readonly GitOpsKind _kind;
    private readonly string? _imageName;
    private readonly HelmValuePaths _helm;

    public ImagePinLocator(GitOpsKind kind, string? imageName, HelmValuePaths? helm = null)
    {
        _kind = kind;
        _imageName = imageName;
        _helm = helm ?? new HelmValuePaths();
    }

    public static ImagePinLocator For(GitOpsConfig config) => new(config.Kind, config.ImageName, config.HelmValues);

    public ImagePin Locate(YamlText file) => _kind switch
    {
        GitOpsKind.Kustomize => LocateKustomize(file),
        GitOpsKind.Helm => LocateHelm(file),
        _ => LocateRaw(file),
    };

    private ImagePin LocateKustomize(YamlText file)
    {
        var entries = file.Stream.Documents
            .Select(d => d.RootNode).OfType<YamlMappingNode>()
            .Select(root => Child(root, "images")).OfType<YamlSequenceNode>()
            .SelectMany(s => s.Children).OfType<YamlMappingNode>()
            .Where(entry => Scalar(entry, "name")?.Value == _imageName)
            .ToList();
        var entry = Single(file, entries.Cast<YamlNode>().ToList(), "images[] entries named");
        var map = (YamlMappingNode)entry;
        string repository = Scalar(map, "newName")?.Value ?? _imageName!;
        var tagNode = Scalar(map, "newTag");
        var digestNode = Scalar(map, "digest");
        string? digest = NullIfEmpty(digestNode?.Value);
        string? tag = NullIfEmpty(tagNode?.Value);
        string image = repository + (tag is null ? "" : ":" + tag) + (digest is null ? "" : "@" + digest);
        if (digestNode is not null)
            return new ImagePin { Image = image, Repository = repository, Tag = tag, Digest = digest, EditKind = PinEditKind.ReplaceDigestValue, ValueSpan = YamlText.SpanOf(digestNode) };
        if (tagNode is not null)
        {
            var key = map.Children.Keys.OfType<YamlScalarNode>().First(k => k.Value == "newTag");
            return new ImagePin { Image = image, Repository = repository, Tag = tag, EditKind = PinEditKind.RenameTagKeyToDigest, ValueSpan = YamlText.SpanOf(tagNode), KeySpan = YamlText.SpanOf(key) };
        }
        throw new KfmException(GitOpsErrorIds.NoDigestField, KfmErrorKind.Ambiguous,
            $"{file.Path}:{entry.Start.Line}: the images entry '{_imageName}' has neither newTag nor digest, so there is no line to pin a digest on. Add 'digest:' to the entry, or roll back with -Revert <sha>.", file.Path);
    }

    private ImagePin LocateHelm(YamlText file)
    {
        var root = file.Stream.Documents.FirstOrDefault()?.RootNode as YamlMappingNode;
        var repoNode = root is null ? null : Resolve(root, _helm.Repository);
        if (repoNode is null)
            throw new KfmException(GitOpsErrorIds.ImageNotFound, KfmErrorKind.ObjectNotFound,
                $"{file.Path}: has no value at '{_helm.Repository}'. Set gitops.helm_values.repository to the path of the API image repository.", file.Path);
        var digestNode = root is null ? null : Resolve(root, _helm.Digest);
        var tagNode = root is null ? null : Resolve(root, _helm.Tag);
        string repository = repoNode.Value ?? "";
        string? digest = NullIfEmpty(digestNode?.Value);
        string? tag = NullIfEmpty(tagNode?.Value);
        string image = repository + (digest is not null ? "@" + digest : tag is not null ? ":" + tag : "");
        if (digestNode is null)
            // Writing a digest into the tag field would render repo:sha256:… (an invalid reference),
            // and adding a key the chart may not read would change nothing: fail closed instead.
            throw new KfmException(GitOpsErrorIds.NoDigestField, KfmErrorKind.Ambiguous,
                $"{file.Path}: has no '{_helm.Digest}' value to pin a digest on (the tag is at '{_helm.Tag}'). Add the digest key the chart reads and set gitops.helm_values.digest, or roll back with -Revert <sha>.", file.Path);
        return new ImagePin { Image = image, Repository = repository, Tag = tag, Digest = digest, EditKind = PinEditKind.ReplaceDigestValue, ValueSpan = YamlText.SpanOf(digestNode) };
    }

    /// <summary>The Helm pin for reading only: a values file with a tag and no digest key still has a current image.</summary>
    public (string Image, string? Digest) ReadHelmLoosely(YamlText file)
    {
        var root = file.Stream.Documents.FirstOrDefault()?.RootNode as YamlMappingNode;
        var repo = root is null ? null : Resolve(root, _helm.Repository);
        if (repo is null)
            return (LocateHelm(file).Image, null);
        string? digest = NullIfEmpty(Resolve(root!, _helm.Digest)?.Value);
        string? tag = NullIfEmpty(Resolve(root!, _helm.Tag)?.Value);
        // Renovate writes "tag: 1.2.3@sha256:…": the digest in the tag decides what is pulled.
        digest ??= ImageRefs.DigestOf(tag);
        if (digest is not null && tag is not null && ImageRefs.DigestOf(tag) == digest)
            return (repo.Value + ":" + tag, digest);
        return (repo.Value + (digest is not null ? "@" + digest : tag is not null ? ":" + tag : ""), digest);
    }

    private ImagePin LocateRaw(YamlText file)
    {
        var matches = new List<YamlNode>();
        foreach (var document in file.Stream.Documents)
            Collect(document.RootNode, matches, new HashSet<YamlNode>(ReferenceEqualityComparer.Instance));
        var node = (YamlScalarNode)Single(file, matches, "image: fields whose repository ends with");
        string image = node.Value ?? "";
        string? digest = ImageRefs.DigestOf(image);
        string repository = ImageRefs.Repository(image);
        string? tag = TagOf(image);
        return new ImagePin { Image = image, Repository = repository, Tag = tag, Digest = digest, EditKind = PinEditKind.ReplaceImage, ValueSpan = YamlText.SpanOf(node) };
    }

    private void Collect(YamlNode node, List<YamlNode> matches, HashSet<YamlNode> seen)
    {
        // Aliases resolve to the anchored node itself; visiting it once keeps an aliased image from counting twice.
        if (!seen.Add(node))
            return;
        switch (node)
        {
            case YamlMappingNode map:
                foreach (var (key, value) in map.Children)
                {
                    if (key is YamlScalarNode { Value: "image" } && value is YamlScalarNode scalar && RepositoryMatches(scalar.Value))
                        matches.Add(scalar);
                    else
                        Collect(value, matches, seen);
                }
                break;
            case YamlSequenceNode sequence:
                foreach (var child in sequence.Children)
                    Collect(child, matches, seen);
                break;
        }
    }

    private bool RepositoryMatches(string? image)
    {
        if (string.IsNullOrEmpty(image) || _imageName is null)
            return false;
        string repository = ImageRefs.Repository(image);
        return repository == _imageName || repository.EndsWith("/" + _imageName, StringComparison.Ordinal);
    }

    private YamlNode Single(YamlText file, List<YamlNode> matches, string what)
    {
        if (matches.Count == 1)
            return matches[0];
        if (matches.Count == 0)
            throw new KfmException(GitOpsErrorIds.ImageNotFound, KfmErrorKind.ObjectNotFound,
                $"{file.Path}: no {what} '{_imageName}'. Check gitops.image_name and gitops.file.", file.Path);
        string lines = string.Join(", ", matches.Select(m => m.Start.Line));
        throw new KfmException(GitOpsErrorIds.ImageAmbiguous, KfmErrorKind.Ambiguous,
            $"{file.Path}: {matches.Count} {what} '{_imageName}' (lines {lines}); refusing to guess which one is the API. Make gitops.image_name specific to one image.", file.Path);
    }

    private static YamlNode? Child(YamlMappingNode map, string key) =>
        map.Children.FirstOrDefault(p => p.Key is YamlScalarNode { } k && k.Value == key).Value;

    private static YamlScalarNode? Scalar(YamlMappingNode map, string key) => Child(map, key) as YamlScalarNode;

    private static YamlScalarNode? Resolve(YamlMappingNode root, string dotted)
    {
        YamlNode? node = root;
        foreach (var part in dotted.Split('.'))
            node = node is YamlMappingNode map ? Child(map, part) : null;
        return node as YamlScalarNode;
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) || value == "~" || value == "null" ? null : value;

    private static string? TagOf(string image)
    {
        int at = image.IndexOf('@');
        string withoutDigest = at >= 0 ? image[..at] : image;
        int slash = withoutDigest.LastIndexOf('/');
        int colon = withoutDigest.LastIndexOf(':');
        return colon > slash ? withoutDigest[(colon + 1)..] : null;
    }
}
