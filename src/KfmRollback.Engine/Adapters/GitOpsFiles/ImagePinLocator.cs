using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using YamlDotNet.RepresentationModel;

namespace KfmRollback.Engine.Adapters.GitOpsFiles;

/// <summary>Which of several pins configuration selects: the images list path, the container and the document.</summary>
public sealed record PinSelection
{
    /// <summary>gitops.images_path: the Kustomize-style images list (default <c>images</c>).</summary>
    public string ImagesPath { get; init; } = "images";
    /// <summary>gitops.container: the container(s) whose image is the API (raw manifests); several are pinned together, the first read as the API's.</summary>
    public IReadOnlyList<string> Container { get; init; } = Array.Empty<string>();
    /// <summary>gitops.resource: <c>Kind/name</c> of the document to edit.</summary>
    public string? Resource { get; init; }
}

/// <summary>
/// Finds the API image pin in a Kustomize images list (kustomization.yaml, Argo CD
/// <c>spec.source.kustomize.images</c>, Flux <c>spec.images</c> or a HelmRelease post-renderer), Helm
/// values (a values file, HelmRelease <c>spec.values</c>, Argo CD <c>valuesObject</c> or
/// <c>parameters</c>) or raw manifests. Fails closed: no match, or more than one, is an error naming
/// the choices and the setting that picks one.
/// </summary>
public sealed class ImagePinLocator
{
    private readonly GitOpsKind _kind;
    private readonly string? _imageName;
    private readonly HelmValuePaths _helm;
    private readonly PinSelection _select;

    public ImagePinLocator(GitOpsKind kind, string? imageName, HelmValuePaths? helm = null, PinSelection? select = null)
    {
        _kind = kind;
        _imageName = imageName;
        _helm = helm ?? new HelmValuePaths();
        _select = select ?? new PinSelection();
    }

    public static ImagePinLocator For(GitOpsConfig config) => new(config.Kind, config.ImageName, config.HelmValues,
        new PinSelection { ImagesPath = config.ImagesPath, Container = config.Container, Resource = config.Resource });

    public ImagePin Locate(YamlText file) => _kind switch
    {
        GitOpsKind.Kustomize => LocateKustomize(file),
        GitOpsKind.Helm when Embedded(file) is { } embedded => embedded.Values.ToOuter(embedded.Locator.LocateHelm(embedded.Values.Inner)),
        GitOpsKind.Helm => LocateHelm(file),
        _ => LocateRaw(file),
    };

    /// <summary>gitops.helm_values.block: the values string of the one document that has it, and a locator for its content.</summary>
    private (EmbeddedValues Values, ImagePinLocator Locator)? Embedded(YamlText file)
    {
        if (_helm.Block is not { } block)
            return null;
        var blocks = Documents(file).SelectMany(d => YamlPath.Resolve(d.Root, block).Select(n => new Match(n.Node, d.Name, n.Path))).ToList();
        if (blocks.Count == 0)
            throw new KfmException(GitOpsErrorIds.ImageNotFound, KfmErrorKind.ObjectNotFound,
                $"{file.Path}: has no Helm values string at '{block}' (gitops.helm_values.block){(_select.Resource is null ? "" : $" in {_select.Resource}")}. Point gitops.helm_values.block at the values string (spec.source.helm.values, or spec.sources[0].helm.values for a multi-source Application).", file.Path);
        if (blocks.Count > 1)
            throw Ambiguous(file, blocks, $"Helm values strings at '{block}'", "gitops.resource or an index in gitops.helm_values.block");
        var inner = new ImagePinLocator(_kind, _imageName, new HelmValuePaths { Repository = _helm.Repository, Tag = _helm.Tag, Digest = _helm.Digest });
        return (EmbeddedValues.Open(file, blocks[0].Node, blocks[0].ToString(), "gitops.helm_values.block"), inner);
    }

    /// <summary>Where a document holds its Helm values as a string (Argo CD), for the hint when a values path finds nothing.</summary>
    private string? ValuesStringHint(YamlText file)
    {
        foreach (var (root, _) in Documents(file))
            foreach (string path in new[] { "spec.source.helm.values", "spec.sources[].helm.values" })
                if (YamlPath.Resolve(root, path).FirstOrDefault(n => n.Node is YamlScalarNode) is { Node: not null } found)
                    return $" The values are a string at {found.Path} (line {found.Node.Start.Line}), which the module reads only when told: set gitops.helm_values.block: {found.Path}.";
        return null;
    }

