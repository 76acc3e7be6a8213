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

/// <summary>
/// Where a provider's API is and how to authenticate to it: the follow-up tracker (follow_up) and,
/// with merge settings on top, the rollback pull requests (gitops.pr).
/// </summary>
public partial class TrackerConfig : IConfigSection
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

    void IConfigSection.Validate(ValidationScope scope) => Validate(scope);

    private protected virtual void Validate(ValidationScope scope)
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
        scope.CredentialsTravelSafely("base_url", BaseUrl, withCredentials: true, $"the {name} API token");
    }
}

/// <summary>Pull request settings for rollback changes: the tracker plus who may merge and how -Wait polls.</summary>
public sealed class PullRequestConfig : TrackerConfig
{
    /// <summary>Let Invoke-KfmRollback -MergeWith merge the rollback PR through the provider's merge API once it has the required approvals (default false: people merge).</summary>
    public bool AutoMerge { get; init; }

    /// <summary>Approvals the rollback PR needs before the module merges it (the provider's branch protection still applies).</summary>
    public int RequiredApprovals { get; init; } = 1;

    /// <summary>How often -Wait asks the provider (or Git) whether the PR merged.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(10);

    private protected override void Validate(ValidationScope scope)
    {
        if (RequiredApprovals < 0)
            throw scope.Invalid("required_approvals", $"must be 0 or more (got {RequiredApprovals}).");
        if (PollInterval <= TimeSpan.Zero)
            throw scope.Invalid("poll_interval", "must be a positive duration such as 10s.");
        base.Validate(scope);
    }
}
