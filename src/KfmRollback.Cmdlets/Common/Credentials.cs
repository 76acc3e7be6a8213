using System.Management.Automation;
using KfmRollback.Engine.Adapters.Git;

namespace KfmRollback.Cmdlets.Common;

/// <summary>The one place a -Credential becomes what the engine takes (today: a Git credential for HTTPS remotes).</summary>
internal static class Credentials
{
    /// <summary>-Credential as a Git credential (user "x-access-token" when only a token is given); null without one.</summary>
    public static GitCredential? Git(PSCredential? credential) =>
        GitCredential.From(credential?.UserName, credential?.GetNetworkCredential().Password);
}
