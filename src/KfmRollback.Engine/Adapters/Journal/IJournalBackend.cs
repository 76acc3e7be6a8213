using System.Text.Json.Nodes;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Adapters.Journal;

/// <summary>
/// One stream as read: its JSON records in order, the version a conditional append names (a file's
/// length, a Kubernetes object's resourceVersion), and notes for people (a record set aside).
/// </summary>
public sealed record JournalRead(IReadOnlyList<JsonObject> Records, string Version, IReadOnlyList<string> Notes)
{
    public static JournalRead Empty { get; } = new(Array.Empty<JsonObject>(), JournalVersions.Empty, Array.Empty<string>());
}

/// <summary>What an append did: the stream's new version, and notes for people.</summary>
public sealed record JournalAppend(string Version, IReadOnlyList<string> Notes);

/// <summary>Version helpers shared by backends.</summary>
public static class JournalVersions
{
    /// <summary>The version of a stream that does not exist yet.</summary>
    public const string Empty = "0";
}

/// <summary>
/// Append-only storage of named record streams (one per incident, one per environment), the medium
/// only: a stream is a list of JSON objects that only grows. Appends can be conditional on the
/// version last read, exactly as a Kubernetes update is conditional on resourceVersion, so a backend
/// that keeps one object per stream (a ConfigMap appended under resourceVersion preconditions) fits
/// the same interface as the local files. Backends know nothing of incidents or rollbacks.
/// </summary>
public interface IJournalBackend
{
    /// <summary>For messages: where the streams live (a directory, a namespace).</summary>
    string Description { get; }

    /// <summary>For messages: where one stream lives (a file, an object).</summary>
    string Locate(string stream);

    /// <summary>The stream's records; an absent stream is empty at version <see cref="JournalVersions.Empty"/>.</summary>
    /// <exception cref="JournalCorruptException">A complete record that is not a JSON object.</exception>
    JournalRead Read(string stream);

    /// <summary>
    /// Appends <paramref name="records"/> in one write. With <paramref name="expectedVersion"/>, only
    /// when the stream is still at that version (else <see cref="JournalConflictException"/>, nothing written).
    /// </summary>
    JournalAppend Append(string stream, IReadOnlyList<JsonObject> records, string? expectedVersion = null);

    /// <summary>The names of the streams of one kind (<c>incident</c>, <c>environment</c>), in no particular order.</summary>
    IReadOnlyList<string> List(string kind);
}

/// <summary>Stream names: <c>kind/name</c>, both plain words, so every backend can map them to a file or an object name.</summary>
public static class JournalStreams
{
    private static readonly System.Text.RegularExpressions.Regex s_name =
        new("^(?<kind>[a-z][a-z0-9-]{0,31})/(?<name>[A-Za-z0-9][A-Za-z0-9._-]{0,127})$", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    public static string Of(string kind, string name)
    {
        string stream = $"{kind}/{name}";
        Parse(stream);
        return stream;
    }

    public static (string Kind, string Name) Parse(string stream)
    {
        var match = s_name.Match(stream ?? string.Empty);
        if (!match.Success || match.Groups["name"].Value is "." or "..")
        {
            throw new ArgumentException($"'{stream}' is not a journal stream name (kind/name with letters, digits, '.', '_' or '-').", nameof(stream));
        }
        return (match.Groups["kind"].Value, match.Groups["name"].Value);
    }
}

/// <summary>A complete record of a stream is not a JSON object: someone edited the journal, or the medium is damaged.</summary>
public sealed class JournalCorruptException : KfmException
{
    public JournalCorruptException(string stream, string location, int recordNumber, string detail)
        : base("JournalCorrupt", KfmErrorKind.InvalidData,
            $"Record {recordNumber} of '{location}' is not a JSON object ({detail}). The journal is append-only: restore it from backup rather than editing it.", location)
    {
        Stream = stream;
        Location = location;
        RecordNumber = recordNumber;
    }

    public string Stream { get; }
    public string Location { get; }
    public int RecordNumber { get; }
}

/// <summary>The stream moved since it was read (another writer appended): read it again and decide again.</summary>
public sealed class JournalConflictException : KfmException
{
    public JournalConflictException(string stream, string expected, string actual)
        : base("JournalConflict", KfmErrorKind.ResourceBusy,
            $"Journal stream '{stream}' changed while it was being written (expected version {expected}, found {actual}); nothing was written. Retry.", stream)
    {
    }
}

/// <summary>The medium refused a write (permissions, a full disk, a path that is not a directory).</summary>
public sealed class JournalWriteException : KfmException
{
    public JournalWriteException(string location, Exception inner)
        : base("JournalNotWritable", KfmErrorKind.WriteError,
            $"Cannot append to '{location}': {inner.Message}", location, inner)
    {
        Location = location;
    }

    public string Location { get; }
}
