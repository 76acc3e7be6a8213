using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using KfmRollback.Engine.Core;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace KfmRollback.Engine.Helm;

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
            if (ToJson(document.RootNode) is not JsonObject body)
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

    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode map => new JsonObject(map.Children.Select(c => KeyValuePair.Create(((YamlScalarNode)c.Key).Value ?? "", ToJson(c.Value)))),
        YamlSequenceNode seq => new JsonArray(seq.Children.Select(ToJson).ToArray()),
        YamlScalarNode scalar => Scalar(scalar),
        _ => null,
    };

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
