using KfmRollback.Engine.Configuration.Binding;

namespace KfmRollback.Engine.Configuration;

/// <summary>
/// A named set of environments rolled back together in waves (Invoke-KfmRollback -Fleet): every
/// environment is planned before any changes; a wave starts only after the one before it rolled
/// out, baked and (with verify) passed verification checklist A and B.
/// </summary>
public sealed class FleetConfig : IConfigSection
{
    /// <summary>The waves, in order; each names the environments that roll back at the same time.</summary>
    [RequiredKey, NonEmpty]
    public IReadOnlyList<FleetWave> Waves { get; init; } = Array.Empty<FleetWave>();

    /// <summary>How long a wave runs on the rolled-back build before it is verified and the next starts.</summary>
    public TimeSpan BakeTime { get; init; } = TimeSpan.Zero;

    /// <summary>Verify each wave (checklist A health and B policy invariants) after its bake; a failure stops the fleet.</summary>
    public bool Verify { get; init; } = true;

    void IConfigSection.Validate(ValidationScope scope)
    {
        if (BakeTime < TimeSpan.Zero)
            throw scope.Invalid("bake_time", "must not be negative.");
    }
}

/// <summary>One wave of a fleet.</summary>
public sealed class FleetWave : IConfigSection
{
    /// <summary>Environment names (keys under environments).</summary>
    [RequiredKey, NonEmpty]
    public IReadOnlyList<string> Environments { get; init; } = Array.Empty<string>();

    void IConfigSection.Validate(ValidationScope scope) { }
}
