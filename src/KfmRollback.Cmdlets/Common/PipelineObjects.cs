using System.Management.Automation;

namespace KfmRollback.Cmdlets.Common;

/// <summary>
/// Engine objects bound through object[] parameters: typing the parameter with an engine type would
/// make PowerShell load the engine while it scans the cmdlets, before the load context is set up.
/// </summary>
internal static class PipelineObjects
{
    public static IReadOnlyList<T> Unwrap<T>(IEnumerable<object>? values) =>
        (values ?? Array.Empty<object>()).Select(v => v is PSObject ps ? ps.BaseObject : v).OfType<T>().ToList();
}
