using KfmRollback.Engine.Adapters.Kubernetes;
using System.Net;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Rollback.Preflight;

/// <summary>
/// A planned Kubernetes write sent once with <c>dryRun=All</c> (Kubernetes API conventions, "Dry-run"):
/// the apiserver decodes, defaults, validates and admits it (admission webhooks, quotas, immutable
/// fields) exactly as the real write, and persists nothing. What it refuses becomes a failed check
/// with the apiserver's own message, so the refusal comes in the plan, not half-way through.
/// </summary>
public static class ServerDryRun
{
    /// <summary>The dryRun query value that asks for every dry-run stage.</summary>
    public const string All = "All";

    public const string CheckName = "server-dry-run";

    public static async Task<PreflightCheck> CheckAsync(string environment, string target, Func<Task> dryRun, CancellationToken cancellationToken)
    {
        try
        {
            await dryRun().ConfigureAwait(false);
            return new PreflightCheck
            {
                Environment = environment, Check = CheckName, Target = target, Verdict = PreflightVerdict.Passed,
                Saw = "the apiserver validated and admitted it (dryRun=All, nothing stored)",
            };
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return Refused(environment, target, ex);
        }
    }

    /// <summary>A check that could not be made (the object to write cannot be read): failed, since what cannot be checked is not safe.</summary>
    public static PreflightCheck Unchecked(string environment, string target, KfmException why) => new()
    {
        Environment = environment, Check = CheckName, Target = target, Verdict = PreflightVerdict.Failed,
        Saw = why.Message.TrimEnd('.'), ErrorId = PreflightErrorIds.DryRunRefused, Kind = why.Kind,
        Advice = "The write could not be dry-run, so whether the apiserver would accept it is unknown. Resolve the error, then plan again.",
    };

    private static PreflightCheck Refused(string environment, string target, Exception ex)
    {
        HttpStatusCode? status = KubernetesErrors.Status(ex);
        string message = status is null && ex is KfmException k ? k.Message : KubernetesErrors.StatusMessage(ex);
        string saw = status is null ? $"the dry run could not be sent: {message}" : $"the apiserver refused the dry run ({(int)status} {status}): {message}";
        (string id, KfmErrorKind kind, string advice) = Classify(status, message);
        return new PreflightCheck
        {
            Environment = environment, Check = CheckName, Target = target, Verdict = PreflightVerdict.Failed,
            Saw = saw.TrimEnd('.'), ErrorId = id, Kind = kind, Advice = advice,
        };
    }

    private static (string, KfmErrorKind, string) Classify(HttpStatusCode? status, string message)
    {
        if (message.Contains("admission webhook", StringComparison.Ordinal) && message.Contains("denied the request", StringComparison.Ordinal))
        {
            return (PreflightErrorIds.AdmissionDenied, KfmErrorKind.PermissionDenied,
                "An admission policy refuses this rollback; the real write would be refused the same way. Ask the policy's owners for an exception recorded on the incident, or: " + PreflightErrorIds.WaysOut);
        }
        if (status == HttpStatusCode.Forbidden && message.Contains("exceeded quota", StringComparison.Ordinal))
        {
            return (PreflightErrorIds.QuotaExceeded, KfmErrorKind.InvalidOperation,
                "A ResourceQuota of the namespace would refuse it: raise the quota or free capacity, or: " + PreflightErrorIds.WaysOut);
        }
        if (status == HttpStatusCode.UnprocessableEntity && message.Contains("field is immutable", StringComparison.Ordinal))
        {
            return (PreflightErrorIds.ImmutableField, KfmErrorKind.InvalidOperation,
                "The target changes a field the apiserver never lets change, so no patch can reach it. " + PreflightErrorIds.WaysOut);
        }
        if (status == HttpStatusCode.Forbidden)
        {
            return (PreflightErrorIds.DryRunRefused, KfmErrorKind.PermissionDenied,
                "A dry run needs the same verbs as the write (docs/rbac.md); grant them, or: " + PreflightErrorIds.WaysOut);
        }
        return (PreflightErrorIds.DryRunRefused, status is null ? KfmErrorKind.ConnectionError : KfmErrorKind.InvalidOperation,
            status is null ? "Check the cluster connection, then plan again." : PreflightErrorIds.WaysOut);
    }
}
