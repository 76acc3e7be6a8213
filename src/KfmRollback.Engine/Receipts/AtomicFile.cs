
namespace KfmRollback.Engine.Receipts;

/// <summary>
/// Crash-safe writes: content goes to a temp file in the same directory, is fsynced, then renamed into
/// place, so a reader sees the old file or the new one, never half of either.
/// </summary>
internal static class AtomicFile
{
    /// <summary>Creates <paramref name="path"/>; fails (IOException) rather than replace an existing file.</summary>
    public static void WriteNew(string path, byte[] content) => Write(path, content, overwrite: false);

    /// <summary>Replaces <paramref name="path"/> in one rename (used for the ledger, under the store lock).</summary>
    public static void Replace(string path, byte[] content) => Write(path, content, overwrite: true);

    private static void Write(string path, byte[] content, bool overwrite)
    {
        var temp = $"{path}.tmp-{Guid.NewGuid():N}";
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }
            // overwrite:false links then unlinks on Unix, so an existing target is never clobbered.
            File.Move(temp, path, overwrite);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
