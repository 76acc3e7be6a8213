using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;

namespace KfmRollback.Cmdlets.Common;

/// <summary>Completes -Environment from the environments the configuration names.</summary>
public sealed class EnvironmentNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        return Array.Empty<CompletionResult>();
    }
}
