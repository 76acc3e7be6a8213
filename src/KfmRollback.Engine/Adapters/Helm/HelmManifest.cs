using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using KfmRollback.Engine.Core;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace KfmRollback.Engine.Adapters.Helm;

/// <summary>One object of a rendered release manifest, keyed as helm's kube client identifies it.</summary>
public sealed record ManifestObject(string ApiVersion, string Kind, string? Namespace, string Name, JsonObject Body)
{
    /// <summary><c>Kind/namespace/name</c>, the namespace defaulted to the release's (helm sets it on namespaced objects).</summary>
    public string Key(string releaseNamespace) => $"{Kind}/{Namespace ?? releaseNamespace}/{Name}";

    public override string ToString() => $"{Kind} {Name}";
}

/// <summary>
/// A release's <c>manifest</c>: the chart's rendered templates as multi-document YAML ("---" between
/// documents, each led by a "# Source:" comment). Parsed with YamlDotNet into the JSON the apiserver
/// would receive, scalars typed as YAML 1.2's core schema types them (sigs.k8s.io/yaml's behaviour
/// for the values Kubernetes objects use).
/// </summary>
public static partial class HelmManifest
{
    public static IReadOnlyList<ManifestObject> Parse(string manifest, string release)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(manifest));
        }
        catch (YamlException ex)
        {
            throw new KfmException("HelmManifestMalformed", KfmErrorKind.InvalidData,
                $"The manifest of Helm release {release} is not valid YAML (line {ex.Start.Line}). Check it with 'helm get manifest {release}'.", release, ex);
        }
        var objects = new List<ManifestObject>();
        foreach (YamlDocument document in stream.Documents)
        {
            if (ToJson(document.RootNode, release) is not JsonObject body)
            {
                continue; // an empty document (a template that rendered nothing)
            }
            string? kind = body["kind"]?.GetValue<string>();
            string? name = body["metadata"]?["name"]?.GetValue<string>();
            if (kind is null || name is null)
            {
                throw new KfmException("HelmManifestMalformed", KfmErrorKind.InvalidData,
                    $"An object in the manifest of Helm release {release} has no kind or metadata.name. Check it with 'helm get manifest {release}'.", release);
            }
            objects.Add(new ManifestObject(body["apiVersion"]?.GetValue<string>() ?? "", kind, body["metadata"]?["namespace"]?.GetValue<string>(), name, body));
        }
        return objects;
    }

    /// <summary>The API Deployment of a manifest, or null when the release does not render it.</summary>
    public static ManifestObject? Deployment(IReadOnlyList<ManifestObject> objects, string name) =>
        objects.FirstOrDefault(o => o.Kind == "Deployment" && o.Name == name);

    [GeneratedRegex(@"^[-+]?[0-9]+$", RegexOptions.CultureInvariant)]
    private static partial Regex Integer();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$", RegexOptions.CultureInvariant)]
    private static partial Regex Float();

    /// <summary>Deeper than any Kubernetes object nests (CRD schemas included): only an alias loop or a bomb gets here.</summary>
    internal const int MaxDepth = 128;

    /// <summary>How many times its own size a document may grow by expanding aliases (helm's YAML library bounds this too).</summary>
    internal const int MaxAliasExpansion = 10;

    /// <summary>
    /// The document as JSON, with every alias expanded, bounded: YamlDotNet resolves an alias to the
    /// anchored node itself, so a self-referencing alias is a cycle (unbounded recursion would end the
    /// process with a stack overflow) and nested aliases can expand exponentially ("billion laughs").
    /// </summary>
    private static JsonNode? ToJson(YamlNode root, string release)
    {
        var distinct = new HashSet<YamlNode>(ReferenceEqualityComparer.Instance);
        var pending = new Stack<YamlNode>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            YamlNode node = pending.Pop();
            if (!distinct.Add(node)) continue;
            foreach (YamlNode child in node is YamlMappingNode m ? m.Children.SelectMany(c => new[] { c.Key, c.Value }) : node is YamlSequenceNode q ? q.Children : Enumerable.Empty<YamlNode>())
                pending.Push(child);
        }
        int budget = Math.Max(10_000, MaxAliasExpansion * distinct.Count);
        var path = new HashSet<YamlNode>(ReferenceEqualityComparer.Instance);

        JsonNode? Convert(YamlNode node, int depth)
        {
            if (depth > MaxDepth)
                throw Unsafe(release, $"it nests deeper than {MaxDepth} levels");
            if (--budget < 0)
                throw Unsafe(release, $"its aliases expand it to more than {MaxAliasExpansion} times its own size");
            if (node is YamlScalarNode scalar)
                return Scalar(scalar);
            if (node is not (YamlMappingNode or YamlSequenceNode))
                return null;
            if (!path.Add(node))
                throw Unsafe(release, $"an alias (*{node.Anchor}) refers to a node that contains it");
            try
            {
                return node is YamlMappingNode map
                    ? new JsonObject(map.Children.Select(c => KeyValuePair.Create(((YamlScalarNode)c.Key).Value ?? "", Convert(c.Value, depth + 1))))
                    : new JsonArray(((YamlSequenceNode)node).Children.Select(c => Convert(c, depth + 1)).ToArray());
            }
            finally
            {
                path.Remove(node);
            }
        }

        return Convert(root, 0);
    }

    private static KfmException Unsafe(string release, string why) =>
        new("HelmManifestMalformed", KfmErrorKind.InvalidData,
            $"The manifest of Helm release {release} was not read: {why}. helm never renders such a manifest; check it with 'helm get manifest {release}' and 'helm history'.", release);

    private static JsonNode? Scalar(YamlScalarNode scalar)
    {
        string value = scalar.Value ?? string.Empty;
        if (scalar.Style is not ScalarStyle.Plain)
        {
            return JsonValue.Create(value);
        }
        switch (value)
        {
            case "" or "~" or "null" or "Null" or "NULL":
                return null;
            case "true" or "True" or "TRUE":
                return JsonValue.Create(true);
            case "false" or "False" or "FALSE":
                return JsonValue.Create(false);
        }
        if (Integer().IsMatch(value) && long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long integer))
        {
            return JsonValue.Create(integer);
        }
        if (Float().IsMatch(value) && double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double number))
        {
            return JsonValue.Create(number);
        }
        return JsonValue.Create(value);
    }
}
