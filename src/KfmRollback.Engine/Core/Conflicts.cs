namespace KfmRollback.Engine.Core;

/// <summary>
/// The one RetryOnConflict loop (client-go's retry.RetryOnConflict): controllers write status all the
/// time, which moves resourceVersion, so a change sent under a resourceVersion precondition may meet a
/// conflict. The answer is to read afresh and decide again: <paramref name="attempt"/> reads, decides and
/// sends; an error <paramref name="conflictErrorId"/> runs it again, at most five times in all.
/// </summary>
public static class Conflicts
{
    public const int MaxTries = 5;

    public static async Task<T> RetryAsync<T>(string conflictErrorId, Func<Task<T>> attempt)
    {
        for (int tries = 1; ; tries++)
        {
            try
            {
                return await attempt().ConfigureAwait(false);
            }
            catch (KfmException ex) when (ex.ErrorId == conflictErrorId && tries < MaxTries)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50 * tries)).ConfigureAwait(false);
            }
        }
    }
}
