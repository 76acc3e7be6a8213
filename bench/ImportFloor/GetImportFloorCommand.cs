using System.Management.Automation;

namespace KfmRollback.Bench;

/// <summary>The one cmdlet of the import floor module: returns its -Name.</summary>
[Cmdlet(VerbsCommon.Get, "ImportFloor")]
[OutputType(typeof(string))]
public sealed class GetImportFloorCommand : PSCmdlet
{
    [Parameter(Position = 0)]
    public string Name { get; set; } = "floor";

    protected override void ProcessRecord() => WriteObject(Name);
}
