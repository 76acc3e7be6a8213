using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Freeze;
using KfmRollback.Engine.Rollback;

namespace KfmRollback.Engine.Tests.Support;

/// <summary>The engine's services wired to an <see cref="EngineLab"/>: every cluster client they ask for is the lab's.</summary>
internal static class LabEngine
{
    public static FreezeMechanisms Freezes(this EngineLab lab) => new(_ => lab.Client, null);

    public static RollbackEngine RollbackEngine(this EngineLab lab) => new(new RollbackMechanisms(_ => lab.Client, lab.Freezes()));

    /// <summary>
    /// Freezes every mechanism of <paramref name="environment"/> (the lab's by default: Argo CD), as the
    /// runbook's step 1 does; until then Argo CD's self-heal puts a hand-made change back.
    /// </summary>
    public static async Task FreezeAsync(this EngineLab lab, string incidentId, EnvironmentConfig? environment = null)
    {
        foreach (IFreezeMechanism freeze in lab.Freezes().For(environment ?? lab.Environment))
        {
            await freeze.FreezeAsync(new FreezeRequest(incidentId, "tester", "test", DateTimeOffset.UtcNow), dryRun: false, CancellationToken.None);
        }
    }
}
