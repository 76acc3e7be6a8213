using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Adapters.Journal;

/// <summary>One record of an NDJSON file and the byte offset its line starts at.</summary>
public sealed record NdjsonRecord(long Offset, JsonObject Record);

/// <summary>
/// An NDJSON file as read: its records, where the last complete line ends, and the incomplete final
/// line a crash or a full disk left (null when the file ends cleanly).
/// </summary>
public sealed record NdjsonContent(IReadOnlyList<NdjsonRecord> Records, long CompleteLength, long TornOffset, int TornLength)
{
    public bool Torn => TornLength > 0;
}

/// <summary>
/// The local-file backend: one NDJSON file per stream under a root directory
/// (<c>root/&lt;kind&gt;/&lt;name&gt;.ndjson</c>), appended under a sidecar lock and fsynced. A file's
/// length is its version. Reading one stream costs what that stream holds, never the whole history.
/// <para>
/// A crash or a full disk can leave the last line incomplete (a torn tail). Reading skips it with a
/// note; the next append records it in <c>&lt;stream&gt;.ndjson.set-aside</c> (its offset, length and
/// sha256, written and fsynced first) and starts on a new line, so the fragment stays where it was,
/// is never read as a record again and never stops a run. A damaged complete line that nobody set
/// aside still stops every reader (<see cref="JournalCorruptException"/>).
/// </para>
/// </summary>
public sealed class NdjsonFileJournal : IJournalBackend
{
    public const string Extension = ".ndjson";
    public const string SetAsideExtension = ".set-aside";
    private readonly IClock _clock;

    public NdjsonFileJournal(string root, IClock? clock = null)
    {
        Root = Path.GetFullPath(root);
        _clock = clock ?? SystemClock.Instance;
    }

    public string Root { get; }

    public string Description => $"directory {Root}";

    public string Locate(string stream)
    {
        var (kind, name) = JournalStreams.Parse(stream);
        return Path.Combine(Root, kind, name + Extension);
    }

    public JournalRead Read(string stream)
    {
        string path = Locate(stream);
        if (Directory.Exists(path))
        {
            throw new JournalWriteException(path, new IOException("a directory stands where the journal file should be"));
        }
        if (!File.Exists(path))
        {
            return JournalRead.Empty;
        }
        byte[] bytes;
        try
        {
            bytes = ReadShared(path);
        }
        catch (FileNotFoundException)
        {
            return JournalRead.Empty;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new JournalWriteException(path, ex);
        }
        var setAside = ReadSetAside(path);
        NdjsonContent content = Parse(stream, path, bytes, 0, setAside);
        var notes = new List<string>();
        if (content.Torn && !setAside.Any(s => s.Offset == content.TornOffset))
        {
            notes.Add(TornNote(path, content.TornOffset, content.TornLength, appended: false));
        }
        return new JournalRead(content.Records.Select(r => r.Record).ToList(), bytes.LongLength.ToString(CultureInfo.InvariantCulture), notes);
    }

    public JournalAppend Append(string stream, IReadOnlyList<JsonObject> records, string? expectedVersion = null) =>
        Append(stream, records, expectedVersion, durable: true);

    /// <summary>
    /// Appends to many streams, each under its lock, leaving the flush to disk to the operating system
    /// (for a bulk import whose source stays in place: thousands of fsyncs would take minutes).
    /// </summary>
    public void AppendMany(IEnumerable<(string Stream, IReadOnlyList<JsonObject> Records)> batches)
    {
        foreach (var (stream, records) in batches)
        {
            Append(stream, records, null, durable: false);
        }
    }

