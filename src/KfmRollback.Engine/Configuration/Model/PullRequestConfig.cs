using System.Text.RegularExpressions;
using KfmRollback.Engine.Configuration.Binding;

namespace KfmRollback.Engine.Configuration;

/// <summary>Where rollback pull requests are opened.</summary>
public enum PrProvider
{
    /// <summary>GitHub (or GitHub Enterprise via base_url).</summary>
    Github,
    /// <summary>Azure DevOps Repos.</summary>
    AzureDevops,
    /// <summary>No PR API: the rollback branch is pushed and a human opens the PR.</summary>
    None,
}

/// <summary>Pull request settings for rollback changes.</summary>
public sealed partial class PullRequestConfig : IConfigSection
{
    /// <summary>PR provider.</summary>
    public PrProvider Provider { get; init; } = PrProvider.None;

    /// <summary>owner/name (GitHub) or organization/project/repository (Azure DevOps).</summary>
    public string? Repository { get; init; }

    /// <summary>Environment variable holding the PR API token.</summary>
    [EnvVarName]
    public string? TokenEnv { get; init; }

    /// <summary>File holding the PR API token.</summary>
    [LocalPath]
    public string? TokenFile { get; init; }

    /// <summary>API base URL; absent means the provider's public service. Tests point it at a loopback server.</summary>
    public Uri? BaseUrl { get; init; }

    [GeneratedRegex(@"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", RegexOptions.CultureInvariant)]
    private static partial Regex OwnerName();

    [GeneratedRegex(@"^[^/\s]+/[^/]+/[^/\s]+$", RegexOptions.CultureInvariant)]
    private static partial Regex OrgProjectRepo();

    void IConfigSection.Validate(ValidationScope scope)
    {
        scope.AtMostOne("token_env", "token_file");
        if (Provider == PrProvider.None)
            return;
        var name = ConfigSchema.YamlName(Provider);
        if (Repository is null)
            throw scope.Missing("repository", $"provider {name} needs the repository to open the PR in.");
        if (Provider == PrProvider.Github && !OwnerName().IsMatch(Repository))
            throw scope.Invalid("repository", $"must be owner/name for provider github (got '{Repository}').");
        if (Provider == PrProvider.AzureDevops && !OrgProjectRepo().IsMatch(Repository))
            throw scope.Invalid("repository", $"must be organization/project/repository for provider azure-devops (got '{Repository}').");
        if (TokenEnv is null && TokenFile is null)
            throw scope.Missing("token_env", $"provider {name} needs a token reference ('token_env' or 'token_file').");
    }
}
