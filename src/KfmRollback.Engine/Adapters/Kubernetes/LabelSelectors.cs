using k8s.Models;

namespace KfmRollback.Engine.Adapters.Kubernetes;

/// <summary>Label selectors as the apiserver's query syntax (set-based expressions included).</summary>
public static class LabelSelectors
{
    public static string ToQuery(V1LabelSelector? selector)
    {
        if (selector is null)
        {
            return string.Empty;
        }
        var parts = new List<string>();
        foreach (var (key, value) in (selector.MatchLabels ?? new Dictionary<string, string>()).OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            parts.Add($"{key}={value}");
        }
        foreach (V1LabelSelectorRequirement requirement in selector.MatchExpressions ?? new List<V1LabelSelectorRequirement>())
        {
            string values = string.Join(",", requirement.Values ?? new List<string>());
            parts.Add(requirement.OperatorProperty switch
            {
                "In" => $"{requirement.Key} in ({values})",
                "NotIn" => $"{requirement.Key} notin ({values})",
                "Exists" => requirement.Key,
                "DoesNotExist" => "!" + requirement.Key,
                var other => throw new Core.KfmException("LabelSelectorUnsupported", Core.KfmErrorKind.InvalidData,
                    $"Label selector operator '{other}' is not one Kubernetes defines.", other),
            });
        }
        return string.Join(",", parts);
    }
}
