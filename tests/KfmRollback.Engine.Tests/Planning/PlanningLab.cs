using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Planning;
using KfmRollback.Engine.Refs;
using KfmRollback.Engine.Tests.Support;

namespace KfmRollback.Engine.Tests.Planning;

/// <summary>The lab as the decision-tree tests use it: settled, Argo CD's self-heal off, the module's view of it with the lab's API.</summary>
internal static class PlanningLab
{
    /// <summary>Argo's self-heal would put a hand-made deploy back (incident responders freeze it first too); <paramref name="policySurface"/> is YAML under policy_surface.</summary>
    public static LabSetup Setup(string? policySurface = null) => new()
    {
        ArgoSelfHeal = false,
        Settled = true,
        FailOnControllerErrors = true,
        Environment = c => Sections(c, policySurface),
    };

    public static Task<EngineLab> StartAsync() => EngineLab.StartAsync(Setup());

    /// <summary>A lab whose running configuration was snapshotted, as Start-KfmFreeze does when an incident starts; its <see cref="EngineLab.Environment"/> has <paramref name="policySurface"/>.</summary>
    public static async Task<EngineLab> StartFrozenAsync(string? policySurface)
    {
        EngineLab lab = await EngineLab.StartAsync(Setup(policySurface));
        try
        {
            await lab.FreezeSnapshotAsync(lab.Environment);
        }
        catch
        {
            await lab.DisposeAsync();
            throw;
        }
        return lab;
    }

    private static LabConfig Sections(LabConfig config, string? policySurface)
    {
        config.Responder(api: $"{{ base_url: '{config.Lab.Host.KfmApiUrl}', contract_snapshot_dir: contracts, probe: {LabConfig.AnonymousProbe} }}");
        return policySurface is null ? config : config.Block("policy_surface", policySurface);
    }

    /// <summary>The lab's environment as the module reads it; <paramref name="policySurface"/> is YAML under policy_surface.</summary>
    public static EnvironmentConfig PlanningEnvironment(this EngineLab lab, string? policySurface = null) => Sections(lab.Configure(), policySurface).Environment();

    /// <summary>What Start-KfmFreeze records: the running template's ConfigMaps and Secrets, by content.</summary>
    public static Task FreezeSnapshotAsync(this EngineLab lab, EnvironmentConfig environment) =>
        KfmRollback.Engine.Rollback.Surfaces.SurfaceRollback.SnapshotRunningAsync(KfmRollback.Engine.Context.EngineContext.For(lab.Client), environment, CancellationToken.None);

    /// <summary>A request as Get-KfmRollbackPlan -Since makes it, the incident starting now on the lab's clock.</summary>
    public static RollbackPlanRequest Request(this EngineLab lab, TimeSpan? window = null) =>
        new() { IncidentId = "INC-PLAN", IncidentStartedAt = lab.Host.Clock.Now, DeployWindow = window ?? TimeSpan.FromHours(1) };

    public static RollbackPlanner Planner(this EngineLab lab, EnvironmentConfig environment, Func<CancellationToken, Task<ApiRef>>? gitOps = null, HttpClient? http = null) =>
        new(lab.Client, environment, new PlanSources { GitOpsRef = gitOps, Http = http });
}