    /// <summary>A match: the node, the document it is in and its path there.</summary>
    private sealed record Match(YamlNode Node, string Document, string Path, string? Container = null)
    {
        public override string ToString() => $"{(Document.Length > 0 ? Document + " " : "")}{Path} (line {Node.Start.Line})";
    }

    /// <summary>The documents to search: all mapping roots, or the one gitops.resource names.</summary>
    private List<(YamlMappingNode Root, string Name)> Documents(YamlText file)
    {
        var documents = file.Stream.Documents.Select(d => d.RootNode).OfType<YamlMappingNode>()
            .Select(root => (Root: root, Name: DocumentName(root))).ToList();
        if (_select.Resource is null)
            return documents;
        var chosen = documents.Where(d => d.Name == _select.Resource).ToList();
        if (chosen.Count == 0)
            throw new KfmException(GitOpsErrorIds.ImageNotFound, KfmErrorKind.ObjectNotFound,
                $"{file.Path}: no document {_select.Resource} (gitops.resource); the file has {Names(documents.Select(d => d.Name))}.", file.Path);
        return chosen;
    }

    private static string DocumentName(YamlMappingNode root)
    {
        string? kind = (YamlPath.Child(root, "kind") as YamlScalarNode)?.Value;
        string? name = YamlPath.Resolve(root, "metadata.name").Select(n => (n.Node as YamlScalarNode)?.Value).FirstOrDefault();
        return kind is null || name is null ? "" : kind + "/" + name;
    }

    private static string Names(IEnumerable<string> names)
    {
        var list = names.Where(n => n.Length > 0).Distinct().ToList();
        return list.Count == 0 ? "no named documents" : string.Join(", ", list);
    }

    private ImagePin LocateKustomize(YamlText file)
    {
        var matches = new List<Match>();
        foreach (var (root, name) in Documents(file))
            foreach (var (list, path) in YamlPath.Resolve(root, _select.ImagesPath))
                if (list is YamlSequenceNode seq)
                    for (int i = 0; i < seq.Children.Count; i++)
                    {
                        var entry = seq.Children[i];
                        bool hit = entry switch
                        {
                            YamlMappingNode map => Scalar(map, "name")?.Value == _imageName,
                            YamlScalarNode s => ArgoImageMatches(s.Value),
                            _ => false,
                        };
                        if (hit)
                            matches.Add(new Match(entry, name, $"{path}[{i}]"));
                    }
        var match = Single(file, matches, $"{_select.ImagesPath} entries named", "gitops.image_name");
        if (match.Node is YamlScalarNode argo)
            return ArgoImage(argo, match);
        var entryMap = (YamlMappingNode)match.Node;
        string repository = Scalar(entryMap, "newName")?.Value ?? _imageName!;
        var tagNode = Scalar(entryMap, "newTag");
        var digestNode = Scalar(entryMap, "digest");
        string? digest = NullIfEmpty(digestNode?.Value);
        string? tag = NullIfEmpty(tagNode?.Value);
        string image = repository + (tag is null ? "" : ":" + tag) + (digest is null ? "" : "@" + digest);
        if (digestNode is not null)
            return new ImagePin { Image = image, Repository = repository, Tag = tag, Digest = digest, EditKind = PinEditKind.ReplaceDigestValue, ValueSpan = YamlText.SpanOf(digestNode), Location = match.ToString() };
        if (tagNode is not null)
        {
            var key = entryMap.Children.Keys.OfType<YamlScalarNode>().First(k => k.Value == "newTag");
            return new ImagePin { Image = image, Repository = repository, Tag = tag, EditKind = PinEditKind.RenameTagKeyToDigest, ValueSpan = YamlText.SpanOf(tagNode), KeySpan = YamlText.SpanOf(key), Location = match.ToString() };
        }
        throw new KfmException(GitOpsErrorIds.NoDigestField, KfmErrorKind.Ambiguous,
            $"{file.Path}:{match.Node.Start.Line}: the images entry '{_imageName}' ({match}) has neither newTag nor digest, so there is no line to pin a digest on. Add 'digest:' to the entry, or roll back with -Revert <sha>.", file.Path);
    }

