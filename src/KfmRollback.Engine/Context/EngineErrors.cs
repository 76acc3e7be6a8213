using KfmRollback.Engine.Adapters.Kubernetes;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Context;

/// <summary>
/// The one mapping of a lower library's exception that escaped a step unwrapped. It lives with the
/// engine context, the one place that knows which adapters exist (an adapter's exception type is
/// the adapter's business; Core knows none of them).
/// </summary>
public static class EngineErrors
{
    /// <summary>
    /// A lower library's exception that escaped the engine unwrapped, as an engine error: an apiserver
    /// failure as KubernetesErrors words it (status, the request's method and path as the object, what
    /// to do), anything else as UnexpectedError with its type and redacted message. Never the request.
    /// </summary>
    public static KfmException FromUnexpected(Exception exception, string command) => exception switch
    {
        KfmException known => known,
        k8s.Autorest.HttpOperationException http => KubernetesErrors.Wrap(http,
            $"{command}: {http.Request?.Method.Method ?? "a request"} {http.Request?.RequestUri?.AbsolutePath ?? "to the apiserver"}", command),
        _ => new KfmException("UnexpectedError", KfmErrorKind.InvalidOperation,
            $"{command} stopped on an unexpected {exception.GetType().Name}: {exception.Message} " +
            "Rerun it (every change is rerun-safe); if it happens again, report it with the output of Get-Error, which carries no credentials.", command, exception),
    };
}
