using System.Text;

namespace KfmRollback.Engine.Safety;

/// <summary>
/// Text from people or systems placed into Markdown the module writes (incident report, follow-up,
/// rollback PR body): one line, with every character that opens a construct inside a line
/// backslash-escaped, so a reason such as "[click](https://x)", "| fake | row |", "&lt;img src=x&gt;" or
/// "**urgent**" stays the text it was and cannot add links, images, HTML, entities, table cells,
/// code or emphasis. Line-start constructs (headings, lists, quotes) cannot arise: line breaks
/// become spaces and the text always follows the module's own prefix.
/// </summary>
public static class MarkdownText
{
    // CommonMark allows a backslash before any ASCII punctuation; these open or close a construct
    // within a line (links and images need '[', so '(' ')' '!' are left alone; '-', '.', ':' stay
    // readable in times and digests).
    private const string Special = "\\`*_[]<>|~&#";

    /// <summary>The text as one escaped line (line breaks become spaces).</summary>
    public static string Inline(string? text)
    {
        if (string.IsNullOrEmpty(text)) return string.Empty;
        var sb = new StringBuilder(text.Length + 8);
        foreach (char c in text)
        {
            if (c is '\r' or '\n' or '\t') { sb.Append(' '); continue; }
            if (char.IsControl(c)) continue;
            if (Special.Contains(c)) sb.Append('\\');
            sb.Append(c);
        }
        return sb.ToString();
    }
}
