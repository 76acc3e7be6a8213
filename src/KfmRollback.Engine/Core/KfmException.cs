namespace KfmRollback.Engine.Core;

/// <summary>
/// What kind of failure an engine error is. The cmdlet layer maps each kind onto a PowerShell
/// ErrorCategory; the engine itself knows nothing of PowerShell.
/// </summary>
public enum KfmErrorKind
{
    InvalidArgument,
    InvalidData,
    InvalidOperation,
    ObjectNotFound,
    ResourceExists,
    ResourceBusy,
    PermissionDenied,
    SecurityError,
    ConnectionError,
    OperationTimeout,
    WriteError,
    ReadError,
    NotInstalled,
    /// <summary>Fail-closed refusal: the step is ambiguous and a parameter must resolve it.</summary>
    Ambiguous,
}

/// <summary>
/// Every failure the engine reports on purpose. <see cref="ErrorId"/> is stable (it becomes the
/// FullyQualifiedErrorId) and the message always says what to do next. Messages must never carry a
/// secret or a restricted identifier: build them from names and hashes only.
/// </summary>
public class KfmException : Exception
{
    public KfmException(string errorId, KfmErrorKind kind, string message, object? target = null, Exception? inner = null)
        : base(message, inner)
    {
        ErrorId = errorId;
        Kind = kind;
        Target = target;
    }

    public string ErrorId { get; }
    public KfmErrorKind Kind { get; }
    public object? Target { get; }
}