    /// <summary>Argo CD <c>kustomize.images</c> strings: <c>[alias=]repository[:tag][@digest]</c>.</summary>
    private bool ArgoImageMatches(string? value)
    {
        if (string.IsNullOrEmpty(value) || _imageName is null)
            return false;
        int eq = value.IndexOf('=');
        return (eq > 0 && value[..eq] == _imageName) || RepositoryMatches(eq > 0 ? value[(eq + 1)..] : value);
    }

    private static ImagePin ArgoImage(YamlScalarNode node, Match match)
    {
        string value = node.Value ?? "";
        int eq = value.IndexOf('=');
        string prefix = eq > 0 ? value[..(eq + 1)] : "";
        string image = value[prefix.Length..];
        return new ImagePin
        {
            Image = image, Repository = ImageRefs.Repository(image), Tag = TagOf(image), Digest = ImageRefs.DigestOf(image),
            EditKind = PinEditKind.ReplaceImage, ValuePrefix = prefix, ValueSpan = YamlText.SpanOf(node), Location = match.ToString(),
        };
    }

    /// <summary>The Helm value nodes: repository (required), tag and digest, from values or an Argo CD parameters list.</summary>
    private (Match? Repository, Match? Tag, Match? Digest) HelmNodes(YamlText file)
    {
        var found = new List<(Match? Repository, Match? Tag, Match? Digest)>();
        foreach (var (root, name) in Documents(file))
        {
            if (_helm.Parameters is { } parameters)
            {
                foreach (var (list, path) in YamlPath.Resolve(root, parameters))
                    if (list is YamlSequenceNode seq)
                        found.Add((Parameter(file, seq, name, path, _helm.Repository, "repository"), Parameter(file, seq, name, path, _helm.Tag, "tag"), Parameter(file, seq, name, path, _helm.Digest, "digest")));
            }
            else
                found.Add((Value(file, root, name, _helm.Repository, "repository"), Value(file, root, name, _helm.Tag, "tag"), Value(file, root, name, _helm.Digest, "digest")));
        }
        var withRepository = found.Where(f => f.Repository is not null).ToList();
        if (withRepository.Count > 1)
            throw Ambiguous(file, withRepository.Select(f => f.Repository!).ToList(), $"Helm image repositories at '{_helm.Repository}'", "gitops.resource");
        return withRepository.Count == 1 ? withRepository[0] : (null, null, null);
    }

    private Match? Value(YamlText file, YamlMappingNode root, string document, string path, string key)
    {
        var nodes = YamlPath.Resolve(root, path).Where(n => n.Node is YamlScalarNode).Select(n => new Match(n.Node, document, n.Path)).ToList();
        if (nodes.Count > 1)
            throw Ambiguous(file, nodes, $"values at '{path}'", $"gitops.helm_values.{key} (use an index such as [0])");
        return nodes.SingleOrDefault();
    }

    private Match? Parameter(YamlText file, YamlSequenceNode list, string document, string listPath, string name, string key)
    {
        var nodes = list.Children.Select((entry, i) => (entry, i))
            .Where(e => e.entry is YamlMappingNode map && Scalar(map, "name")?.Value == name && Scalar(map, "value") is not null)
            .Select(e => new Match(Scalar((YamlMappingNode)e.entry, "value")!, document, $"{listPath}[{e.i}].value"))
            .ToList();
        if (nodes.Count > 1)
            throw Ambiguous(file, nodes, $"parameters named '{name}'", $"gitops.helm_values.{key}");
        return nodes.SingleOrDefault();
    }