    private JournalAppend Append(string stream, IReadOnlyList<JsonObject> records, string? expectedVersion, bool durable)
    {
        string path = Locate(stream);
        var notes = new List<string>();
        var text = new StringBuilder();
        foreach (JsonObject record in records)
        {
            text.Append(record.ToJsonString()).Append('\n');
        }
        using FileLock streamLock = FileLock.Acquire(path);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            using var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
            long length = file.Length;
            string version = length.ToString(CultureInfo.InvariantCulture);
            if (expectedVersion is not null && expectedVersion != version)
            {
                throw new JournalConflictException(stream, expectedVersion, version);
            }
            string prefix = string.Empty;
            if (length > 0 && LastByte(file, length) != (byte)'\n')
            {
                (long offset, byte[] tail) = Tail(file, length);
                if (!IsObject(tail))
                {
                    // Set the fragment aside first: if the write below is cut too, the fragment is still known.
                    SetAside(path, offset, tail);
                    notes.Add(TornNote(path, offset, tail.Length, appended: true));
                }
                prefix = "\n";
            }
            if (records.Count == 0 && prefix.Length == 0)
            {
                return new JournalAppend(version, notes);
            }
            byte[] bytes = Encoding.UTF8.GetBytes(prefix + text);
            file.Seek(0, SeekOrigin.End);
            file.Write(bytes);
            file.Flush(flushToDisk: durable);
            return new JournalAppend((length + bytes.LongLength).ToString(CultureInfo.InvariantCulture), notes);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new JournalWriteException(path, ex);
        }
    }

    public IReadOnlyList<string> List(string kind)
    {
        string directory = Path.Combine(Root, JournalStreams.Parse(kind + "/x").Kind);
        if (!Directory.Exists(directory))
        {
            return Array.Empty<string>();
        }
        return Directory.EnumerateFiles(directory, "*" + Extension)
            .Select(f => Path.GetFileNameWithoutExtension(f))
            .Select(name => $"{kind}/{name}")
            .ToList();
    }

    /// <summary>
    /// Reads an NDJSON file from <paramref name="from"/> (a line start): every complete record, where the
    /// complete part ends, and a torn final line. For importing files written in the single-file layout.
    /// </summary>
    public static NdjsonContent ReadFile(string path, long from)
    {
        byte[] bytes;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            long length = stream.Length;
            if (from >= length)
            {
                return new NdjsonContent(Array.Empty<NdjsonRecord>(), length, 0, 0);
            }
            stream.Seek(from, SeekOrigin.Begin);
            bytes = new byte[length - from];
            stream.ReadExactly(bytes);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new JournalWriteException(path, ex);
        }
        return Parse(path, path, bytes, from, ReadSetAside(path));
    }

    private static NdjsonContent Parse(string stream, string path, byte[] bytes, long baseOffset, IReadOnlyList<SetAsideEntry> setAside)
    {
        var records = new List<NdjsonRecord>();
        int start = 0, number = 0;
        while (start < bytes.Length)
        {
            int end = Array.IndexOf(bytes, (byte)'\n', start);
            if (end < 0)
            {
                break;
            }
            number++;
            var line = new ReadOnlySpan<byte>(bytes, start, end - start);
            if (!line.Trim((byte)'\r').IsEmpty)
            {
                JsonObject? record = TryParse(line, out string? problem);
                if (record is not null)
                {
                    records.Add(new NdjsonRecord(baseOffset + start, record));
                }
                else if (!IsSetAside(setAside, baseOffset + start, line))
                {
                    throw new JournalCorruptException(stream, path, number, problem!);
                }
            }
            start = end + 1;
        }
        if (start < bytes.Length)
        {
            var tail = new ReadOnlySpan<byte>(bytes, start, bytes.Length - start);
            // A complete object that only lacks its newline is a record; anything else is a torn write.
            if (TryParse(tail, out _) is { } last)
            {
                records.Add(new NdjsonRecord(baseOffset + start, last));
                return new NdjsonContent(records, baseOffset + bytes.Length, 0, 0);
            }
            return new NdjsonContent(records, baseOffset + start, baseOffset + start, tail.Length);
        }
        return new NdjsonContent(records, baseOffset + bytes.Length, 0, 0);
    }

    private static JsonObject? TryParse(ReadOnlySpan<byte> line, out string? problem)
    {
        try
        {
            if (JsonNode.Parse(line) is JsonObject record)
            {
                problem = null;
                return record;
            }
            problem = "not an object";
        }
        catch (JsonException ex)
        {
            problem = $"invalid JSON at byte {ex.BytePositionInLine}";
        }
        return null;
    }

    private static bool IsObject(byte[] bytes) => TryParse(bytes, out _) is not null;

    private static string TornNote(string path, long offset, int length, bool appended) => appended
        ? $"The last record of '{path}' was cut off mid-write ({length} bytes at offset {offset}: a crash or a full disk). It is set aside (listed in {Path.GetFileName(path)}{SetAsideExtension}, left in place, never read as a record) and the journal continues on a new line."
        : $"The last record of '{path}' was cut off mid-write ({length} bytes at offset {offset}: a crash or a full disk). It is skipped; the next entry sets it aside and starts on a new line.";

    private static byte[] ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    private static byte LastByte(FileStream file, long length)
    {
        file.Seek(length - 1, SeekOrigin.Begin);
        return (byte)file.ReadByte();
    }

    /// <summary>The incomplete last line: where it starts and its bytes.</summary>
    private static (long Offset, byte[] Bytes) Tail(FileStream file, long length)
    {
        const int Chunk = 4096;
        long position = length;
        long start = 0;
        var buffer = new byte[Chunk];
        while (position > 0)
        {
            int size = (int)Math.Min(Chunk, position);
            position -= size;
            file.Seek(position, SeekOrigin.Begin);
            file.ReadExactly(buffer, 0, size);
            int newline = Array.LastIndexOf(buffer, (byte)'\n', size - 1, size);
            if (newline >= 0)
            {
                start = position + newline + 1;
                break;
            }
        }
        var tail = new byte[length - start];
        file.Seek(start, SeekOrigin.Begin);
        file.ReadExactly(tail);
        return (start, tail);
    }

    private sealed record SetAsideEntry(long Offset, int Length, string Sha256);

    private void SetAside(string path, long offset, byte[] fragment)
    {
        string sha = Hash(fragment);
        if (ReadSetAside(path).Any(s => s.Offset == offset && s.Sha256 == sha))
        {
            return;
        }
        var entry = new JsonObject
        {
            ["offset"] = offset,
            ["length"] = fragment.Length,
            ["sha256"] = sha,
            ["at"] = _clock.UtcNow.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
            ["why"] = "incomplete final line (torn write)",
        };
        using var sidecar = new FileStream(path + SetAsideExtension, FileMode.Append, FileAccess.Write, FileShare.Read);
        // A sidecar line cut short itself names nothing; the fragment stays torn and is retried next time.
        sidecar.Write(Encoding.UTF8.GetBytes("\n" + entry.ToJsonString() + "\n"));
        sidecar.Flush(flushToDisk: true);
    }

    private static IReadOnlyList<SetAsideEntry> ReadSetAside(string path)
    {
        string sidecar = path + SetAsideExtension;
        if (!File.Exists(sidecar))
        {
            return Array.Empty<SetAsideEntry>();
        }
        var entries = new List<SetAsideEntry>();
        foreach (string line in File.ReadAllLines(sidecar))
        {
            try
            {
                if (JsonNode.Parse(line) is JsonObject o && o["offset"] is JsonValue offset && o["length"] is JsonValue length && o["sha256"] is JsonValue sha)
                {
                    entries.Add(new SetAsideEntry(offset.GetValue<long>(), length.GetValue<int>(), sha.GetValue<string>()));
                }
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
            {
                // An unreadable sidecar line sets nothing aside.
            }
        }
        return entries;
    }

    private static bool IsSetAside(IReadOnlyList<SetAsideEntry> setAside, long offset, ReadOnlySpan<byte> line)
    {
        foreach (SetAsideEntry entry in setAside)
        {
            if (entry.Offset == offset && entry.Length == line.Length && entry.Sha256 == Hash(line))
            {
                return true;
            }
        }
        return false;
    }

    private static string Hash(ReadOnlySpan<byte> bytes) => "sha256:" + Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant();
}
