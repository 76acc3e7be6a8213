using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace KfmRollback.Engine.Configuration;

/// <summary>
/// Dotted paths with list indices into a YAML node: <c>spec.values.image.digest</c>,
/// <c>api.containers[0].image.digest</c>, and <c>spec.postRenderers[].kustomize.images</c> where
/// <c>[]</c> means every entry (so an ambiguity can name each concrete path it found).
/// </summary>
public static partial class YamlPath
{
    [GeneratedRegex(@"^(?<key>[A-Za-z0-9_-]+)(?<idx>\[\d*\])*$", RegexOptions.CultureInvariant)]
    private static partial Regex Segment();

    /// <summary>True for a path this resolver understands.</summary>
    public static bool IsValid(string path) => !string.IsNullOrEmpty(path) && path.Split('.').All(p => Segment().IsMatch(p));

    /// <summary>Every node at <paramref name="path"/>, each with its concrete path (wildcards replaced by indices).</summary>
    public static IReadOnlyList<(YamlNode Node, string Path)> Resolve(YamlNode root, string path)
    {
        var current = new List<(YamlNode Node, string Path)> { (root, "") };
        foreach (var part in path.Split('.'))
        {
            var match = Segment().Match(part);
            if (!match.Success)
                return Array.Empty<(YamlNode, string)>();
            string key = match.Groups["key"].Value;
            var next = new List<(YamlNode, string)>();
            foreach (var (node, at) in current)
                if (node is YamlMappingNode map && Child(map, key) is { } child)
                    next.Add((child, at.Length == 0 ? key : at + "." + key));
            foreach (Capture index in match.Groups["idx"].Captures)
            {
                string digits = index.Value[1..^1];
                var indexed = new List<(YamlNode, string)>();
                foreach (var (node, at) in next)
                {
                    if (node is not YamlSequenceNode seq)
                        continue;
                    if (digits.Length == 0)
                        indexed.AddRange(seq.Children.Select((c, i) => (c, $"{at}[{i}]")));
                    else if (int.TryParse(digits, out int i) && i < seq.Children.Count)
                        indexed.Add((seq.Children[i], $"{at}[{i}]"));
                }
                next = indexed;
            }
            current = next;
        }
        return current;
    }

    public static YamlNode? Child(YamlMappingNode map, string key) =>
        map.Children.FirstOrDefault(p => p.Key is YamlScalarNode { } k && k.Value == key).Value;
}
