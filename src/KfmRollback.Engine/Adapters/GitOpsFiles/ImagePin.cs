
namespace KfmRollback.Engine.Adapters.GitOpsFiles;

/// <summary>A character span of a YAML scalar in the file text (start inclusive, end exclusive, quotes included).</summary>
public readonly record struct TextSpan(int Start, int End, int Line)
{
    public int Length => End - Start;
}

/// <summary>How a new digest is written into the located pin.</summary>
public enum PinEditKind
{
    /// <summary>Replace the digest scalar's value (after <see cref="ImagePin.ValuePrefix"/>, e.g. a Helm tag kept as <c>tag@digest</c>).</summary>
    ReplaceDigestValue,
    /// <summary>Kustomize entry with newTag only: rename the key newTag to digest and set its value (one line).</summary>
    RenameTagKeyToDigest,
    /// <summary>Raw manifest: rewrite the whole image scalar as repo@digest.</summary>
    ReplaceImage,
}

/// <summary>
/// Where the API image is pinned in a GitOps file: the image as written, its digest (if any) and
/// the exact spans a rollback edits.
/// </summary>
public sealed record ImagePin
{
    public required string Image { get; init; }
    public required string Repository { get; init; }
    public string? Tag { get; init; }
    public string? Digest { get; init; }
    public required PinEditKind EditKind { get; init; }
    /// <summary>The scalar whose value is replaced.</summary>
    public required ScalarSpan ValueSpan { get; init; }
    /// <summary>
    /// Kept in front of the new value: the tag of a Helm <c>tag: 1.2.3@sha256:…</c> (<c>1.2.3@</c>), or
    /// the alias of an Argo CD <c>kustomize.images</c> entry (<c>kfm-api=</c>).
    /// </summary>
    public string ValuePrefix { get; init; } = "";
    /// <summary>Where the pin is, for messages: document and path (<c>Application/kfm-api spec.source.kustomize.images[0]</c>).</summary>
    public string Location { get; init; } = "";
    /// <summary>For <see cref="PinEditKind.RenameTagKeyToDigest"/>: the key scalar renamed.</summary>
    public ScalarSpan? KeySpan { get; init; }
    /// <summary>The same image in the other containers gitops.container names (an init container running migrations), pinned with this one.</summary>
    public IReadOnlyList<ImagePin> Others { get; init; } = Array.Empty<ImagePin>();
}

/// <summary>A scalar's span plus its quoting style, so the replacement is quoted the same way.</summary>
public sealed record ScalarSpan(TextSpan Span, YamlDotNet.Core.ScalarStyle Style, string Value);
