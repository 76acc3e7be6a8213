using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Lab.Api;
using KfmRollback.Lab.Controllers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using OpenTelemetry;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Prometheus;

namespace KfmRollback.Lab;

/// <summary>
/// Stand-in for the KFM governed API (v1). Its behaviour follows the image digest that the majority of
/// ready pods of Deployment kfm/kfm-api run, looked up in the <see cref="ImageCatalogue"/>.
/// </summary>
public sealed partial class KfmApi
{
    readonly Store _store;
    readonly ImageCatalogue _images;
    readonly string _public, _steward;
    long _requestCount;
    public CollectorRegistry Registry { get; } = Metrics.NewCustomRegistry();
    // One source per lab, so labs sharing a process (tests) export only their own spans.
    readonly ActivitySource _tracing = new("KfmRollback.Lab.KfmApi." + Guid.NewGuid().ToString("N")[..8]);
    TracerProvider? _tracer;

    /// <summary>The span a governed request's policy decision is traced as.</summary>
    public const string PolicySpanName = "policy.evaluate";

    /// <summary>
    /// Exports spans with OpenTelemetry to a Zipkin endpoint (<c>…/api/v2/spans</c>). Requests that
    /// arrive with a sampled W3C traceparent are traced: a server span continuing the caller's trace
    /// and, under it, the policy decision (<see cref="PolicySpanName"/>). Untraced traffic costs nothing.
    /// </summary>
    public void StartTracing(Uri zipkinSpans) =>
        _tracer = Sdk.CreateTracerProviderBuilder()
            .ConfigureResource(r => r.AddService("kfm-api"))
            .AddSource(_tracing.Name)
            .SetSampler(new ParentBasedSampler(new AlwaysOffSampler()))
            .AddZipkinExporter(o =>
            {
                o.Endpoint = zipkinSpans;
                o.ExportProcessorType = ExportProcessorType.Batch;
                o.BatchExportProcessorOptions = new BatchExportActivityProcessorOptions { ScheduledDelayMilliseconds = 200 };
            })
            .Build();

    public void StopTracing() { _tracer?.Dispose(); _tracing.Dispose(); }
    readonly Counter _requests;
    readonly Histogram _duration;

    public sealed record Dataset(string Id, string Title, string PolicyLabel, string Slice, long SizeBytes);
    public static readonly Dataset[] Datasets =
    [
        new("kansas_counties", "Kansas county boundaries", "public", "2026-02", 1_482_113),
        new("railroad_lines_1880", "Railroad lines, 1880", "public_generalized", "2026-01", 733_020),
        new("burial_sites", "Burial sites (precise locations)", "restricted_sensitive_location", "2026-02", 90_411),
        new("tribal_consultation_notes", "Tribal consultation notes", "restricted", "2025-12", 12_880),
    ];
    static bool IsPublic(Dataset d) => d.PolicyLabel is "public" or "public_generalized";

    /// <summary>
    /// The lab's marker of a bad policy bundle: an active revision whose digest starts with "bad"
    /// (a ref such as <c>kfm-policy@sha256-bad0…</c>). Under it the policy is inverted where it matters:
    /// public callers are allowed restricted datasets and stewards are denied them.
    /// </summary>
    public const string BadBundlePrefix = "sha256:bad";

    /// <summary>Whether the policy allows <paramref name="c"/>'s caller to see <paramref name="d"/>, under the bundle OPA runs.</summary>
    static bool Allowed(Call c, Dataset d) => c.BadPolicy ? IsPublic(d) || !c.Steward : c.Steward || IsPublic(d);

    // Data changes without a deploy: a dataset published with a new slice gets a new
    // dataset_version_id while the Deployment stays as it is (the runbook's "downstream data/catalog").
    readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _slices = new();
    // OPA's loaded bundle revision when set apart from what the API's configuration names (OPA wiring drift).
    volatile string? _opaRevision;

