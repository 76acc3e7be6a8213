using System.Text;
using KfmRollback.Engine.Core;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace KfmRollback.Engine.GitOps;

/// <summary>
/// A GitOps file as text plus its parsed YAML. The text is what gets edited (surgically, at
/// the spans the parser reports); the parse is only used to find those spans. A UTF-8 BOM is
/// split off so the parser's character offsets line up with <see cref="Text"/>, and put back on save.
/// </summary>
public sealed class YamlText
{
    private static readonly byte[] Bom = { 0xEF, 0xBB, 0xBF };

    private YamlText(string path, bool hasBom, string text, YamlStream stream)
    {
        Path = path;
        HasBom = hasBom;
        Text = text;
        Stream = stream;
    }

    public string Path { get; }
    public bool HasBom { get; }
    public string Text { get; }
    public YamlStream Stream { get; }

    public static YamlText Parse(string path, byte[] bytes)
    {
        bool hasBom = bytes.AsSpan().StartsWith(Bom);
        string text = new UTF8Encoding(false).GetString(bytes, hasBom ? 3 : 0, bytes.Length - (hasBom ? 3 : 0));
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            // YamlDotNet sometimes reports a position-less failure (line 0): say "line 1" rather than nothing.
            long line = Math.Max(1, e.Start.Line);
            throw new KfmException(GitOpsErrorIds.YamlInvalid, KfmErrorKind.InvalidData,
                $"{path}:{line}: is not valid YAML ({FirstLine(e.Message)}). Fix the file on the deploy branch or pass -Revert <sha>.", path, e);
        }
        return new YamlText(path, hasBom, text, stream);
    }

    /// <summary>The bytes of <paramref name="newText"/> with this file's BOM (if it had one).</summary>
    public byte[] Encode(string newText)
    {
        byte[] body = new UTF8Encoding(false).GetBytes(newText);
        return HasBom ? Bom.Concat(body).ToArray() : body;
    }

    public static ScalarSpan SpanOf(YamlScalarNode node) =>
        new(new TextSpan((int)node.Start.Index, (int)node.End.Index, (int)node.Start.Line), node.Style, node.Value ?? string.Empty);

    private static string FirstLine(string message)
    {
        int newline = message.IndexOf('\n');
        return (newline >= 0 ? message[..newline] : message).Trim();
    }
}
