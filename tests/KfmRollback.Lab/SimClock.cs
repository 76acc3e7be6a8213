using System.Diagnostics;

namespace KfmRollback.Lab;

/// <summary>Simulated clock: starts at the real time and runs <see cref="Scale"/> times faster; can be advanced.</summary>
/// <remarks>
/// A fast clock starts one day in the past so that timestamps it writes stay behind the wall clock for a
/// long run (kubectl computes some ages, e.g. in describe, from its own clock).
/// </remarks>
public sealed class SimClock(double scale)
{
    readonly DateTimeOffset _start = DateTimeOffset.UtcNow - (scale > 1 ? TimeSpan.FromDays(1) : TimeSpan.Zero);
    readonly Stopwatch _sw = Stopwatch.StartNew();
    long _offsetTicks;

    public double Scale { get; } = scale <= 0 ? 1 : scale;
    public DateTimeOffset Now => _start + TimeSpan.FromTicks((long)(_sw.Elapsed.Ticks * Scale) + Interlocked.Read(ref _offsetTicks));
    public void Advance(TimeSpan by) => Interlocked.Add(ref _offsetTicks, by.Ticks);
    /// <summary>Real time that corresponds to a simulated duration.</summary>
    public TimeSpan ToReal(TimeSpan sim) => TimeSpan.FromTicks((long)(sim.Ticks / Scale));
}
