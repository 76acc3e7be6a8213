using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace KfmRollback.Cmdlets.Hosting;

/// <summary>
/// The module's private load context. It owns the engine and every third-party assembly under
/// <c>Dependencies/</c>, so another module's YamlDotNet (or pwsh's own JsonSchema.Net) never
/// meets ours. It also finds native libgit2, which default probing cannot do inside pwsh
/// (AppContext.BaseDirectory is $PSHOME and .deps.json probing does not apply to modules).
/// </summary>
internal sealed class KfmLoadContext : AssemblyLoadContext
{
    private readonly string _dependencyDirectory;

    public KfmLoadContext(string dependencyDirectory) : base("KfmRollback", isCollectible: false)
    {
        _dependencyDirectory = dependencyDirectory;
    }

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        // Only answer for files we ship; everything else (the framework, System.Management.Automation)
        // must come from the default context so types stay shared with PowerShell.
        string candidate = Path.Combine(_dependencyDirectory, assemblyName.Name + ".dll");
        return File.Exists(candidate) ? LoadFromAssemblyPath(candidate) : null;
    }

    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        foreach (string candidate in NativeLibraryCandidates(unmanagedDllName))
        {
            if (File.Exists(candidate))
            {
                return LoadUnmanagedDllFromPath(candidate);
            }
        }
        return IntPtr.Zero;
    }

    /// <summary>Paths to try for a native library name such as <c>git2-3f4182d</c>.</summary>
    internal IEnumerable<string> NativeLibraryCandidates(string unmanagedDllName)
    {
        string fileName = Path.GetFileName(unmanagedDllName);
        string[] fileNames = OperatingSystem.IsWindows()
            ? new[] { fileName + ".dll", fileName }
            : OperatingSystem.IsMacOS()
                ? new[] { "lib" + fileName + ".dylib", fileName + ".dylib", fileName }
                : new[] { "lib" + fileName + ".so", fileName + ".so", fileName };

        foreach (string rid in RuntimeIdentifiers())
        {
            foreach (string name in fileNames)
            {
                yield return Path.Combine(_dependencyDirectory, "runtimes", rid, "native", name);
            }
        }
    }

    /// <summary>The running platform's RIDs, most specific first (musl before glibc on Alpine).</summary>
    internal static IEnumerable<string> RuntimeIdentifiers()
    {
        string arch = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => "x64",
            Architecture.Arm64 => "arm64",
            Architecture.X86 => "x86",
            Architecture.Arm => "arm",
            var other => other.ToString().ToLowerInvariant(),
        };

        if (OperatingSystem.IsWindows())
        {
            yield return "win-" + arch;
        }
        else if (OperatingSystem.IsMacOS())
        {
            yield return "osx-" + arch;
        }
        else
        {
            if (IsMusl())
            {
                yield return "linux-musl-" + arch;
            }
            yield return "linux-" + arch;
        }
    }

    private static bool IsMusl()
    {
        // The runtime's own RID says musl on Alpine builds of .NET; the loader file is the fallback.
        return RuntimeInformation.RuntimeIdentifier.Contains("musl", StringComparison.OrdinalIgnoreCase)
            || Directory.Exists("/lib") && Directory.EnumerateFiles("/lib", "ld-musl-*").Any();
    }
}
