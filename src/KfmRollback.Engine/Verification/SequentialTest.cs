using System.Globalization;

namespace KfmRollback.Engine.Verification;

/// <summary>
/// Wald's sequential probability ratio test (Wald 1945, "Sequential tests of statistical hypotheses",
/// Ann. Math. Statist. 16(2)) on the 5xx ratio, over the requests counted since the rollout converged.
/// H0: the ratio is half the limit (healthy); H1: the ratio is at the limit. After n requests with k
/// errors the log-likelihood ratio is k·ln(p1/p0) + (n−k)·ln((1−p1)/(1−p0)); it passes at or below
/// ln(β/(1−α)), fails at or above ln((1−β)/α), and otherwise needs more requests. α bounds the chance of
/// failing a build at half the limit, β the chance of passing one at the limit. Checked again at every
/// round, on the growing count, it decides as soon as the evidence suffices, and never before
/// <c>min_requests</c>.
/// </summary>
public static class SequentialTest
{
    /// <param name="RequestsToPass">
    /// The fewest requests in all (never fewer than <c>min_requests</c>) with which the test passes if no
    /// further 5xx comes: the evidence a clean build still needs, which <c>-Wait</c> schedules its next round by.
    /// </param>
    public sealed record Outcome(Verdict Verdict, double LogLikelihoodRatio, double PassBelow, double FailAbove, double P0, double P1, long RequestsToPass)
    {
        /// <summary>The outcome as display text in a check's evidence (never read back: a wait reads <see cref="CheckResult.Reading"/>).</summary>
        public void AddTo(IDictionary<string, string> evidence)
        {
            evidence["sprt_requests_to_pass"] = RequestsToPass.ToString(CultureInfo.InvariantCulture);
            evidence["sprt_llr"] = LogLikelihoodRatio.ToString("0.###", CultureInfo.InvariantCulture);
            evidence["sprt_pass_at"] = PassBelow.ToString("0.###", CultureInfo.InvariantCulture);
            evidence["sprt_fail_at"] = FailAbove.ToString("0.###", CultureInfo.InvariantCulture);
            evidence["sprt_p0"] = P0.ToString("0.#####", CultureInfo.InvariantCulture);
            evidence["sprt_p1"] = P1.ToString("0.#####", CultureInfo.InvariantCulture);
        }
    }

    /// <summary>The verdict for <paramref name="errors"/> of <paramref name="requests"/> against <paramref name="limit"/>; Inconclusive below <paramref name="minRequests"/>.</summary>
    public static Outcome ErrorRatio(double requests, double errors, double limit, int minRequests, double alpha, double beta)
    {
        if (limit <= 0 || limit >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(limit), "the 5xx limit must be strictly between 0 and 1");
        }
        double n = Math.Max(0, Math.Round(requests)), k = Math.Min(n, Math.Max(0, Math.Round(errors)));
        double p1 = limit, p0 = limit / 2;
        double llr = k * Math.Log(p1 / p0) + (n - k) * Math.Log((1 - p1) / (1 - p0));
        double passAt = Math.Log(beta / (1 - alpha)), failAt = Math.Log((1 - beta) / alpha);
        // k errors and then only clean requests: k·ln(p1/p0) + (n−k)·ln((1−p1)/(1−p0)) ≤ passAt, solved for n.
        double clean = Math.Max(0, (passAt - k * Math.Log(p1 / p0)) / Math.Log((1 - p1) / (1 - p0)));
        long requestsToPass = Math.Max(minRequests, (long)Math.Ceiling(k + clean - 1e-9));
        Verdict verdict = n < minRequests ? Verdict.Inconclusive
            : llr >= failAt ? Verdict.Fail
            : llr <= passAt ? Verdict.Pass
            : Verdict.Inconclusive;
        return new Outcome(verdict, llr, passAt, failAt, p0, p1, requestsToPass);
    }
}
