using System.Management.Automation;
using KfmRollback.Engine.Freeze;

namespace KfmRollback.Cmdlets.Freeze;

/// <summary>Shows whether each deploy mechanism is frozen, by whom, when and why.</summary>
[Cmdlet(VerbsCommon.Get, "KfmFreeze")]
[OutputType(typeof(FreezeState))]
public sealed class GetKfmFreezeCommand : FreezeCmdlet
{
    protected override void ProcessRecordCore()
    {
        var environment = RequireEnvironment();
        WriteObject(RunAsync(token => Freezes.GetAsync(environment, SelectedKinds(), token)), enumerateCollection: true);
    }
}
