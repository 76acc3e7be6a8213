using System.Reflection;
using KfmRollback.Engine.Core;
using NetArchTest.Rules;

namespace KfmRollback.Engine.Tests.Architecture;

/// <summary>
/// The engine's two layers (docs/architecture.md): runbook steps on top, technology adapters below,
/// a foundation (Core, Configuration, Safety and the root namespace's digest rule) under both.
/// An adapter knows nothing of the steps, the foundation knows neither, and no two steps call
/// each other in a cycle. Read from the compiled engine (so a fully qualified name counts as much
/// as a using directive) and from the engine's using directives (so a constant, which the compiler
/// copies into the caller and leaves no reference behind, counts too).
/// </summary>
public sealed class LayerTests
{
    internal const string Root = "KfmRollback.Engine";
    internal const string AdapterRoot = Root + ".Adapters";

    /// <summary>The runbook's steps, in runbook order; each is a namespace with its sub-namespaces.</summary>
    internal static readonly string[] Steps =
    {
        "Incidents", "Freeze", "Refs", "Planning", "Rollback", "Verification", "FailClosed", "Receipts", "Aftermath",
    };

    internal static readonly string[] Foundation = { "Core", "Configuration", "Safety" };

    /// <summary>The engine context: what steps are handed (clients, clock, stores); it knows the adapters, never a step.</summary>
    internal const string Context = Root + ".Context";

    private static readonly Assembly Engine = typeof(KfmException).Assembly;

    private static string Ns(string part) => Root + "." + part;

    /// <summary>Every namespace of the compiled engine.</summary>
    private static readonly string[] EngineNamespaces = Engine.GetTypes().Select(t => t.Namespace).OfType<string>().Distinct().ToArray();

    private static string[] StepNamespaces => Steps.Select(Ns).ToArray();

    private static string[] AdapterNamespaces => Types.InAssembly(Engine).That().ResideInNamespaceMatching(Under(AdapterRoot)).GetTypes()
        .Select(t => t.Namespace!).Distinct().ToArray();

    [Fact]
    public void Every_engine_namespace_is_a_step_an_adapter_or_the_foundation()
    {
        var known = Steps.Concat(Foundation).Select(Ns).Append(AdapterRoot).Append(Context).ToArray();
        var stray = Types.InAssembly(Engine).GetTypes()
            .Where(t => !string.IsNullOrEmpty(t.Namespace) && t.Namespace != Root)
            .Where(t => !known.Any(k => t.Namespace == k || t.Namespace!.StartsWith(k + ".", StringComparison.Ordinal)))
            .Select(t => t.FullName!).OrderBy(n => n, StringComparer.Ordinal).ToArray();
        Assert.True(stray.Length == 0,
            "These types sit in neither a step, an adapter nor the foundation (move them; docs/architecture.md says where):\n  "
            + string.Join("\n  ", stray));
    }

    [Fact]
    public void Adapters_know_nothing_of_the_steps()
    {
        var result = Types.InAssembly(Engine).That().ResideInNamespaceMatching(Under(AdapterRoot))
            .ShouldNot().HaveDependencyOnAny(StepNamespaces.Append(Context).ToArray()).GetResult();
        Assert.True(result.IsSuccessful, "Adapters that reference a step namespace or the engine context:\n  " + Failing(result));
        AssertNoUsing(AdapterRoot, StepNamespaces.Append(Context).ToArray());
    }

    [Fact]
    public void The_foundation_references_no_step_and_no_adapter()
    {
        var upward = StepNamespaces.Append(AdapterRoot).Append(Context).ToArray();
        foreach (var part in Foundation)
        {
            var result = Types.InAssembly(Engine).That().ResideInNamespaceMatching(Under(Ns(part)))
                .ShouldNot().HaveDependencyOnAny(upward).GetResult();
            Assert.True(result.IsSuccessful, $"{part} types that reference a step or an adapter:\n  " + Failing(result));
            AssertNoUsing(Ns(part), upward);
        }
        // The root namespace holds the one digest rule (ImageRefs); it is foundation as well.
        var root = Types.InAssembly(Engine).That().ResideInNamespaceMatching(@"^KfmRollback\.Engine$")
            .ShouldNot().HaveDependencyOnAny(upward).GetResult();
        Assert.True(root.IsSuccessful, "Root-namespace types that reference a step or an adapter:\n  " + Failing(root));
    }

