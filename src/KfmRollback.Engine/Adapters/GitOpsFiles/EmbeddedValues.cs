using System.Text;
using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Core;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace KfmRollback.Engine.Adapters.GitOpsFiles;

/// <summary>
/// Helm values written as a YAML string inside another YAML file: Argo CD's
/// <c>spec.source.helm.values: |</c> (argoproj/argo-cd docs/user-guide/helm.md, "Values": "values can be
/// passed in as a string using the source.helm.values key"), the most common inline form. The string
/// is parsed as its own YAML document to find the pin; the pin's spans are then translated back to the
/// outer file, so the edit replaces the same characters in the Application and nothing else changes.
/// Only a literal block (<c>|</c>, <c>|-</c>, <c>|+</c>) maps line for line; a folded, quoted or
/// explicitly indented string is refused, naming what the module cannot read.
/// </summary>
public sealed class EmbeddedValues
{
    private readonly int[] _outerLineStarts;
    private readonly int[] _innerLineStarts;
    private readonly int _firstLine;
    private readonly int _indent;

    private EmbeddedValues(YamlText inner, int[] outerLineStarts, int[] innerLineStarts, int firstLine, int indent, string location)
    {
        Inner = inner;
        _outerLineStarts = outerLineStarts;
        _innerLineStarts = innerLineStarts;
        _firstLine = firstLine;
        _indent = indent;
        Location = location;
    }

    /// <summary>The values string parsed as YAML (its own offsets; <see cref="ToOuter(ImagePin)"/> maps a pin back).</summary>
    public YamlText Inner { get; }

    /// <summary>Where the string is in the outer file (<c>Application/kfm-api spec.source.helm.values (line 14)</c>).</summary>
    public string Location { get; }

    /// <summary>Opens the literal block <paramref name="block"/> of <paramref name="outer"/>, found at <paramref name="location"/> via <paramref name="setting"/>.</summary>
    public static EmbeddedValues Open(YamlText outer, YamlNode block, string location, string setting)
    {
        if (block is not YamlScalarNode scalar)
            throw Unreadable(outer, block, location, $"it is a {(block is YamlMappingNode ? "mapping" : "list")}, not a string; for values written as YAML (valuesObject) point gitops.helm_values.repository/tag/digest at them and leave {setting} unset");
        if (scalar.Style != ScalarStyle.Literal)
            throw Unreadable(outer, scalar, location, $"it is a {Describe(scalar.Style)} string, whose lines the module cannot map back to the file one for one; write it as a literal block (values: |)");
        string text = outer.Text;
        int[] outerStarts = LineStarts(text);
        int headerLine = (int)scalar.Start.Line; // the line holding the '|' indicator
        int headerEnd = headerLine < outerStarts.Length ? outerStarts[headerLine] : text.Length;
        string header = text[(int)scalar.Start.Index..headerEnd].Split('#')[0].Trim();
        if (header.Any(char.IsDigit))
            throw Unreadable(outer, scalar, location, $"its block header '{header}' sets an explicit indentation, which the module does not map; drop the digit");
        string value = scalar.Value ?? "";
        string[] lines = value.Split('\n');
        int count = value.EndsWith('\n') ? lines.Length - 1 : lines.Length;
        int firstLine = headerLine + 1;
        int indent = -1;
        for (int i = 0; i < count; i++)
        {
            if (lines[i].Length == 0)
                continue;
            string raw = Line(text, outerStarts, firstLine + i);
            if (indent < 0)
                indent = raw.Length - raw.TrimStart(' ').Length;
            if (raw.Length < indent || raw[indent..] != lines[i] || raw[..indent].Trim(' ').Length != 0)
                throw Unreadable(outer, scalar, location, $"line {firstLine + i} of the file does not hold line {i + 1} of the string as parsed (tabs or an unusual indentation)");
        }
        byte[] bytes = new UTF8Encoding(false).GetBytes(value);
        var inner = YamlText.Parse($"{outer.Path} ({location})", bytes);
        return new EmbeddedValues(inner, outerStarts, LineStarts(value), firstLine, Math.Max(indent, 0), location);
    }

    /// <summary>The pin found in <see cref="Inner"/>, with its spans in the outer file's text.</summary>
    public ImagePin ToOuter(ImagePin pin) => pin with
    {
        ValueSpan = ToOuter(pin.ValueSpan),
        KeySpan = pin.KeySpan is { } key ? ToOuter(key) : null,
        Location = $"{Location} » {pin.Location}",
    };

    private ScalarSpan ToOuter(ScalarSpan span)
    {
        int line = span.Span.Line; // 1-based, in the string
        int column = span.Span.Start - _innerLineStarts[line - 1];
        int start = _outerLineStarts[_firstLine + line - 2] + _indent + column;
        return span with { Span = new TextSpan(start, start + span.Span.Length, _firstLine + line - 1) };
    }

    /// <summary>Offset of the first character of each line (index 0 is line 1).</summary>
    private static int[] LineStarts(string text)
    {
        var starts = new List<int> { 0 };
        for (int i = 0; i < text.Length; i++)
            if (text[i] == '\n')
                starts.Add(i + 1);
        return starts.ToArray();
    }

    /// <summary>Line <paramref name="line"/> (1-based) without its line break.</summary>
    private static string Line(string text, int[] starts, int line)
    {
        if (line > starts.Length)
            return "";
        int start = starts[line - 1];
        int end = line < starts.Length ? starts[line] - 1 : text.Length;
        return text[start..end].TrimEnd('\r');
    }

    private static string Describe(ScalarStyle style) => style switch
    {
        ScalarStyle.Folded => "folded (>)",
        ScalarStyle.DoubleQuoted => "double-quoted",
        ScalarStyle.SingleQuoted => "single-quoted",
        _ => "plain one-line",
    };

    private static KfmException Unreadable(YamlText outer, YamlNode node, string location, string why) =>
        new(GitOpsErrorIds.ValuesUnreadable, KfmErrorKind.InvalidData,
            $"{outer.Path}:{node.Start.Line}: the module cannot read the Helm values at {location}: {why}. Or roll back with -Revert <sha> (a git revert of the bad deploy commit).", outer.Path);
}
