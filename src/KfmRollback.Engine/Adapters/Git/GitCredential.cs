using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using LibGit2Sharp;
using LibGit2Sharp.Handlers;

namespace KfmRollback.Engine.Adapters.Git;

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

    /// <summary>A -Credential's user and password as a Git credential (user "x-access-token" when only a token is given); null without a password.</summary>
    public static GitCredential? From(string? user, string? password) =>
        password is null ? null : new GitCredential(user ?? "x-access-token", password);

    /// <summary>
    /// The credential a cmdlet passed, else the token named by gitops.token_env / token_file
    /// (as user "x-access-token", which GitHub and Azure DevOps both accept), else none.
    /// </summary>
    public static GitCredential? Resolve(GitOpsConfig config, GitCredential? passed) =>
        passed ?? FromReference(config.TokenEnv, config.TokenFile, "gitops", GitOpsErrorIds.TokenUnavailable, "Set it, or pass -Credential.");

    /// <summary>
    /// The token a configuration section names by reference (<c>&lt;section&gt;.token_env</c> or
    /// <c>token_file</c>), as user "x-access-token"; null when it names none. A reference to nothing
    /// is an error <paramref name="errorId"/> ending with <paramref name="remedy"/>.
    /// </summary>
    public static GitCredential? FromReference(string? tokenEnv, string? tokenFile, string section, string errorId, string remedy)
    {
        if (tokenEnv is { } env)
        {
            string? token = System.Environment.GetEnvironmentVariable(env);
            if (string.IsNullOrWhiteSpace(token))
                throw new KfmException(errorId, KfmErrorKind.InvalidArgument,
                    $"{section}.token_env names ${env}, which is not set. {remedy}", env);
            return new GitCredential("x-access-token", token.Trim());
        }
        if (tokenFile is { } file)
        {
            if (!File.Exists(file))
                throw new KfmException(errorId, KfmErrorKind.InvalidArgument,
                    $"{section}.token_file {file} does not exist. {remedy.Replace("Set it", "Create it", StringComparison.Ordinal)}", file);
            return new GitCredential("x-access-token", File.ReadAllText(file).Trim());
        }
        return null;
    }

    internal CredentialsHandler Handler() => (_, _, _) => new UsernamePasswordCredentials { Username = UserName, Password = Password };
}
