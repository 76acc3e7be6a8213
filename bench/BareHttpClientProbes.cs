using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Threading;
using System.Threading.Tasks;

namespace KfmRollback.Bench;

/// <summary>
/// bench/probes.ps1's reference: the same requests the module's leak comparison sends (bearer token,
/// a sampled traceparent of its own per request, User-Agent, Accept), through a bare HttpClient with
/// the module's handler settings and concurrency, keeping nothing but the body. What is left between
/// this and the module is the module's own work per probe; what is left between this and wrk is .NET's.
/// </summary>
public static class BareHttpClientProbes
{
    public static double RequestsPerSecond(string[] urls, string token, int count, int concurrency)
    {
        using var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = concurrency, UseCookies = false, UseProxy = false,
            ActivityHeadersPropagator = null, AllowAutoRedirect = false,
        };
        using var client = new HttpClient(handler);
        client.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", "KfmRollback-probe");
        client.DefaultRequestHeaders.TryAddWithoutValidation("Accept", "application/json");
        int next = -1;
        async Task Drain()
        {
            for (int i = Interlocked.Increment(ref next); i < count; i = Interlocked.Increment(ref next))
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, urls[i % urls.Length]) { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                request.Headers.TryAddWithoutValidation("traceparent", $"00-{ActivityTraceId.CreateRandom().ToHexString()}-{ActivitySpanId.CreateRandom().ToHexString()}-01");
                using HttpResponseMessage response = await client.SendAsync(request, HttpCompletionOption.ResponseContentRead).ConfigureAwait(false);
                _ = await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
            }
        }
        var watch = Stopwatch.StartNew();
        Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(Drain))).GetAwaiter().GetResult();
        return count / watch.Elapsed.TotalSeconds;
    }
}
