using System.Management.Automation;
using System.Reflection;
using System.Runtime.Loader;

namespace KfmRollback.Cmdlets.Hosting;

/// <summary>
/// Runs on Import-Module: teaches the default load context to fetch the engine from our private
/// context, and nothing else. Nothing here touches an engine type, so importing stays cheap and
/// no dependency is loaded until a cmdlet first needs it.
/// </summary>
public sealed class ModuleInitializer : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    internal const string EngineAssemblyName = "KfmRollback.Engine";

    internal static string ModuleDirectory { get; } =
        Path.GetDirectoryName(typeof(ModuleInitializer).Assembly.Location) ?? AppContext.BaseDirectory;

    private static readonly Lazy<KfmLoadContext> s_context = new(() =>
        new KfmLoadContext(Path.Combine(ModuleDirectory, "Dependencies")));

    private static readonly object s_gate = new();
    private static bool s_hooked;

    public void OnImport()
    {
        lock (s_gate)
        {
            // Import-Module -Force runs OnImport again without unloading the assembly.
            if (!s_hooked)
            {
                AssemblyLoadContext.Default.Resolving += ResolveEngine;
                s_hooked = true;
            }
        }
    }

    public void OnRemove(PSModuleInfo module)
    {
        lock (s_gate)
        {
            if (s_hooked)
            {
                AssemblyLoadContext.Default.Resolving -= ResolveEngine;
                s_hooked = false;
            }
        }
    }

    private static Assembly? ResolveEngine(AssemblyLoadContext defaultContext, AssemblyName name)
    {
        return string.Equals(name.Name, EngineAssemblyName, StringComparison.Ordinal)
            ? s_context.Value.LoadFromAssemblyName(name)
            : null;
    }
}
