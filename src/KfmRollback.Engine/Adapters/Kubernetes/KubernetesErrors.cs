using System.Net;
using System.Text.Json;
using k8s.Autorest;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Adapters.Kubernetes;

/// <summary>
/// Turns apiserver failures into KfmExceptions that say what failed and what to do. Only the
/// Status message (resource names and reasons) is shown; request and response bodies, which can
/// hold secret data, never are.
/// </summary>
public static class KubernetesErrors
{
    public static bool IsConflict(Exception ex) => Status(ex) == HttpStatusCode.Conflict;

    public static bool IsNotFound(Exception ex) => Status(ex) == HttpStatusCode.NotFound;

    public static bool IsInvalid(Exception ex) => Status(ex) == HttpStatusCode.UnprocessableEntity;

    public static HttpStatusCode? Status(Exception ex) => (ex as HttpOperationException)?.Response?.StatusCode;

    /// <summary>The apiserver's own Status message (e.g. "deployments.apps \"x\" not found").</summary>
    public static string StatusMessage(Exception ex)
    {
        if (ex is HttpOperationException { Response.Content: { Length: > 0 } content })
        {
            try
            {
                using JsonDocument document = JsonDocument.Parse(content);
                if (document.RootElement.TryGetProperty("message", out JsonElement message) && message.ValueKind == JsonValueKind.String)
                {
                    return message.GetString()!;
                }
            }
            catch (JsonException)
            {
                // Not a Status body (a proxy's HTML page): fall through to the status code.
            }
        }
        return Status(ex) is { } code ? $"HTTP {(int)code} {code}" : ex.Message;
    }

    /// <summary>Wraps a failed call; <paramref name="what"/> says what the module was doing.</summary>
    public static KfmException Wrap(Exception ex, string what, object? target = null)
    {
        string detail = StatusMessage(ex);
        return Status(ex) switch
        {
            HttpStatusCode.Unauthorized => new KfmException("ClusterUnauthorized", KfmErrorKind.PermissionDenied,
                $"{what}: the apiserver rejected the credentials ({detail}). Refresh the kubeconfig login or the token.", target, ex),
            HttpStatusCode.Forbidden => new KfmException("ClusterForbidden", KfmErrorKind.PermissionDenied,
                $"{what}: forbidden ({detail}). Test-KfmAccess lists what is missing; docs/rbac.md has the Role the module needs.", target, ex),
            HttpStatusCode.NotFound => new KfmException("ClusterObjectNotFound", KfmErrorKind.ObjectNotFound,
                $"{what}: {detail}. Check the names in the configuration (cluster.namespace, cluster.deployment, freeze.mechanisms).", target, ex),
            HttpStatusCode.Conflict => new KfmException("ClusterConflict", KfmErrorKind.ResourceBusy,
                $"{what}: {detail}", target, ex),
            HttpStatusCode.UnprocessableEntity => new KfmException("ClusterInvalid", KfmErrorKind.InvalidOperation,
                $"{what}: the apiserver refused the change ({detail}).", target, ex),
            HttpStatusCode.TooManyRequests or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout => new KfmException("ClusterUnavailable", KfmErrorKind.ConnectionError,
                $"{what}: the apiserver is overloaded or unavailable ({detail}). Retry shortly.", target, ex),
            { } code when (int)code >= 500 => new KfmException("ClusterServerError", KfmErrorKind.ConnectionError,
                $"{what}: the apiserver failed ({detail}). Nothing was changed by this call.", target, ex),
            _ when ex is HttpRequestException or TaskCanceledException or IOException => new KfmException("ClusterUnreachable", KfmErrorKind.ConnectionError,
                $"{what}: cannot reach the apiserver ({ex.Message}). Check the network and the kubeconfig's server address.", target, ex),
            _ => new KfmException("ClusterRequestFailed", KfmErrorKind.InvalidOperation, $"{what}: {detail}", target, ex),
        };
    }
}
