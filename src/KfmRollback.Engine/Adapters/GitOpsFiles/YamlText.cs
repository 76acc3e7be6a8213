using KfmRollback.Engine.Adapters.Git;
using System.Text;
using KfmRollback.Engine.Core;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace KfmRollback.Engine.Adapters.GitOpsFiles;

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
            throw Invalid(path, e.Start.Line > 0 ? e.Start.Line : LastGoodLine(text), FirstLine(e.Message), e);
        }
        catch (InvalidOperationException e)
        {
            // YamlDotNet's scanner sometimes fails without a position (e.g. an unclosed flow
            // sequence): locate it by the last token the scanner still produced.
            throw Invalid(path, LastGoodLine(text), "unexpected end of a flow collection or scalar", e);
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

    private static KfmException Invalid(string path, long line, string why, Exception inner) =>
        new(GitOpsErrorIds.YamlInvalid, KfmErrorKind.InvalidData,
            $"{path}:{Math.Max(1, line)}: is not valid YAML ({why}). Fix the file on the deploy branch or pass -Revert <sha>.", path, inner);

    private static long LastGoodLine(string text)
    {
        var scanner = new Scanner(new StringReader(text));
        long line = 1;
        try
        {
            while (scanner.MoveNext())
                line = scanner.Current!.End.Line;
        }
        catch (Exception e) when (e is YamlException or InvalidOperationException)
        {
            // the failure point: the line of the last token read is where to look
        }
        return line;
    }

    private static string FirstLine(string message)
    {
        int newline = message.IndexOf('\n');
        return (newline >= 0 ? message[..newline] : message).Trim();
    }
}
