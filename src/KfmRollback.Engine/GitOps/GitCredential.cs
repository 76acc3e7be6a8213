using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using LibGit2Sharp;
using LibGit2Sharp.Handlers;

namespace KfmRollback.Engine.GitOps;

/// <summary>
/// User and password (or token) for HTTP(S) remotes. ToString never shows the password, so a
/// credential that ends up in a log or message leaks nothing.
/// </summary>
public sealed class GitCredential
{
    public GitCredential(string userName, string password)
    {
        UserName = userName;
        Password = password;
    }

    public string UserName { get; }
    internal string Password { get; }

    public override string ToString() => $"{UserName}:***";

    /// <summary>
    /// The credential a cmdlet passed, else the token named by gitops.token_env / token_file
    /// (as user "x-access-token", which GitHub and Azure DevOps both accept), else none.
    /// </summary>
    public static GitCredential? Resolve(GitOpsConfig config, GitCredential? passed)
    {
        if (passed is not null)
            return passed;
        if (config.TokenEnv is { } env)
        {
            string? token = System.Environment.GetEnvironmentVariable(env);
            if (string.IsNullOrWhiteSpace(token))
                throw new KfmException(GitOpsErrorIds.TokenUnavailable, KfmErrorKind.InvalidArgument,
                    $"gitops.token_env names ${env}, which is not set. Set it, or pass -Credential.", env);
            return new GitCredential("x-access-token", token.Trim());
        }
        if (config.TokenFile is { } file)
        {
            if (!File.Exists(file))
                throw new KfmException(GitOpsErrorIds.TokenUnavailable, KfmErrorKind.InvalidArgument,
                    $"gitops.token_file {file} does not exist. Create it, or pass -Credential.", file);
            return new GitCredential("x-access-token", File.ReadAllText(file).Trim());
        }
        return null;
    }

    internal CredentialsHandler Handler() => (_, _, _) => new UsernamePasswordCredentials { Username = UserName, Password = Password };
}
