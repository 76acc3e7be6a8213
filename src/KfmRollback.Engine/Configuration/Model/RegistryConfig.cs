using System.Text.RegularExpressions;
using KfmRollback.Engine.Configuration.Binding;

namespace KfmRollback.Engine.Configuration;

/// <summary>
/// The OCI registry the API's images are pulled from. When set, every rollback's preflight asks it
/// whether the target digest still exists (a HEAD of the manifest), so a rollback to a build deleted
/// from the registry is refused before anything changes instead of ending in ImagePullBackOff.
/// </summary>
public sealed partial class RegistryConfig : IConfigSection
{
    /// <summary>Base URL of the registry's distribution API (requests go to /v2/… under it).</summary>
    [RequiredKey]
    public Uri Url { get; init; } = null!;

    /// <summary>The repository (the spec's &lt;name&gt;); absent means the image reference's path without its host.</summary>
    public string? Repository { get; init; }

    /// <summary>
    /// The repository that holds <paramref name="image"/>'s build: <see cref="Repository"/> when set, else the
    /// image reference's path without its host; null when neither says (the caller refuses: which repository is ambiguous).
    /// </summary>
    public string? RepositoryOf(string? image) => Repository ?? (image is null ? null : ImageRefs.RepositoryPath(image));

    /// <summary>User name for the registry (with token_env or token_file).</summary>
    public string? Username { get; init; }

    /// <summary>Environment variable holding the password or token for <see cref="Username"/>.</summary>
    [EnvVarName]
    public string? TokenEnv { get; init; }

    /// <summary>File holding the password or token for <see cref="Username"/>.</summary>
    [LocalPath]
    public string? TokenFile { get; init; }

    /// <summary>How long one registry request may take.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(15);

    void IConfigSection.Validate(ValidationScope scope)
    {
        scope.AtMostOne("token_env", "token_file");
        if (Repository is not null && !IsRepositoryName(Repository))
            throw scope.Invalid("repository", $"must be a registry repository name: lowercase path components such as kfm/kfm-api (got '{Repository}').");
        if (Username is null && (TokenEnv is not null || TokenFile is not null))
            throw scope.Missing("username", "token_env/token_file hold the password or token of a user; name the user.");
        if (Username is not null && TokenEnv is null && TokenFile is null)
            throw scope.Missing("token_env", "registry.username needs its password or token by reference (token_env or token_file).");
        scope.CredentialsTravelSafely("url", Url, Username is not null, "the registry credentials (username with token_env/token_file)");
        if (Timeout > TimeSpan.FromMinutes(5))
            throw scope.Invalid("timeout", "must be at most 5m: a preflight must not hold up an incident.");
    }

    /// <summary>True for a repository name the distribution spec allows (lowercase path components, at most 255 characters): the &lt;name&gt; in /v2/&lt;name&gt;/….</summary>
    public static bool IsRepositoryName(string name) => name.Length <= 255 && NamePattern().IsMatch(name);

    [GeneratedRegex(@"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();
}
