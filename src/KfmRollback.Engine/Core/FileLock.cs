namespace KfmRollback.Engine.Core;

/// <summary>
/// An exclusive lock on a sidecar <c>.lock</c> file, so two processes appending to the same journal
/// or store never interleave. The lock file is left in place: deleting it would race a waiter.
/// </summary>
public sealed class FileLock : IDisposable
{
    private readonly FileStream _stream;

    private FileLock(FileStream stream) => _stream = stream;

    public static FileLock Acquire(string protectedPath, TimeSpan? timeout = null)
    {
        string lockPath = protectedPath + ".lock";
        DateTime deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        string? directory = Path.GetDirectoryName(Path.GetFullPath(lockPath));
        try
        {
            if (!string.IsNullOrEmpty(directory))
            {
                Directory.CreateDirectory(directory);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw NotWritable(protectedPath, ex);
        }

        while (true)
        {
            try
            {
                return new FileLock(new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
            }
            catch (UnauthorizedAccessException ex)
            {
                throw NotWritable(protectedPath, ex);
            }
            catch (IOException ex) when (DateTime.UtcNow < deadline && !IsPathProblem(ex))
            {
                Thread.Sleep(25);
            }
            catch (IOException ex) when (IsPathProblem(ex))
            {
                throw NotWritable(protectedPath, ex);
            }
            catch (IOException ex)
            {
                throw new KfmException("FileLockTimeout", KfmErrorKind.ResourceBusy,
                    $"Another process has held '{lockPath}' for too long. Check for a stuck KfmRollback job, then retry.", protectedPath, ex);
            }
        }
    }

    private static bool IsPathProblem(IOException ex) =>
        ex is DirectoryNotFoundException or FileNotFoundException or PathTooLongException;

    private static KfmException NotWritable(string path, Exception ex) =>
        new("PathNotWritable", KfmErrorKind.WriteError,
            $"Cannot write next to '{path}': {ex.Message} Choose a writable location.", path, ex);

    public void Dispose() => _stream.Dispose();
}
