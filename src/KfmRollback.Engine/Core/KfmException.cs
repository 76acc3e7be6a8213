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
/// secret or a restricted identifier: build them from names and hashes only. As a last guard the
/// message passes the one redaction, the target is reduced to text, and a lower library's exception
/// is kept only as an <see cref="UpstreamError"/> (its type, status and redacted message): never its
/// request, headers, body or data, which $Error, Get-Error and RollbackResult.Error would show.
/// </summary>
public class KfmException : Exception
{
    public KfmException(string errorId, KfmErrorKind kind, string message, object? target = null, Exception? inner = null)
        : base(Safety.Redactor.Default.Text(message), UpstreamError.Scrub(inner))
    {
        ErrorId = errorId;
        Kind = kind;
        Target = SafeTarget(target);
    }

    public string ErrorId { get; }
    public KfmErrorKind Kind { get; }
    public object? Target { get; }

    /// <summary>Numbers, enums and booleans as they are; anything else as redacted text (a URL without user info).</summary>
    private static object? SafeTarget(object? target) => target switch
    {
        null => null,
        string text => Safety.Redactor.Default.Text(text),
        Uri uri => Safety.Redactor.Default.Url(uri.OriginalString),
        Enum or bool or int or long or double or decimal => target,
        _ => Safety.Redactor.Default.Text(target.ToString()),
    };
}

/// <summary>
/// A lower library's exception (KubernetesClient, HttpClient, Octokit, LibGit2Sharp) as it may be kept:
/// its type, HTTP status when it had one, redacted message and stack trace, with its own cause
/// scrubbed the same way. KubernetesClient's HttpOperationException, for one, keeps the request
/// with its Authorization header and the body sent (Secret data, Helm values): none of that is here.
/// </summary>
public sealed class UpstreamError : Exception
{
    private readonly string? _stackTrace;

    private UpstreamError(Exception original)
        : base(Safety.Redactor.Default.Text(original.Message), Scrub(original.InnerException))
    {
        OriginalType = original.GetType().FullName ?? original.GetType().Name;
        StatusCode = StatusOf(original);
        _stackTrace = original.StackTrace;
        HResult = original.HResult;
    }

    /// <summary>The type of the exception this stands for, e.g. k8s.Autorest.HttpOperationException.</summary>
    public string OriginalType { get; }

    /// <summary>The HTTP status the lower library reported, when it reported one.</summary>
    public int? StatusCode { get; }

    public override string? StackTrace => _stackTrace;

    public override string ToString() =>
        $"{OriginalType}{(StatusCode is { } code ? $" (HTTP {code})" : "")}: {Message}" +
        (InnerException is null ? "" : $"{System.Environment.NewLine} ---> {InnerException}") +
        (_stackTrace is null ? "" : System.Environment.NewLine + _stackTrace);

    /// <summary>
    /// Null for null; a KfmException or UpstreamError as it is (built safe); anything else scrubbed.
    /// An AggregateException keeps its first cause only (the others say the same or nothing new).
    /// </summary>
    public static Exception? Scrub(Exception? exception) => exception switch
    {
        null => null,
        KfmException or UpstreamError => exception,
        OperationCanceledException canceled when canceled.InnerException is null && canceled.GetType() == typeof(OperationCanceledException) => exception,
        _ => new UpstreamError(exception),
    };

    private static int? StatusOf(Exception exception) => exception switch
    {
        k8s.Autorest.HttpOperationException http => http.Response?.StatusCode is { } s ? (int)s : null,
        HttpRequestException request => request.StatusCode is { } s ? (int)s : null,
        Octokit.ApiException api => (int)api.StatusCode,
        _ => null,
    };
}
