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
        foreach (string name in Name)
        {
            if (WildcardPattern.ContainsWildcardCharacters(name))
            {
                var pattern = new WildcardPattern(name, WildcardOptions.IgnoreCase);
                WriteObject(config.EnvironmentNames.Where(pattern.IsMatch).Select(config.GetEnvironment), enumerateCollection: true);
            }
            else
            {
                // One unknown name must not hide the others the user asked for.
                try { WriteObject(config.GetEnvironment(name)); }
                catch (KfmRollback.Engine.Core.KfmException ex) { WriteError(ErrorRecords.From(ex)); }
            }
        }
    }
}
