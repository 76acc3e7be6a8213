using System.Diagnostics;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Receipts;

/// <summary>
/// Exclusive store lock. FileShare.None takes an OS advisory lock (flock on Unix), which the kernel drops
/// if the holder dies, so a crashed writer cannot leave the store locked forever.
/// </summary>
internal sealed class StoreLock : IDisposable
{
    private readonly FileStream _stream;

    private StoreLock(FileStream stream) => _stream = stream;

    public static StoreLock Acquire(string lockPath, TimeSpan timeout, string storeDescription)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return new StoreLock(new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
            }
            catch (IOException ex) when (IsHeldByOther(ex))
            {
                if (watch.Elapsed >= timeout)
                {
                    throw new KfmException("ReceiptStoreBusy", KfmErrorKind.ResourceBusy,
                        $"Another writer has held the receipt store lock for {timeout.TotalSeconds:0} s ({storeDescription}). " +
                        "Wait for it to finish and retry; if no KfmRollback process is running, check the lock file's owner with `fuser`.", lockPath, ex);
                }
                Thread.Sleep(50);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw ReceiptStore.NotWritable(storeDescription, "its lock file cannot be created", ex);
            }
        }
    }

    // EWOULDBLOCK surfaces as errno 11 on Linux; Windows reports sharing/lock violations.
    private static bool IsHeldByOther(IOException ex) =>
        ex is not (DirectoryNotFoundException or FileNotFoundException or PathTooLongException) &&
        ex.HResult is 11 or 35 or unchecked((int)0x80070020) or unchecked((int)0x80070021);

    public void Dispose() => _stream.Dispose();
}
