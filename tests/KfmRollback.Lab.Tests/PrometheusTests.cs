using System.Globalization;
using System.Text.Json.Nodes;
using Xunit;

namespace KfmRollback.Lab.Tests;

/// <summary>A real Prometheus scrapes the stand-in API; regressions show in PromQL.</summary>
public class PrometheusTests
{
    const string Binary = "/usr/bin/prometheus";

    static async Task EnsurePrometheus()
    {
        if (File.Exists(Binary)) return;
        if (Environment.UserName == "root")
        {
            var r = await Lab.Exec("/usr/bin/env", ["DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", "prometheus"], TimeSpan.FromMinutes(5));
            if (!File.Exists(Binary)) { await Lab.Exec("/usr/bin/apt-get", ["update", "-q"], TimeSpan.FromMinutes(5)); await Lab.Exec("/usr/bin/env", ["DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", "prometheus"], TimeSpan.FromMinutes(5)); }
        }
        Assert.True(File.Exists(Binary), $"{Binary} is missing: install it with `apt-get install -y prometheus` (Debian package) and rerun");
    }

    static async Task<double?> Query(HttpClient h, string url, string promql)
    {
        var text = await h.GetStringAsync($"{url}/api/v1/query?query={Uri.EscapeDataString(promql)}");
        var o = JsonNode.Parse(text)!;
        Assert.Equal("success", o.Str("status"));
        var res = (JsonArray)o.At("data.result")!;
        if (res.Count == 0) return null;
        var v = ((JsonArray)res[0]!["value"]!)[1]!.GetValue<string>();
        return v == "NaN" ? double.NaN : double.Parse(v, CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task RegressionsShowInPromQL()
    {
        await EnsurePrometheus();
        await using var lab = await Lab.Start(prometheus: true, argoAutoSync: false);
        var url = lab.Host.PrometheusUrl!;
        Assert.StartsWith("http://127.0.0.1:", url);
        using var h = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        const string errors500 = "sum(rate(http_requests_total{code=\"500\"}[30s]))";
        const string errors5xx = "sum(rate(http_requests_total{code=~\"5..\"}[30s]))";
        const string p95 = "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[30s])))";

        // Baseline on the good build: traffic is scraped, no 500s.
        await lab.RolledOut();
        await Lab.Eventually(async () => await Query(h, url, "sum(rate(http_requests_total[30s]))") > 0, "traffic in Prometheus", 60);
        await Lab.Eventually(async () => await Query(h, url, p95) is double q && !double.IsNaN(q), "p95 available", 60);
        Assert.Null(await Query(h, url, errors500));

        // 5xx regression.
        (await lab.K("set", "image", "deployment/kfm-api", "-n", "kfm", $"api={lab.Host.Images.Get("bad-5xx").Image}")).Ok();
        await Lab.Eventually(async () => await Query(h, url, errors500) > 0, "500 rate > 0", 60);
        Assert.True(await Query(h, url, errors5xx) > 0);

        // Latency regression.
        (await lab.K("set", "image", "deployment/kfm-api", "-n", "kfm", $"api={lab.Host.Images.Get("bad-latency").Image}")).Ok();
        // The build sleeps 600 ms per governed request, so p95 must rise above 0.5 s.
        await Lab.Eventually(async () => await Query(h, url, p95) > 0.5, "p95 > 0.5 s", 60);
    }
}
