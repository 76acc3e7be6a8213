using System.Management.Automation;
using KfmRollback.Engine.Adapters.Git;

namespace KfmRollback.Cmdlets.Common;

/// <summary>
/// A cmdlet about the API's container in the environment's Deployment: <c>-Container</c>, declared once
/// for every cmdlet that reads or changes the running image.
/// </summary>
public abstract class KfmContainerCmdlet : KfmEnvironmentCmdlet
{
    /// <summary>The container whose image is the API's (else cluster.container); needed when the pod has several.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Container { get; set; }
}

/// <summary>
/// A container cmdlet that may also read or write the GitOps repository over HTTPS: <c>-Credential</c>,
/// declared once, and its one translation into a Git credential.
/// </summary>
public abstract class KfmGitCmdlet : KfmContainerCmdlet
{
    /// <summary>Credentials for the GitOps repository over HTTPS (else gitops.token_env/token_file).</summary>
    [Parameter]
    [Credential]
    public PSCredential? Credential { get; set; }

    /// <summary>-Credential as a Git credential (user "x-access-token" when only a token is given); null without one.</summary>
    protected GitCredential? GitCredential => GitCredential.From(Credential?.UserName, Credential?.GetNetworkCredential().Password);
}