    /// <summary>The datasets as served now, with any slice published through <see cref="PublishDataset"/>.</summary>
    public IEnumerable<Dataset> LiveDatasets() => Datasets.Select(d => _slices.TryGetValue(d.Id, out var slice) ? d with { Slice = slice } : d);

    /// <summary>Publishes a new version (slice) of a dataset; returns its new dataset_version_id.</summary>
    public string PublishDataset(string id, string slice)
    {
        if (Datasets.All(d => d.Id != id)) throw new ArgumentException($"no dataset {id}");
        if (!System.Text.RegularExpressions.Regex.IsMatch(slice, "^[0-9]{4}-[0-9]{2}(-[0-9]{2})?$")) throw new ArgumentException("slice must be YYYY-MM or YYYY-MM-DD");
        _slices[id] = slice;
        return VersionId(LiveDatasets().First(d => d.Id == id));
    }

    /// <summary>Makes OPA report <paramref name="revision"/> as active (null: follow the configured bundle again).</summary>
    public void SetOpaRevision(string? revision) => _opaRevision = revision;

    /// <summary>
    /// OPA's status report (the document its status plugin sends): bundle <c>kfm-policy</c> with the
    /// revision of the bundle ConfigMap kfm/kfm-api-config key policy_bundle names
    /// (<c>kfm-policy@sha256-HEX</c> → <c>sha256:HEX</c>), unless <see cref="SetOpaRevision"/> overrode it.
    /// </summary>
    public JsonObject OpaStatus()
    {
        var bundles = new JsonObject();
        var (name, configured) = ConfiguredBundle(_store.Get(Resources.ConfigMaps, "kfm", "kfm-api-config").Str("data.policy_bundle"));
        string? revision = _opaRevision ?? configured;
        if (revision != null)
            bundles[name] = new JsonObject { ["name"] = name, ["active_revision"] = revision, ["last_successful_activation"] = "2026-02-01T00:00:00Z" };
        return new JsonObject { ["labels"] = new JsonObject { ["id"] = "lab-opa", ["version"] = "lab" }, ["bundles"] = bundles };
    }

    /// <summary>The bundle name and revision a ref <c>kfm-policy@sha256-HEX</c> names (<c>sha256:HEX</c>).</summary>
    static (string Name, string? Revision) ConfiguredBundle(string? configured) =>
        configured is { } c && c.IndexOf('@') is var at and > 0 ? (c[..at], c[(at + 1)..].Replace("sha256-", "sha256:")) : ("kfm-policy", null);

    /// <summary>The revision OPA runs, which the API's decisions follow.</summary>
    public string? ActivePolicyRevision() => _opaRevision ?? View().PolicyRevision;

    public KfmApi(Store store, ImageCatalogue images, string publicToken, string stewardToken)
    {
        _store = store; _images = images; _public = publicToken; _steward = stewardToken;
        var f = Metrics.WithCustomRegistry(Registry);
        _requests = f.CreateCounter("http_requests_total", "HTTP requests served by the KFM API stand-in.", new CounterConfiguration { LabelNames = ["code", "route", "method"] });
        _duration = f.CreateHistogram("http_request_duration_seconds", "HTTP request duration in seconds.", new HistogramConfiguration
        {
            LabelNames = ["route", "method"],
            Buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        });
    }

    sealed record BuildView(long Rv, CatalogueEntry? Entry, string? Digest, int ReadyPods, bool Maintenance, string? PolicyRevision);
    BuildView? _view;

    /// <summary>
    /// What the API serves as, derived from the store and cached per store resourceVersion: every
    /// governed request needs it, and re-reading the pods each time made the stand-in, not the
    /// client, the bottleneck of any probe throughput measured against it.
    /// </summary>
    BuildView View()
    {
        long rv = _store.CurrentRv;
        var view = _view;
        if (view != null && view.Rv == rv) return view;
        var (entry, digest, ready) = ReadCurrentBuild();
        var config = _store.Get(Resources.ConfigMaps, "kfm", "kfm-api-config");
        view = new BuildView(rv, entry, digest, ready, config.Str("data.maintenance") == "true", ConfiguredBundle(config.Str("data.policy_bundle")).Revision);
        _view = view;
        return view;
    }

