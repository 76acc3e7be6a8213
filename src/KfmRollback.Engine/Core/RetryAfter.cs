using System.Net.Http.Headers;

namespace KfmRollback.Engine.Core;

/// <summary>The one reading of an HTTP Retry-After answer (RFC 9110 10.2.3): seconds or an HTTP date.</summary>
public static class RetryAfter
{
    /// <summary>How long <paramref name="retryAfter"/> asks to wait: <paramref name="absent"/> when it says nothing, never below zero, at most <paramref name="cap"/>.</summary>
    public static TimeSpan Delay(RetryConditionHeaderValue? retryAfter, TimeSpan absent, TimeSpan cap, DateTimeOffset now)
    {
        TimeSpan wait = retryAfter?.Delta ?? (retryAfter?.Date is { } date ? date - now : absent);
        return wait < TimeSpan.Zero ? TimeSpan.Zero : wait > cap ? cap : wait;
    }
}