    [Fact]
    public void The_context_references_no_step()
    {
        var result = Types.InAssembly(Engine).That().ResideInNamespaceMatching(Under(Context))
            .ShouldNot().HaveDependencyOnAny(StepNamespaces).GetResult();
        Assert.True(result.IsSuccessful, "Engine context types that reference a step:\n  " + Failing(result));
    }

    [Fact]
    public void Core_Configuration_and_Safety_do_not_reference_each_other_in_a_cycle() =>
        AssertNoCycle(Foundation.Select(Ns).ToArray(), "foundation");

    [Fact]
    public void Adapters_do_not_reference_each_other_in_a_cycle() =>
        AssertNoCycle(AdapterNamespaces, "adapter");

    [Fact]
    public void No_two_steps_reference_each_other_in_a_cycle() =>
        AssertNoCycle(StepNamespaces, "step");

    private static void AssertNoCycle(string[] namespaces, string what)
    {
        var edges = DependencyEdges(namespaces);
        foreach (var (file, from, to) in SourceUsings())
        {
            string? a = namespaces.FirstOrDefault(n => Within(from, n)), b = namespaces.FirstOrDefault(n => Within(to, n));
            if (a is not null && b is not null && a != b && !Within(a, b) && !Within(b, a))
            {
                edges.TryAdd((a, b), $"using {to} in {file}");
            }
        }
        var cycle = FindCycle(namespaces, edges);
        Assert.True(cycle is null, cycle is null ? "" :
            $"These {what} namespaces reference each other in a cycle:\n  "
            + string.Join("\n  ", cycle.Zip(cycle.Skip(1).Append(cycle[0]), (a, b) => $"{a} -> {b} (by {edges[(a, b)]})")));
    }

    /// <summary>Edge (a, b) when a type under namespace a references a type under namespace b; the value names one such type.</summary>
    internal static Dictionary<(string From, string To), string> DependencyEdges(string[] namespaces)
    {
        var edges = new Dictionary<(string, string), string>();
        foreach (var from in namespaces)
        {
            foreach (var to in namespaces)
            {
                if (from == to || to.StartsWith(from + ".", StringComparison.Ordinal) || from.StartsWith(to + ".", StringComparison.Ordinal))
                {
                    continue;
                }
                var result = Types.InAssembly(Engine).That().ResideInNamespaceMatching(Under(from))
                    .ShouldNot().HaveDependencyOn(to).GetResult();
                if (!result.IsSuccessful)
                {
                    edges[(from, to)] = result.FailingTypeNames.OrderBy(n => n, StringComparer.Ordinal).First();
                }
            }
        }
        return edges;
    }

    /// <summary>The first cycle a depth-first walk finds, as the namespaces on it in order; null when there is none.</summary>
    internal static List<string>? FindCycle(IReadOnlyList<string> nodes, IReadOnlyDictionary<(string From, string To), string> edges)
    {
        var state = nodes.ToDictionary(n => n, _ => 0); // 0 unseen, 1 on the path, 2 done
        var path = new List<string>();
        List<string>? Visit(string node)
        {
            state[node] = 1;
            path.Add(node);
            foreach (var next in nodes.Where(n => edges.ContainsKey((node, n))))
            {
                if (state[next] == 1)
                {
                    return path.Skip(path.IndexOf(next)).ToList();
                }
                if (state[next] == 0 && Visit(next) is { } found)
                {
                    return found;
                }
            }
            path.RemoveAt(path.Count - 1);
            state[node] = 2;
            return null;
        }
        foreach (var node in nodes)
        {
            if (state[node] == 0 && Visit(node) is { } cycle)
            {
                return cycle;
            }
        }
        return null;
    }

