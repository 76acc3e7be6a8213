using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Cmdlets.Configuration;

/// <summary>Shows the environments the configuration defines, as the module read them.</summary>
[Cmdlet(VerbsCommon.Get, "KfmEnvironment")]
[OutputType(typeof(EnvironmentConfig))]
public sealed class GetKfmEnvironmentCommand : KfmCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Environment")]
    [ArgumentCompleter(typeof(EnvironmentNameCompleter))]
    [SupportsWildcards]
    public string[]? Name { get; set; }

    [Parameter]
    public string? ConfigPath { get; set; }

    protected override void ProcessRecordCore()
    {
        KfmConfig config = ConfigSession.Load(this, ConfigPath, required: true)!;
        if (Name is null || Name.Length == 0)
        {
            WriteObject(config.EnvironmentNames.Select(config.GetEnvironment), enumerateCollection: true);
            return;
        }
        WriteObject(ConfigSession.SelectEnvironments(config, Name, ex => WriteError(ErrorRecords.From(ex))), enumerateCollection: true);
    }
}