    private ImagePin LocateHelm(YamlText file)
    {
        var (repoMatch, tagMatch, digestMatch) = HelmNodes(file);
        if (repoMatch is null)
            throw new KfmException(GitOpsErrorIds.ImageNotFound, KfmErrorKind.ObjectNotFound,
                $"{file.Path}: has no value at '{_helm.Repository}'{(_helm.Parameters is null ? "" : $" in the parameters at '{_helm.Parameters}'")}.{ValuesStringHint(file) ?? " Set gitops.helm_values.repository to the path of the API image repository."}", file.Path);
        string repository = ((YamlScalarNode)repoMatch.Node).Value ?? "";
        var digestNode = digestMatch?.Node as YamlScalarNode;
        var tagNode = tagMatch?.Node as YamlScalarNode;
        string? digest = NullIfEmpty(digestNode?.Value);
        string? tag = NullIfEmpty(tagNode?.Value);
        if (digestNode is not null)
        {
            string image = repository + (digest is not null ? "@" + digest : tag is not null ? ":" + tag : "");
            return new ImagePin { Image = image, Repository = repository, Tag = tag, Digest = digest, EditKind = PinEditKind.ReplaceDigestValue, ValueSpan = YamlText.SpanOf(digestNode), Location = digestMatch!.ToString() };
        }
        if (tagNode is not null && ImageRefs.DigestOf(tag) is { } inTag)
        {
            // Renovate's "tag: 1.2.3@sha256:…": the digest decides what is pulled, and the tag stays beside it.
            string prefix = tag![..(tag!.LastIndexOf('@') + 1)];
            return new ImagePin { Image = repository + ":" + tag, Repository = repository, Tag = prefix.TrimEnd('@'), Digest = inTag, EditKind = PinEditKind.ReplaceDigestValue, ValuePrefix = prefix, ValueSpan = YamlText.SpanOf(tagNode), Location = tagMatch!.ToString() };
        }
        // Writing a digest into a plain tag would render repo:sha256:… (an invalid reference),
        // and adding a key the chart may not read would change nothing: fail closed instead.
        throw new KfmException(GitOpsErrorIds.NoDigestField, KfmErrorKind.Ambiguous,
            $"{file.Path}: has no '{_helm.Digest}' value to pin a digest on (the tag is at '{_helm.Tag}'). Add the digest key the chart reads and set gitops.helm_values.digest, write the tag as tag@sha256:…, or roll back with -Revert <sha>.", file.Path);
    }

    /// <summary>The Helm pin for reading only: a values file with a tag and no digest key still has a current image.</summary>
    public (string Image, string? Digest) ReadHelmLoosely(YamlText file)
    {
        if (Embedded(file) is { } embedded)
            return embedded.Locator.ReadHelmLoosely(embedded.Values.Inner);
        var (repoMatch, tagMatch, digestMatch) = HelmNodes(file);
        if (repoMatch is null)
            return (LocateHelm(file).Image, null);
        string repository = ((YamlScalarNode)repoMatch.Node).Value ?? "";
        string? digest = NullIfEmpty((digestMatch?.Node as YamlScalarNode)?.Value);
        string? tag = NullIfEmpty((tagMatch?.Node as YamlScalarNode)?.Value);
        // Renovate writes "tag: 1.2.3@sha256:…": the digest in the tag decides what is pulled.
        digest ??= ImageRefs.DigestOf(tag);
        if (digest is not null && tag is not null && ImageRefs.DigestOf(tag) == digest)
            return (repository + ":" + tag, digest);
        return (repository + (digest is not null ? "@" + digest : tag is not null ? ":" + tag : ""), digest);
    }

    private ImagePin LocateRaw(YamlText file)
    {
        var matches = new List<Match>();
        foreach (var (root, name) in Documents(file))
            Collect(root, name, "", null, matches, new HashSet<YamlNode>(ReferenceEqualityComparer.Instance));
        var all = matches;
        if (_select.Container.Count > 0)
        {
            var pins = new List<ImagePin>();
            foreach (string container in _select.Container)
            {
                var named = all.Where(m => m.Container == container).ToList();
                if (named.Count == 0 && all.Count > 0)
                    throw new KfmException(GitOpsErrorIds.ImageNotFound, KfmErrorKind.ObjectNotFound,
                        $"{file.Path}: no container '{container}' (gitops.container) runs '{_imageName}'; containers that do: {Names(all.Select(m => m.Container ?? ""))}.", file.Path);
                pins.Add(RawPin(Single(file, named, "image: fields whose repository ends with", "gitops.image_name")));
            }
            // Containers pinned together run one build: if they do not, which one is the API's current build is a guess.
            if (pins.Select(p => p.Image).Distinct().Count() > 1)
                throw new KfmException(GitOpsErrorIds.ImageAmbiguous, KfmErrorKind.Ambiguous,
                    $"{file.Path}: the containers gitops.container names run different images ({string.Join("; ", pins.Select(p => $"{p.Location}: {p.Image}"))}). Refusing to guess which build is current; pin them to one image, name only the API's container, or roll back with -Revert <sha>.", file.Path);
            return pins[0] with { Others = pins.Skip(1).ToList() };
        }
        return RawPin(Single(file, matches, "image: fields whose repository ends with", "gitops.image_name"));
    }

