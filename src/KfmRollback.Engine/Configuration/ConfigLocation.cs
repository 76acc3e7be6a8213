using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Configuration;

/// <summary>
/// Where in a configuration source something was found: the source name plus 1-based line and
/// column. Every configuration error is prefixed with it so editors can jump to the spot.
/// </summary>
public readonly record struct ConfigLocation(string Source, long Line, long Column)
{
    public override string ToString() => $"{Source}:{Line}:{Column}";

    /// <summary>Builds the exception for a failure at this location. The message never carries
    /// a configured value that could be a secret; callers pass names only.</summary>
    internal KfmException Error(string errorId, string message, string keyPath)
    {
        return new KfmException(errorId, KfmErrorKind.InvalidData, $"{this}: {message}", keyPath);
    }
}