    /// <summary>The namespace and those below it (NetArchTest's ResideInNamespace is a plain prefix: Adapters.Git would take in Adapters.GitOpsFiles).</summary>
    private static string Under(string ns) => "^" + System.Text.RegularExpressions.Regex.Escape(ns) + @"(\..+)?$";

    private static bool Within(string ns, string root) => ns == root || ns.StartsWith(root + ".", StringComparison.Ordinal);

    private static void AssertNoUsing(string from, string[] forbidden)
    {
        var offending = SourceUsings().Where(u => Within(u.Namespace, from) && forbidden.Any(f => Within(u.Used, f)))
            .Select(u => $"{u.File}: using {u.Used}").ToArray();
        Assert.True(offending.Length == 0, $"Files in {from} with a using directive or a fully qualified name they must not have:\n  " + string.Join("\n  ", offending));
    }

    /// <summary>Every <c>using KfmRollback.Engine…;</c> directive and fully qualified engine name in the engine's sources: file, its namespace, the namespace used.</summary>
    internal static IReadOnlyList<(string File, string Namespace, string Used)> SourceUsings()
    {
        string engine = Path.Combine(RepositoryRoot(), "src", "KfmRollback.Engine");
        var found = new List<(string, string, string)>();
        foreach (string file in Directory.EnumerateFiles(engine, "*.cs", SearchOption.AllDirectories)
                     .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}")))
        {
            string text = File.ReadAllText(file);
            var ns = System.Text.RegularExpressions.Regex.Match(text, @"^namespace ([\w.]+);", System.Text.RegularExpressions.RegexOptions.Multiline);
            if (!ns.Success)
            {
                continue;
            }
            foreach (System.Text.RegularExpressions.Match used in System.Text.RegularExpressions.Regex.Matches(text, @"^using (?:static )?(KfmRollback\.Engine(?:\.\w+)*)\s*;", System.Text.RegularExpressions.RegexOptions.Multiline))
            {
                found.Add((Path.GetRelativePath(engine, file), ns.Groups[1].Value, used.Groups[1].Value));
            }
            // A fully qualified name in code (not a string, not a comment) names its namespace as a using
            // would: a constant reached that way leaves no reference in the compiled engine either.
            foreach (System.Text.RegularExpressions.Match used in System.Text.RegularExpressions.Regex.Matches(text, @"^(?!\s*(?:using|namespace|//)\b)[^""\n]*?(?<![\w.""/])(KfmRollback\.Engine(?:\.\w+)+)", System.Text.RegularExpressions.RegexOptions.Multiline))
            {
                string name = used.Groups[1].Value;
                string? named = EngineNamespaces.Where(n => name == n || name.StartsWith(n + ".", StringComparison.Ordinal)).MaxBy(n => n.Length);
                if (named is not null)
                {
                    found.Add((Path.GetRelativePath(engine, file), ns.Groups[1].Value, named));
                }
            }
        }
        Assert.NotEmpty(found);
        return found;
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "KfmRollback.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("KfmRollback.sln not found above " + AppContext.BaseDirectory);
    }

    private static string Failing(TestResult result) =>
        string.Join("\n  ", result.FailingTypeNames ?? Array.Empty<string>());

    [Fact]
    public void The_cycle_finder_finds_a_three_step_cycle_and_none_in_a_chain()
    {
        var nodes = new[] { "A", "B", "C" };
        var chain = new Dictionary<(string, string), string> { [("A", "B")] = "x", [("B", "C")] = "y" };
        Assert.Null(FindCycle(nodes, chain));
        chain[("C", "A")] = "z";
        Assert.Equal(new[] { "A", "B", "C" }, FindCycle(nodes, chain));
    }
}