    private static ImagePin RawPin(Match match)
    {
        var node = (YamlScalarNode)match.Node;
        string image = node.Value ?? "";
        return new ImagePin { Image = image, Repository = ImageRefs.Repository(image), Tag = TagOf(image), Digest = ImageRefs.DigestOf(image), EditKind = PinEditKind.ReplaceImage, ValueSpan = YamlText.SpanOf(node), Location = match.Container is null ? match.ToString() : $"container '{match.Container}' at {match}" };
    }

    private void Collect(YamlNode node, string document, string path, string? container, List<Match> matches, HashSet<YamlNode> seen)
    {
        // Aliases resolve to the anchored node itself; visiting it once keeps an aliased image from counting twice.
        if (!seen.Add(node))
            return;
        switch (node)
        {
            case YamlMappingNode map:
                string? name = Scalar(map, "name")?.Value;
                foreach (var (key, value) in map.Children)
                {
                    string at = (path.Length == 0 ? "" : path + ".") + (key as YamlScalarNode)?.Value;
                    if (key is YamlScalarNode { Value: "image" } && value is YamlScalarNode scalar && RepositoryMatches(scalar.Value))
                        matches.Add(new Match(scalar, document, at, name));
                    else
                        Collect(value, document, at, name, matches, seen);
                }
                break;
            case YamlSequenceNode sequence:
                for (int i = 0; i < sequence.Children.Count; i++)
                    Collect(sequence.Children[i], document, $"{path}[{i}]", container, matches, seen);
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

    private Match Single(YamlText file, List<Match> matches, string what, string nameKey)
    {
        if (matches.Count == 1)
            return matches[0];
        if (matches.Count == 0)
            throw new KfmException(GitOpsErrorIds.ImageNotFound, KfmErrorKind.ObjectNotFound,
                $"{file.Path}: no {what} '{_imageName}'. Check {nameKey}, gitops.file{(_kind == GitOpsKind.Kustomize ? " and gitops.images_path" : "")}.", file.Path);
        // The key that tells the matches apart: another document, another images list, another container, else the name.
        string key =
            matches.Select(m => m.Document).Distinct().Count() > 1 && matches.All(m => m.Document.Length > 0) ? "gitops.resource"
            : _kind == GitOpsKind.Kustomize && matches.Select(m => m.Path[..m.Path.LastIndexOf('[')]).Distinct().Count() > 1 ? "gitops.images_path (use an index such as [0])"
            : _kind == GitOpsKind.Raw && matches.All(m => m.Container is not null) && matches.Select(m => m.Container).Distinct().Count() == matches.Count ? "gitops.container"
            : nameKey + " (make it specific to one image)";
        throw Ambiguous(file, matches, $"{what} '{_imageName}'", key);
    }

    private static KfmException Ambiguous(YamlText file, IReadOnlyList<Match> matches, string what, string key)
    {
        string choices = string.Join("; ", matches.Select(m => m.Container is null ? m.ToString() : $"container '{m.Container}' at {m}"));
        string lines = string.Join(", ", matches.Select(m => m.Node.Start.Line));
        return new KfmException(GitOpsErrorIds.ImageAmbiguous, KfmErrorKind.Ambiguous,
            $"{file.Path}: {matches.Count} {what} (lines {lines}): {choices}. Refusing to guess which one is the API; set {key} to pick one.", file.Path);
    }

    private static YamlScalarNode? Scalar(YamlMappingNode map, string key) => YamlPath.Child(map, key) as YamlScalarNode;

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