    /// <summary>The build the API currently behaves as: majority digest over ready kfm/kfm-api pods (null: none ready).</summary>
    public (CatalogueEntry? entry, string? digest, int readyPods) CurrentBuild()
    {
        var v = View();
        return (v.Entry, v.Digest, v.ReadyPods);
    }

    (CatalogueEntry? entry, string? digest, int readyPods) ReadCurrentBuild()
    {
        var d = _store.Get(Resources.Deployments, "kfm", "kfm-api");
        if (d == null) return (null, null, 0);
        var sel = LabelSelector.FromObject(d.At("spec.selector"));
        var digests = _store.List(Resources.Pods, "kfm").Where(p => sel.Matches(p) && Workloads.PodReady(p) && p.At("metadata.deletionTimestamp") == null)
            .Select(p => (p.At("status.containerStatuses") as JsonArray)?.FirstOrDefault(c => c.Str("name") == "api") ?? (p.At("status.containerStatuses") as JsonArray)?.FirstOrDefault())
            .Select(c => c.Str("imageID") ?? "")
            .Select(id => id.Contains('@') ? id[(id.IndexOf('@') + 1)..] : id)
            .Where(x => x.Length > 0).ToList();
        if (digests.Count == 0) return (null, null, 0);
        var top = digests.GroupBy(x => x).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
        return (_images.ByDigest(top), top, digests.Count);
    }

    bool Maintenance() => View().Maintenance;

    static string Ulid()
    {
        const string A = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        var ms = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var sb = new StringBuilder();
        for (int i = 9; i >= 0; i--) sb.Append(A[(int)((ms >> (i * 5)) & 31)]);
        var rnd = RandomNumberGenerator.GetBytes(16);
        for (int i = 0; i < 16; i++) sb.Append(A[rnd[i] & 31]);
        return sb.ToString();
    }

    public static string VersionId(Dataset d) =>
        $"{d.Slice}.{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(d.Id + d.Slice)))[..8]}";

    sealed record Call(HttpContext Ctx, bool Steward, Regression Reg, string AuditRef, bool BadPolicy = false);

