using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Freeze;

namespace KfmRollback.Cmdlets.Freeze;

/// <summary>The mechanism names users type, mapped onto the configuration's kinds.</summary>
public enum FreezeMechanismName
{
    ArgoCD,
    FluxKustomization,
    FluxHelmRelease,
    KillSwitch,
    FluxImageUpdateAutomation,
    ArgoCDImageUpdater,
}

/// <summary>Shared by the freeze cmdlets: -Mechanism selects among the configured mechanisms (default: all).</summary>
public abstract class FreezeCmdlet : KfmEnvironmentCmdlet
{
    [Parameter]
    public FreezeMechanismName[]? Mechanism { get; set; }

    protected IReadOnlyCollection<FreezeKind>? SelectedKinds() => Mechanism?.Select(m => m switch
    {
        FreezeMechanismName.ArgoCD => FreezeKind.Argocd,
        FreezeMechanismName.FluxKustomization => FreezeKind.FluxKustomization,
        FreezeMechanismName.FluxHelmRelease => FreezeKind.FluxHelmrelease,
        FreezeMechanismName.FluxImageUpdateAutomation => FreezeKind.FluxImageupdateautomation,
        FreezeMechanismName.ArgoCDImageUpdater => FreezeKind.ArgocdImageUpdater,
        _ => FreezeKind.Killswitch,
    }).Distinct().ToList();

    /// <summary>The Freeze step, built from the module's engine context.</summary>
    protected static FreezeService Freezes => new(EngineContext);
}
