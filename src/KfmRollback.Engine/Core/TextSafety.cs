namespace KfmRollback.Engine.Core;

/// <summary>
/// Guards free text that will be stored or sent (incident reasons, timeline events, notes, comms)
/// against secrets. Implementations report the kind of secret found, never the value.
/// </summary>
public interface ITextSafety
{
    /// <summary>Throws a <see cref="KfmException"/> naming <paramref name="field"/> when <paramref name="text"/> holds a secret.</summary>
    void EnsurePolicySafe(string? text, string field);
}
