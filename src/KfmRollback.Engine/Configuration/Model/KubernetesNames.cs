using System.Text.RegularExpressions;

namespace KfmRollback.Engine.Configuration;

/// <summary>Kubernetes object-name rules, checked at load time so a typo fails before a rollback starts.</summary>
internal static partial class KubernetesNames
{
    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", RegexOptions.CultureInvariant)]
    private static partial Regex Label();

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", RegexOptions.CultureInvariant)]
    private static partial Regex Subdomain();

    /// <summary>RFC 1123 label: namespaces, containers.</summary>
    public static bool IsLabel(string name) => name.Length <= 63 && Label().IsMatch(name);

    /// <summary>RFC 1123 subdomain: Deployments, ConfigMaps, Secrets, Applications, Leases.</summary>
    public static bool IsSubdomain(string name) => name.Length <= 253 && Subdomain().IsMatch(name);

    public const string LabelRule = "a lowercase RFC 1123 label (a-z, 0-9, '-', at most 63 characters)";
    public const string SubdomainRule = "a lowercase RFC 1123 name (a-z, 0-9, '-', '.')";
}
