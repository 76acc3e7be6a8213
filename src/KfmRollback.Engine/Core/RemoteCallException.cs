namespace KfmRollback.Engine.Core;

/// <summary>
/// A failed call to a remote system (a git remote, a blob service), as an adapter reports it: which
/// kind of failure, which operation, and a detail safe to show (no credential, no request or header).
/// Steps map it onto their own KfmException ids and next steps.
/// </summary>
public abstract class RemoteCallException<TFailure> : Exception where TFailure : struct, Enum
{
    protected RemoteCallException(string system, TFailure failure, string operation, string detail, Exception? inner)
        : base($"{system} {operation} failed ({failure}): {detail}", inner)
    {
        Failure = failure;
        Operation = operation;
        Detail = detail;
    }

    public TFailure Failure { get; }
    public string Operation { get; }
    public string Detail { get; }
}