    static string Route(HttpContext ctx) => (ctx.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "unmatched";

    public void Map(WebApplication app)
    {
        app.Use(async (ctx, next) =>
        {
            var sw = Stopwatch.StartNew();
            // The server span continues the caller's trace (W3C traceparent); named by route, never by a path that may hold an id.
            Activity? server = null;
            if (ctx.Request.Headers.TryGetValue("traceparent", out var traceParent)
                && ActivityContext.TryParse(traceParent.ToString(), ctx.Request.Headers["tracestate"].ToString(), isRemote: true, out var parent))
                server = _tracing.StartActivity(ActivityKind.Server, parent, name: ctx.Request.Method);
            try { await next(); }
            finally
            {
                var route = Route(ctx);
                if (server != null)
                {
                    server.DisplayName = $"{ctx.Request.Method} {route}";
                    server.SetTag("http.request.method", ctx.Request.Method);
                    server.SetTag("http.route", route);
                    server.SetTag("http.response.status_code", ctx.Response.StatusCode);
                    server.Dispose();
                }
                if (route != "/metrics")
                {
                    _requests.WithLabels(ctx.Response.StatusCode.ToString(), route, ctx.Request.Method).Inc();
                    double overshoot = ctx.Items.TryGetValue(DelayOvershootKey, out var o) && o is double d ? d : 0;
                    _duration.WithLabels(route, ctx.Request.Method).Observe(Math.Max(0, sw.Elapsed.TotalSeconds - overshoot));
                }
            }
        });
        app.MapGet("/metrics", async ctx =>
        {
            ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await Registry.CollectAndExportAsTextAsync(ctx.Response.Body, ctx.RequestAborted);
        });
        app.MapGet("/v1/status", () => Results.Json(OpaStatus()));
        app.MapGet("/api/v1/healthz", (HttpContext ctx) => Results.Json(new JsonObject { ["ok"] = true }));
        // The contract document, served as real APIs do, so clients can smoke-test against it.
        app.MapGet("/api/v1/openapi.json", () => Results.Text(ServedOpenApi().ToJsonString(), "application/json"));
        app.MapGet("/api/v1/openapi.yaml", () => Results.Text(Yaml(ServedOpenApi()), "application/yaml"));
        app.MapGet("/api/v1/readyz", (HttpContext ctx) =>
        {
            var (entry, digest, ready) = CurrentBuild();
            var maint = Maintenance();
            var ok = ready > 0 && !maint;
            var body = new JsonObject
            {
                ["ok"] = ok,
                ["checks"] = new JsonObject { ["pods_ready"] = ready, ["maintenance"] = maint, ["policy"] = "ok", ["catalog"] = "ok" },
            };
            if (!ok) ctx.Response.Headers.RetryAfter = "30";
            return Results.Json(body, statusCode: ok ? 200 : 503);
        });
        app.MapGet("/api/v1/meta", (HttpContext ctx, CancellationToken _ct) => Governed(ctx, c =>
        {
            var (entry, digest, _) = CurrentBuild();
            return Ok(c, new JsonObject
            {
                ["service"] = "kfm-api", ["api_version"] = "v1", ["contract_version"] = "1.3.0",
                ["commit"] = digest == null ? null : digest[7..19], ["build_time"] = "2026-02-01T00:00:00Z",
                ["image_digest"] = digest, ["build"] = entry?.Name,
            });
        }));
        app.MapGet("/api/v1/datasets", (HttpContext ctx, CancellationToken _ct) => Governed(ctx, c =>
        {
            var label = ctx.Request.Query["policy_label"].ToString();
            var items = new JsonArray(LiveDatasets().Where(d => Allowed(c, d) && (label.Length == 0 || d.PolicyLabel == label)).Select(d => (JsonNode)DatasetJson(c, d)).ToArray());
            return Ok(c, new JsonObject { ["items"] = items, ["count"] = items.Count });
        }));
        app.MapGet("/api/v1/datasets/{id}", (HttpContext ctx, string id) => Governed(ctx, c =>
        {
            var d = LiveDatasets().FirstOrDefault(x => x.Id == id);
            if (d != null && Allowed(c, d)) return Ok(c, DatasetJson(c, d));
            if (d != null && c.Reg == Regression.ExistenceLeak)
                return Error(c, 403, "POLICY_DENY", "This resource is not available for your role.");
            return Error(c, 404, "NOT_FOUND", "The requested resource was not found or is not available.");
        }));
        app.MapGet("/api/v1/stac/items", (HttpContext ctx, CancellationToken _ct) => Governed(ctx, c =>
        {
            var coll = ctx.Request.Query["collection"].ToString();
            if (c.Reg == Regression.ContractPathRemoved) return Error(c, 404, "NOT_FOUND", "The requested resource was not found or is not available.");
            if (c.Reg == Regression.ContractRequiredParam && coll.Length == 0) return Error(c, 400, "BAD_REQUEST", "collection is required.");
            var features = new JsonArray();
            foreach (var d in LiveDatasets().Where(d => Allowed(c, d) && (coll.Length == 0 || d.Id == coll)))
            {
                var props = new JsonObject { ["datetime"] = $"{d.Slice}-01T00:00:00Z", ["dataset_version_id"] = Dvid(c, d) };
                if (c.Reg != Regression.ContractBreak) props["policy_label"] = d.PolicyLabel;
                features.Add(new JsonObject { ["type"] = "Feature", ["stac_version"] = "1.0.0", ["id"] = $"{d.Id}-{d.Slice}", ["collection"] = d.Id, ["properties"] = props });
            }
            return Ok(c, new JsonObject { ["type"] = "FeatureCollection", ["features"] = features });
        }));
        app.MapPost("/api/v1/evidence/resolve", (HttpContext ctx, CancellationToken _ct) => Governed(ctx, async c =>
        {
            JsonNode? body = null;
            try { body = await JsonNode.ParseAsync(ctx.Request.Body); } catch (System.Text.Json.JsonException) { }
            var id = body.Str("dataset_id");
            if (id == null) return Error(c, 400, "BAD_REQUEST", "dataset_id is required.");
            var d = LiveDatasets().FirstOrDefault(x => x.Id == id);
            if (d == null || !Allowed(c, d))
            {
                if (d != null && c.Reg == Regression.ExistenceLeak) return Error(c, 403, "POLICY_DENY", "This resource is not available for your role.");
                return Error(c, 404, "NOT_FOUND", "The requested resource was not found or is not available.");
            }
            var bundle = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("bundle:" + d.Id + d.Slice)));
            var decision = new JsonObject
            {
                ["decision"] = "allow", ["policy_label"] = d.PolicyLabel,
                ["obligations"] = new JsonArray(d.PolicyLabel.StartsWith("restricted") ? ["generalize_geometry"] : Array.Empty<JsonNode>()),
                ["reason_codes"] = new JsonArray(),
            };
            return Ok(c, new JsonObject { ["bundle_digest"] = bundle, ["dataset_id"] = d.Id, ["dataset_version_id"] = Dvid(c, d), ["decision"] = decision });
        }));
    }

    JsonObject DatasetJson(Call c, Dataset d)
    {
        var o = new JsonObject { ["dataset_id"] = d.Id };
        if (c.Reg != Regression.ContractFieldRemoved) o["title"] = d.Title;
        if (c.Reg != Regression.ContractBreak) o["policy_label"] = d.PolicyLabel;
        o["dataset_version_id"] = Dvid(c, d);
        o["size_bytes"] = c.Reg is Regression.ContractBreak or Regression.ContractFieldRetyped ? JsonValue.Create(d.SizeBytes.ToString()) : JsonValue.Create(d.SizeBytes);
        o["updated_at"] = $"{d.Slice}-15T12:00:00Z";
        if (c.Reg == Regression.ContractFieldAdded) o["license"] = "CC-BY-4.0";
        return o;
    }

    static string Dvid(Call c, Dataset d) => c.Reg == Regression.WrongDatasetVersionId ? $"v{d.Slice.Replace("-", "")}-{d.Id.Length}" : VersionId(d);

    static IResult Ok(Call c, JsonObject body)
    {
        if (c.Reg != Regression.MissingAuditRef) body["audit_ref"] = c.AuditRef;
        return Results.Json(body);
    }

    static IResult Error(Call c, int code, string errorCode, string message, string? retryAfter = null)
    {
        var body = new JsonObject { ["error_code"] = errorCode, ["message"] = message };
        if (c.Reg != Regression.MissingAuditRef) body["audit_ref"] = c.AuditRef;
        if (retryAfter != null) c.Ctx.Response.Headers.RetryAfter = retryAfter;
        return Results.Json(body, statusCode: code);
    }

    Task<IResult> Governed(HttpContext ctx, Func<Call, IResult> f) => Governed(ctx, c => Task.FromResult(f(c)));

    async Task<IResult> Governed(HttpContext ctx, Func<Call, Task<IResult>> f)
    {
        var auditRef = "kfm://audit/entry/" + Ulid();
        var auth = ctx.Request.Headers.Authorization.ToString();
        bool steward = false;
        // Governed endpoints serve identified callers only: no token or an unknown one is a 401.
        var tok = auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? auth[7..].Trim() : "";
        if (tok == _steward) steward = true;
        else if (tok != _public)
            return Error(new Call(ctx, false, Regression.None, auditRef), 401, "UNAUTHORIZED", "A valid bearer token is required.");
        var (entry, _, ready) = CurrentBuild();
        var reg = entry?.Regression ?? Regression.None;
        string? bundle = ActivePolicyRevision();
        if (reg != Regression.NoPolicySpan)
        {
            // The policy decision point, as the real API traces its OPA query (a child of the server span).
            using var policy = _tracing.StartActivity(PolicySpanName, ActivityKind.Internal);
            policy?.SetTag("kfm.policy.bundle", bundle);
            policy?.SetTag("kfm.caller.role", steward ? "restricted" : "public");
        }
        var call = new Call(ctx, steward, reg, auditRef, bundle?.StartsWith(BadBundlePrefix, StringComparison.Ordinal) == true);
        if (Maintenance()) return Error(call, 503, "MAINTENANCE", "The API is in maintenance mode; retry later.", "30");
        if (ready == 0) return Error(call, 503, "UNAVAILABLE", "No ready API instance is serving requests.", "5");
        var n = Interlocked.Increment(ref _requestCount);
        if (reg == Regression.Http5xx && n % 5 < 2) return Error(call, 500, "INTERNAL", "An internal error occurred.");
        if (reg == Regression.Latency) await ServiceTimeAsync(ctx, 600);
        // Every tenth governed request is the slow tail of both builds; bad-shift slows the rest too.
        if ((reg is Regression.SlowTail or Regression.LatencyShift) && (n % 10 == 0 || reg == Regression.LatencyShift))
            await ServiceTimeAsync(ctx, n % 10 == 0 ? 300 : 60);
        return await f(call);
    }

    const string DelayOvershootKey = "kfm.lab.delay-overshoot";

    /// <summary>
    /// A build's designed service time. The duration histogram leaves out what a loaded test machine
    /// adds to the delay (a busy CI box once turned the 300 ms tail into 579 ms and failed a latency
    /// test for the machine's sake, not the build's); clients still wait the real time.
    /// </summary>
    static async Task ServiceTimeAsync(HttpContext ctx, int milliseconds)
    {
        var sw = Stopwatch.StartNew();
        await Task.Delay(milliseconds, ctx.RequestAborted);
        double overshoot = sw.Elapsed.TotalSeconds - milliseconds / 1000.0;
        if (overshoot > 0)
            ctx.Items[DelayOvershootKey] = (ctx.Items.TryGetValue(DelayOvershootKey, out var o) && o is double d ? d : 0) + overshoot;
    }

    /// <summary>
    /// Steady synthetic traffic, so metrics always have data. Open loop, as real users are: a
    /// request starts every 1/perSecond whether or not earlier ones have answered, so a slow build
    /// shows as slow requests at the same rate instead of as fewer requests (a closed loop would
    /// hide a latency regression from a P95 taken over a window). At most 64 are outstanding.
    /// </summary>
    public async Task DriveTraffic(string baseUrl, double perSecond, CancellationToken ct)
    {
        using var http = new HttpClient { BaseAddress = new Uri(baseUrl), Timeout = TimeSpan.FromSeconds(5) };
        using var outstanding = new SemaphoreSlim(64);
        var calls = new (string method, string path, string token)[]
        {
            ("GET", "/api/v1/datasets", _public), ("GET", "/api/v1/datasets/kansas_counties", _public),
            ("GET", "/api/v1/datasets/burial_sites", _steward), ("GET", "/api/v1/stac/items", _public),
            ("POST", "/api/v1/evidence/resolve", _steward), ("GET", "/api/v1/datasets/no_such_dataset", _public),
            ("GET", "/api/v1/healthz", _public),
        };
        async Task Call(string m, string p, string t)
        {
            try
            {
                using var req = new HttpRequestMessage(new HttpMethod(m), p);
                req.Headers.Authorization = new("Bearer", t);
                if (m == "POST") req.Content = new StringContent("{\"dataset_id\":\"burial_sites\"}", Encoding.UTF8, "application/json");
                using var resp = await http.SendAsync(req, ct);
            }
            catch (Exception) { /* traffic only feeds metrics; a failed call is itself recorded by the API */ }
            finally { outstanding.Release(); }
        }
        var period = TimeSpan.FromSeconds(1 / perSecond);
        var clock = Stopwatch.StartNew();
        var next = TimeSpan.Zero;
        var pending = new List<Task>();
        for (long i = 0; !ct.IsCancellationRequested; i++)
        {
            // Scheduled against the clock, so a slow tick does not lower the rate; after a stall
            // (a paused process) the schedule restarts rather than bursting to catch up.
            next += period;
            var due = next - clock.Elapsed;
            if (due < TimeSpan.FromSeconds(-1)) { next = clock.Elapsed; due = TimeSpan.Zero; }
            try
            {
                if (due > TimeSpan.Zero) await Task.Delay(due, ct);
                await outstanding.WaitAsync(ct);
            }
            catch (OperationCanceledException) { break; }
            var (m, p, t) = calls[i % calls.Length];
            pending.Add(Call(m, p, t));
            if (pending.Count > 256) pending.RemoveAll(x => x.IsCompleted);
        }
        try { await Task.WhenAll(pending); } catch (Exception) { }
    }

    public JsonObject OpenApi()
    {
        JsonObject Ref(string n) => new() { ["$ref"] = "#/components/schemas/" + n };
        JsonObject Resp(string desc, JsonObject schema) => new() { ["description"] = desc, ["content"] = new JsonObject { ["application/json"] = new JsonObject { ["schema"] = schema } } };
        JsonObject Errors() => new()
        {
            ["401"] = Resp("Unauthorized", Ref("Error")), ["404"] = Resp("Not found or not permitted (identical for both)", Ref("Error")),
            ["500"] = Resp("Internal error", Ref("Error")), ["503"] = Resp("Maintenance or unavailable; Retry-After is set", Ref("Error")),
        };
        JsonObject Op(string id, string summary, JsonObject ok, bool governed = true)
        {
            var responses = governed ? Errors() : new JsonObject();
            responses["200"] = Resp("OK", ok);
            var o = new JsonObject { ["operationId"] = id, ["summary"] = summary, ["responses"] = responses };
            if (governed) o["security"] = new JsonArray(new JsonObject { ["bearer"] = new JsonArray() }, new JsonObject());
            return o;
        }
        var dsIdParam = new JsonObject { ["name"] = "id", ["in"] = "path", ["required"] = true, ["schema"] = new JsonObject { ["type"] = "string", ["pattern"] = "^[a-z0-9_]+$" } };
        var getById = Op("getDataset", "One dataset", Ref("Dataset"));
        getById["parameters"] = new JsonArray(dsIdParam);
        var resolve = Op("resolveEvidence", "Resolve an evidence bundle (fails closed)", Ref("EvidenceBundle"));
        resolve["requestBody"] = new JsonObject { ["required"] = true, ["content"] = new JsonObject { ["application/json"] = new JsonObject { ["schema"] = new JsonObject { ["type"] = "object", ["required"] = new JsonArray("dataset_id"), ["properties"] = new JsonObject { ["dataset_id"] = new JsonObject { ["type"] = "string" } } }, ["example"] = new JsonObject { ["dataset_id"] = "kansas_counties" } } } };
        var list = Op("listDatasets", "Datasets visible to the caller", Ref("DatasetList"));
        list["parameters"] = new JsonArray(new JsonObject { ["name"] = "policy_label", ["in"] = "query", ["required"] = false, ["schema"] = Ref("PolicyLabel") });
        var str = () => new JsonObject { ["type"] = "string" };
        return new JsonObject
        {
            ["openapi"] = "3.0.3",
            ["info"] = new JsonObject { ["title"] = "KFM governed API (lab stand-in)", ["version"] = "1.3.0" },
            ["servers"] = new JsonArray(new JsonObject { ["url"] = "/" }),
            ["paths"] = new JsonObject
            {
                ["/api/v1/healthz"] = new JsonObject { ["get"] = Op("healthz", "Liveness", new JsonObject { ["type"] = "object", ["required"] = new JsonArray("ok"), ["properties"] = new JsonObject { ["ok"] = new JsonObject { ["type"] = "boolean" } } }, false) },
                ["/api/v1/readyz"] = new JsonObject { ["get"] = Op("readyz", "Readiness (503 when not ready)", Ref("Ready"), false) },
                ["/api/v1/meta"] = new JsonObject { ["get"] = Op("meta", "Build and contract metadata", Ref("Meta")) },
                ["/api/v1/datasets"] = new JsonObject { ["get"] = list },
                ["/api/v1/datasets/{id}"] = new JsonObject { ["get"] = getById },
                ["/api/v1/stac/items"] = new JsonObject { ["get"] = Op("stacItems", "STAC items", new JsonObject { ["type"] = "object", ["required"] = new JsonArray("type", "features", "audit_ref") }) },
                ["/api/v1/evidence/resolve"] = new JsonObject { ["post"] = resolve },
            },
            ["components"] = new JsonObject
            {
                ["securitySchemes"] = new JsonObject { ["bearer"] = new JsonObject { ["type"] = "http", ["scheme"] = "bearer" } },
                ["schemas"] = new JsonObject
                {
                    ["Error"] = new JsonObject
                    {
                        ["type"] = "object", ["required"] = new JsonArray("error_code", "message", "audit_ref"),
                        ["properties"] = new JsonObject { ["error_code"] = str(), ["message"] = str(), ["audit_ref"] = Ref("AuditRef"), ["remediation"] = new JsonObject { ["type"] = "object" } },
                    },
                    ["AuditRef"] = new JsonObject { ["type"] = "string", ["pattern"] = "^kfm://(audit/entry/[0-9A-HJKMNP-TV-Z]{26}|run/.+)$" },
                    ["PolicyLabel"] = new JsonObject { ["type"] = "string", ["enum"] = new JsonArray("public", "public_generalized", "internal", "restricted", "restricted_sensitive_location", "embargoed", "quarantine") },
                    ["Dataset"] = new JsonObject
                    {
                        ["type"] = "object", ["required"] = new JsonArray("dataset_id", "policy_label", "dataset_version_id", "size_bytes"),
                        ["properties"] = new JsonObject
                        {
                            ["dataset_id"] = new JsonObject { ["type"] = "string", ["pattern"] = "^[a-z0-9_]+$" }, ["title"] = str(),
                            ["policy_label"] = Ref("PolicyLabel"),
                            ["dataset_version_id"] = new JsonObject { ["type"] = "string", ["pattern"] = "^[0-9]{4}-[0-9]{2}(-[0-9]{2})?\\.[0-9a-f]{8}$" },
                            ["size_bytes"] = new JsonObject { ["type"] = "integer" }, ["updated_at"] = new JsonObject { ["type"] = "string", ["format"] = "date-time" },
                            ["audit_ref"] = Ref("AuditRef"),
                        },
                    },
                    ["DatasetList"] = new JsonObject
                    {
                        ["type"] = "object", ["required"] = new JsonArray("items", "audit_ref"),
                        ["properties"] = new JsonObject { ["items"] = new JsonObject { ["type"] = "array", ["items"] = Ref("Dataset") }, ["count"] = new JsonObject { ["type"] = "integer" }, ["audit_ref"] = Ref("AuditRef") },
                    },
                    ["EvidenceBundle"] = new JsonObject
                    {
                        ["type"] = "object", ["required"] = new JsonArray("bundle_digest", "decision", "audit_ref"),
                        ["properties"] = new JsonObject
                        {
                            ["bundle_digest"] = new JsonObject { ["type"] = "string", ["pattern"] = "^sha256:[a-f0-9]{64}$" },
                            ["decision"] = new JsonObject { ["type"] = "object", ["required"] = new JsonArray("decision", "policy_label", "obligations", "reason_codes") },
                            ["audit_ref"] = Ref("AuditRef"),
                        },
                    },
                    ["Meta"] = new JsonObject { ["type"] = "object", ["required"] = new JsonArray("service", "api_version", "contract_version", "commit", "build_time") },
                    ["Ready"] = new JsonObject { ["type"] = "object", ["required"] = new JsonArray("ok", "checks") },
                },
            },
        };
    }
}
