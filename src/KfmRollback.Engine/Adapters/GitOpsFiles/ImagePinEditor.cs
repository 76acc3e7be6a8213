using KfmRollback.Engine.Adapters.Git;
using KfmRollback.Engine.Core;
using YamlDotNet.Core;

namespace KfmRollback.Engine.Adapters.GitOpsFiles;

/// <summary>
/// Writes a digest into a located pin by replacing only the characters of the scalar(s) the
/// parser reported: comments, key order, indentation, line endings and BOM are untouched because
/// nothing else of the text is rewritten (no re-serialisation).
/// </summary>
public static class ImagePinEditor
{
    /// <param name="pinnedBefore">
    /// The pin's value in the revision that last pinned <paramref name="digest"/> (Git history), written
    /// back as it was when it names that digest: <c>1.2.2@sha256:old</c> restores the old tag with the old
    /// digest. Null: the digest is written into the current value.
    /// </param>
    public static string SetDigest(YamlText file, ImagePin pin, string digest, string? pinnedBefore = null)
    {
        if (!ImageRefs.IsDigest(digest))
            throw new KfmException(GitOpsErrorIds.DigestRequired, KfmErrorKind.Ambiguous,
                $"'{digest}' is not an image digest (sha256:<64 hex>); a rollback pins an immutable ref. Pass -ToRef sha256:….", digest);
        string text = file.Text;
        // Later spans first, so each replacement leaves the offsets of the ones before it valid.
        foreach (ImagePin each in pin.Others.Prepend(pin).OrderByDescending(p => p.ValueSpan.Span.Start))
        {
            // Containers running the image the primary pin runs get the primary's old value too.
            string? before = each == pin || each.Image == pin.Image ? pinnedBefore : null;
            string value = before is not null && each.EditKind != PinEditKind.RenameTagKeyToDigest && ImageRefs.DigestOf(before) == digest
                ? before
                : each.ValuePrefix + (each.EditKind == PinEditKind.ReplaceImage ? each.Repository + "@" + digest : digest);
            text = Replace(text, each.ValueSpan, value);
            if (each.EditKind == PinEditKind.RenameTagKeyToDigest && each.KeySpan is { } key)
                // The key precedes its value on the same line, so replacing it after the value keeps both offsets valid.
                text = Replace(text, key, "digest");
        }
        return text;
    }

    private static string Replace(string text, ScalarSpan scalar, string value) =>
        text[..scalar.Span.Start] + Quote(value, scalar.Style) + text[scalar.Span.End..];

    /// <summary>Same quoting as before; digests and image refs never need escaping in any style.</summary>
    private static string Quote(string value, ScalarStyle style) => style switch
    {
        ScalarStyle.DoubleQuoted => "\"" + value + "\"",
        ScalarStyle.SingleQuoted => "'" + value + "'",
        _ => value,
    };
}
