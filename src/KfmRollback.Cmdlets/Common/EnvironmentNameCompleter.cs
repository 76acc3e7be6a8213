using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Cmdlets.Common;

/// <summary>Completes -Environment from the environments the configuration names.</summary>
public sealed class EnvironmentNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        IReadOnlyList<string> names;
        try
        {
            string? configPath = fakeBoundParameters["ConfigPath"] as string;
            string currentDirectory = Directory.GetCurrentDirectory();
            using var ps = PowerShell.Create(RunspaceMode.CurrentRunspace);
            ps.AddCommand("Get-Location");
            if (ps.Invoke().FirstOrDefault()?.BaseObject is PathInfo location && location.Provider.Name == "FileSystem")
            {
                currentDirectory = location.ProviderPath;
            }
            if (configPath is not null && !Path.IsPathRooted(configPath))
            {
                configPath = Path.Combine(currentDirectory, configPath);
            }
            names = KfmConfigLoader.LocateAndLoad(configPath, System.Environment.GetEnvironmentVariable(ConfigLocator.EnvironmentVariable), currentDirectory).EnvironmentNames;
        }
        catch (Exception)
        {
            // Completion must never throw at the user; no config simply means no suggestions.
            yield break;
        }

        foreach (string name in names.Where(n => n.StartsWith(wordToComplete ?? string.Empty, StringComparison.OrdinalIgnoreCase)))
        {
            yield return new CompletionResult(name, name, CompletionResultType.ParameterValue, $"environment {name}");
        }
    }
}
