using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Verification;

/// <summary>Runs the checklist sections and returns one summary; a section that cannot run says why.</summary>
public static class VerificationRunner
{
    public static async Task<VerificationSummary> RunAsync(EnvironmentConfig environment, string? incidentId, DateTimeOffset incidentStart,
        bool health, bool policy, IClock? clock, CancellationToken cancellationToken)
    {
        var results = new List<CheckResult>();
        DateTimeOffset now = (clock ?? SystemClock.Instance).UtcNow;
        if (health)
        {
            results.AddRange(await HealthChecks.RunAsync(environment, incidentStart, now, cancellationToken).ConfigureAwait(false));
        }
        if (policy)
        {
            try
            {
                results.AddRange(await PolicyChecks.RunAsync(environment, cancellationToken).ConfigureAwait(false));
            }
            catch (KfmException ex) when (ex.Kind is KfmErrorKind.ConnectionError or KfmErrorKind.InvalidArgument)
            {
                // An API that cannot be probed is not a pass: record why, as a failed check.
                results.Add(HealthChecks.Result(environment, "B.probe", Verdict.Fail, ex.Message, new Dictionary<string, string>()));
            }
        }
        return new VerificationSummary { Environment = environment.Name, IncidentId = incidentId, Results = results };
    }

    /// <summary>
    /// Re-checks until every check passes or <paramref name="timeout"/> runs out (metrics need their
    /// window to fill with the rolled-back build's traffic), reporting each round. Returns the last
    /// summary either way: a timeout is the caller's verdict to draw, not an exception.
    /// </summary>
    public static async Task<VerificationSummary> WaitAsync(EnvironmentConfig environment, string? incidentId, DateTimeOffset incidentStart,
        bool health, bool policy, TimeSpan timeout, TimeSpan interval, Action<VerificationSummary, TimeSpan>? progress, CancellationToken cancellationToken)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            VerificationSummary summary = await RunAsync(environment, incidentId, incidentStart, health, policy, clock: null, cancellationToken).ConfigureAwait(false);
            TimeSpan left = deadline - DateTime.UtcNow;
            progress?.Invoke(summary, left);
            if (summary.Passed || left <= interval)
            {
                return summary;
            }
            await Task.Delay(interval, cancellationToken).ConfigureAwait(false);
        }
    }
}
