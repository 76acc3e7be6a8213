using System.Globalization;

namespace KfmRollback.Engine.Rollback.Runs;

/// <summary>
/// TEST-ONLY: lets a test stop a rollback at a named phase deterministically, to kill the process
/// there, press Ctrl+C there, or break the journal there, and then check what a rerun does. With
/// <c>KFM_TEST_PAUSE_AT=&lt;phase&gt;</c> (planned, locked, applied, awaiting) and
/// <c>KFM_TEST_PAUSE_FILE=&lt;path&gt;</c> set, the engine writes that file (the phase and its pid)
/// when it reaches the phase and waits, doing nothing, until the file is deleted (or the token is
/// cancelled). Both variables unset, it does nothing. Never set them outside tests.
/// </summary>
public sealed class PhaseHook
{
    public const string PauseAtVariable = "KFM_TEST_PAUSE_AT";
    public const string PauseFileVariable = "KFM_TEST_PAUSE_FILE";

    /// <summary>Phases a test can stop at.</summary>
    public const string Planned = "planned";
    public const string Locked = "locked";
    public const string Applied = "applied";
    public const string Awaiting = "awaiting";

    private readonly string? _phase;
    private readonly string? _file;
    private int _reached;

    public PhaseHook(string? phase, string? file)
    {
        _phase = string.IsNullOrWhiteSpace(phase) ? null : phase.Trim();
        _file = string.IsNullOrWhiteSpace(file) ? null : file;
    }

    /// <summary>The hook the environment asks for (none unless both test variables are set).</summary>
    public static PhaseHook FromEnvironment() =>
        new(System.Environment.GetEnvironmentVariable(PauseAtVariable), System.Environment.GetEnvironmentVariable(PauseFileVariable));

    public static PhaseHook None { get; } = new(null, null);

    /// <summary>Pauses here when this is the phase asked for (once per process: a resumed run passes on).</summary>
    public async Task ReachedAsync(string phase, CancellationToken cancellationToken)
    {
        if (_phase is null || _file is null || !string.Equals(phase, _phase, StringComparison.Ordinal) || Interlocked.Exchange(ref _reached, 1) == 1)
        {
            return;
        }
        await File.WriteAllTextAsync(_file, $"{phase} {System.Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}", cancellationToken).ConfigureAwait(false);
        while (File.Exists(_file))
        {
            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The same, for a callback that cannot await (a progress report while waiting for a rollout).</summary>
    public void Reached(string phase, CancellationToken cancellationToken)
    {
        try
        {
            ReachedAsync(phase, cancellationToken).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
            // The caller sees the cancellation itself.
        }
    }
}
