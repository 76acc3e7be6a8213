using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace KfmRollback.Lab.Api;

/// <summary>The Kubernetes apiserver subset: discovery, CRUD, patch, watch, Table output, subresources.</summary>
public sealed class ApiServer(Store store, Faults faults, IReadOnlyDictionary<string, string> tokens, Func<string> serverAddress, bool plainHttp = false,
    Action<JsonObject, double?>? deletePod = null, AuditLog? audit = null, ValidatingWebhooks? webhooks = null)
{
    public static readonly string[] ReadVerbs = ["get", "list", "watch"];

    /// <summary>admin: everything; viewer: like the built-in "view" role (read-only, and no secrets).</summary>
    public static bool Allowed(string user, string verb, string resource = "") =>
        user == "admin" || (ReadVerbs.Contains(verb) && resource != "secrets");

    public static async Task WriteJson(HttpContext ctx, int code, JsonNode body, string contentType = "application/json")
    {
        ctx.Response.StatusCode = code;
        ctx.Response.ContentType = contentType;
        await ctx.Response.WriteAsync(body.ToJsonString(J.Compact));
    }

    public static Task WriteStatus(HttpContext ctx, ApiException e) => WriteJson(ctx, e.Code, e.ToStatus());

    public string? Authenticate(HttpContext ctx)
    {
        var h = ctx.Request.Headers.Authorization.ToString();
        // client-go never sends bearer tokens over plain HTTP: in --http mode a request without
        // credentials is the admin (the lab only listens on 127.0.0.1).
        if (plainHttp && h.Length == 0) return "admin";
        if (!h.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return null;
        return tokens.TryGetValue(h[7..].Trim(), out var u) ? u : null;
    }

    public async Task Handle(HttpContext ctx)
    {
        try { await HandleInner(ctx); }
        catch (ApiException e) { if (!ctx.Response.HasStarted) await WriteStatus(ctx, e); }
        catch (JsonException e) { if (!ctx.Response.HasStarted) await WriteStatus(ctx, ApiException.BadRequest($"the object provided is unrecognized: {e.Message}")); }
        catch (OperationCanceledException) { }
        catch (IOException) { }
        catch (Exception e)
        {
            LastError = e.ToString();
            if (!ctx.Response.HasStarted) await WriteStatus(ctx, new ApiException(500, "InternalError", "Internal error occurred: " + e.Message));
        }
    }

    /// <summary>The last unexpected handler exception (shown by /lab/state).</summary>
    public static string? LastError { get; private set; }

    async Task HandleInner(HttpContext ctx)
    {
        var path = ctx.Request.Path.Value ?? "/";
        if (path is "/healthz" or "/livez" or "/readyz") { ctx.Response.ContentType = "text/plain"; await ctx.Response.WriteAsync("ok"); return; }
        if (path == "/version") { await WriteJson(ctx, 200, Version()); return; }

        var user = Authenticate(ctx);
        if (user == null) throw new ApiException(401, "Unauthorized", "Unauthorized");

        var segs = path.Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (segs.Length == 0) { await WriteJson(ctx, 200, new JsonObject { ["paths"] = new JsonArray("/api", "/api/v1", "/apis", "/version", "/healthz") }); return; }
        if (segs[0] == "openapi")
        {
            if (segs.Length == 2 && segs[1] == "v3") { await WriteJson(ctx, 200, OpenApiDocs.Index()); return; }
            if (segs.Length > 2 && segs[1] == "v3" && OpenApiDocs.ForGroupVersion(string.Join('/', segs[2..])) is { } doc) { await WriteJson(ctx, 200, doc); return; }
            throw new ApiException(404, "NotFound", "the server could not find the requested resource");
        }

        string group, version; string[] rest;
        if (segs[0] == "api")
        {
            if (segs.Length == 1)
            {
                if (WantsAggregated(ctx)) { await WriteJson(ctx, 200, AggregatedDiscovery(core: true), AggregatedType); return; }
                await WriteJson(ctx, 200, ApiVersions()); return;
            }
            group = ""; version = segs[1]; rest = segs[2..];
        }
        else if (segs[0] == "apis")
        {
            if (segs.Length == 1)
            {
                if (WantsAggregated(ctx)) { await WriteJson(ctx, 200, AggregatedDiscovery(core: false), AggregatedType); return; }
                await WriteJson(ctx, 200, GroupList()); return;
            }
            if (segs.Length == 2)
            {
                var g = GroupList()["groups"]!.AsArray().FirstOrDefault(x => x.Str("name") == segs[1]);
                if (g == null) throw new ApiException(404, "NotFound", "the server could not find the requested resource");
                var go = g.DeepClone().AsObject(); go["kind"] = "APIGroup"; go["apiVersion"] = "v1";
                await WriteJson(ctx, 200, go); return;
            }
            group = segs[1]; version = segs[2]; rest = segs[3..];
        }
        else throw new ApiException(404, "NotFound", "the server could not find the requested resource");

        if (!Resources.All.Any(r => r.Group == group && r.Version == version))
            throw new ApiException(404, "NotFound", "the server could not find the requested resource");
        if (rest.Length == 0) { await WriteJson(ctx, 200, ResourceList(group, version)); return; }

        // Resolve namespace / resource / name / subresource.
        string? ns = null; string plural; string? name = null; string? sub = null;
        if (rest[0] == "namespaces" && rest.Length >= 3 && group == "" && rest[2] is "status" or "finalize" && rest.Length == 3)
        { plural = "namespaces"; name = rest[1]; sub = rest[2]; }
        else if (rest[0] == "namespaces" && rest.Length >= 3)
        { ns = rest[1]; plural = rest[2]; name = rest.Length > 3 ? rest[3] : null; sub = rest.Length > 4 ? rest[4] : null; }
        else { plural = rest[0]; name = rest.Length > 1 ? rest[1] : null; sub = rest.Length > 2 ? rest[2] : null; }

        var rt = Resources.Find(group, version, plural) ?? throw new ApiException(404, "NotFound", "the server could not find the requested resource");
        if (!rt.Namespaced && ns != null) throw new ApiException(404, "NotFound", "the server could not find the requested resource");
        if (sub != null && !Resources.SubresourcesOf(rt).Contains(sub)) throw new ApiException(404, "NotFound", "the server could not find the requested resource");

        var q = ctx.Request.Query;
        var method = ctx.Request.Method;
        var isWatch = method == "GET" && (q["watch"] == "true" || q["watch"] == "1");
        var verb = method switch
        {
            "GET" => isWatch ? "watch" : name == null ? "list" : "get",
            "POST" => "create",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => name == null ? "deletecollection" : "delete",
            _ => throw ApiException.MethodNotAllowed(method)
        };
        if (!rt.Verbs.Contains(verb)) throw ApiException.MethodNotAllowed(verb);
        if (rt == Resources.SelfSubjectAccessReviews) { await Ssar(ctx, user); return; }
        if ((ctx.Request.ContentType ?? "").Contains("protobuf"))
            throw new ApiException(415, "UnsupportedMediaType", $"the body of the request was in an unknown format - accepted media types include: application/json, application/yaml");
        if (!Allowed(user, verb, rt.Plural)) throw ApiException.Forbidden(user, verb, rt, ns, name);

        // Faults.
        var rules = faults.Match(verb, rt.Plural, path, q["dryRun"] == "All");
        var latency = faults.GlobalLatencyMs + rules.Sum(r => r.LatencyMs);
        if (latency > 0) await Task.Delay(latency, ctx.RequestAborted);
        if (rules.Any(r => r.ResetRate > 0 && Random.Shared.NextDouble() < r.ResetRate)) { ctx.Abort(); return; }
        var err = rules.FirstOrDefault(r => r.ErrorRate > 0 && Random.Shared.NextDouble() < r.ErrorRate);
        if (err != null)
        {
            var reason = err.ErrorCode switch { 429 => "TooManyRequests", 503 => "ServiceUnavailable", 504 => "Timeout", _ => "InternalError" };
            throw new ApiException(err.ErrorCode, reason, $"lab fault injected for {verb} {rt.Qualified}");
        }
        if (verb is "patch" or "update" && faults.TakeConflict(rules))
            throw ApiException.Conflict(rt, name ?? "");

        var dryRun = q["dryRun"] == "All";
        // Dry runs are audited too (the audit filter runs before any handler), with dryRun=All in requestURI.
        if (audit is not null && AuditLog.WriteVerbs.Contains(verb))
        {
            ctx.Request.EnableBuffering();
            JsonNode? body;
            using (var reader = new StreamReader(ctx.Request.Body, leaveOpen: true))
            {
                var text = await reader.ReadToEndAsync();
                try { body = string.IsNullOrWhiteSpace(text) ? null : JsonNode.Parse(text); } catch (JsonException) { body = null; }
            }
            ctx.Request.Body.Position = 0;
            var uri = path + ctx.Request.QueryString.Value;
            try { await Serve(ctx, rt, ns, name, sub, verb, dryRun, rules); }
            catch (ApiException e) { audit.Record(user, verb, uri, rt, ns, name, sub, body, e.Code, DateTimeOffset.UtcNow); throw; }
            audit.Record(user, verb, uri, rt, ns, name, sub, body, ctx.Response.StatusCode, DateTimeOffset.UtcNow);
            return;
        }
        await Serve(ctx, rt, ns, name, sub, verb, dryRun, rules);
    }

    async Task Serve(HttpContext ctx, ResourceType rt, string? ns, string? name, string? sub, string verb, bool dryRun, List<FaultRule> rules)
    {
        var q = ctx.Request.Query;
        switch (verb)
        {
            case "get": await Get(ctx, rt, ns, name!, sub); break;
            case "list": await List(ctx, rt, ns); break;
            case "watch": await Watch(ctx, rt, ns, rules); break;
            case "create": await Create(ctx, rt, ns, name, sub, dryRun); break;
            case "update": await Update(ctx, rt, ns, name, sub, dryRun); break;
            case "patch": await PatchObj(ctx, rt, ns, name!, sub, dryRun); break;
            case "delete":
                webhooks?.Admit("DELETE", rt, sub, ns, name, null, store.Get(rt, ns, name!));
                if (rt == Resources.Pods && deletePod != null && !dryRun)
                {
                    var pod = store.Get(rt, ns, name!) ?? throw ApiException.NotFound(rt, name!);
                    double? grace = double.TryParse(q["gracePeriodSeconds"], System.Globalization.CultureInfo.InvariantCulture, out var g) ? g : null;
                    var body = await TryBody(ctx);
                    if (grace == null && body?.Long("gracePeriodSeconds") is long bg) grace = bg;
                    deletePod(pod, grace);
                    await WriteJson(ctx, 200, store.Get(rt, ns, name!) ?? pod);
                }
                else await WriteJson(ctx, 200, store.Delete(rt, ns, name!, dryRun));
                break;
            case "deletecollection":
                {
                    var items = Filter(ctx, store.List(rt, ns)).ToList();
                    foreach (var o in items) webhooks?.Admit("DELETE", rt, null, o.Ns(), o.Name(), null, o);
                    foreach (var o in items) store.Delete(rt, o.Ns(), o.Name(), dryRun);
                    await WriteJson(ctx, 200, new JsonObject { ["kind"] = rt.ListKind, ["apiVersion"] = rt.GroupVersion, ["metadata"] = new JsonObject(), ["items"] = new JsonArray(items.Select(i => (JsonNode)i).ToArray()) });
                    break;
                }
        }
    }

    // ------------------------------------------------------------------ discovery
    public static JsonObject Version() => new()
    {
        ["major"] = "1", ["minor"] = "32", ["gitVersion"] = "v1.32.0-kfm-lab", ["gitCommit"] = "0000000000000000000000000000000000000000",
        ["gitTreeState"] = "clean", ["buildDate"] = "2026-01-01T00:00:00Z", ["goVersion"] = "go1.23.0", ["compiler"] = "gc", ["platform"] = "linux/amd64",
    };

    const string AggregatedType = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

    static bool WantsAggregated(HttpContext ctx)
    {
        foreach (var part in ctx.Request.Headers.Accept.ToString().Split(','))
        {
            var p = part.Replace(" ", "");
            if (p.Contains("as=APIGroupDiscoveryList") && p.Contains("v=v2") && !p.Contains("v=v2beta1")) return true;
            if (p.StartsWith("application/json") && !p.Contains("as=")) return false;
        }
        return false;
    }

    /// <summary>apidiscovery.k8s.io/v2 APIGroupDiscoveryList, the format kubectl 1.32 asks for first.</summary>
    static JsonObject AggregatedDiscovery(bool core)
    {
        var items = new JsonArray();
        foreach (var g in core ? [""] : Resources.Groups)
        {
            var versions = new JsonArray();
            foreach (var v in Resources.All.Where(r => r.Group == g).Select(r => r.Version).Distinct())
            {
                var res = new JsonArray();
                foreach (var rt in Resources.All.Where(r => r.Group == g && r.Version == v))
                {
                    var subs = new JsonArray();
                    foreach (var sub in Resources.SubresourcesOf(rt))
                    {
                        var kind = sub == "scale" ? new JsonObject { ["group"] = "autoscaling", ["version"] = "v1", ["kind"] = "Scale" }
                                                  : new JsonObject { ["group"] = rt.Group, ["version"] = rt.Version, ["kind"] = rt.Kind };
                        subs.Add(new JsonObject
                        {
                            ["subresource"] = sub, ["responseKind"] = kind,
                            ["verbs"] = sub == "log" ? new JsonArray("get") : new JsonArray("get", "patch", "update"),
                        });
                    }
                    var r = new JsonObject
                    {
                        ["resource"] = rt.Plural,
                        ["responseKind"] = new JsonObject { ["group"] = rt.Group, ["version"] = rt.Version, ["kind"] = rt.Kind },
                        ["scope"] = rt.Namespaced ? "Namespaced" : "Cluster",
                        ["singularResource"] = rt.Singular,
                        ["verbs"] = new JsonArray(rt.Verbs.Select(x => (JsonNode)x).ToArray()),
                    };
                    if (rt.ShortNames.Length > 0) r["shortNames"] = new JsonArray(rt.ShortNames.Select(x => (JsonNode)x).ToArray());
                    if (rt.Categories.Length > 0) r["categories"] = new JsonArray(rt.Categories.Select(x => (JsonNode)x).ToArray());
                    if (subs.Count > 0) r["subresources"] = subs;
                    res.Add(r);
                }
                versions.Add(new JsonObject { ["version"] = v, ["resources"] = res, ["freshness"] = "Current" });
            }
            var meta = new JsonObject { ["creationTimestamp"] = null };
            if (g != "") meta["name"] = g;
            items.Add(new JsonObject { ["metadata"] = meta, ["versions"] = versions });
        }
        return new JsonObject { ["kind"] = "APIGroupDiscoveryList", ["apiVersion"] = "apidiscovery.k8s.io/v2", ["metadata"] = new JsonObject(), ["items"] = items };
    }

    JsonObject ApiVersions() => new()
    {
        ["kind"] = "APIVersions",
        ["versions"] = new JsonArray("v1"),
        ["serverAddressByClientCIDRs"] = new JsonArray(new JsonObject { ["clientCIDR"] = "0.0.0.0/0", ["serverAddress"] = serverAddress() }),
    };

    static JsonObject GroupList()
    {
        var groups = new JsonArray();
        foreach (var g in Resources.Groups)
        {
            var v = Resources.All.First(r => r.Group == g).Version;
            var gv = new JsonObject { ["groupVersion"] = $"{g}/{v}", ["version"] = v };
            groups.Add(new JsonObject { ["name"] = g, ["versions"] = new JsonArray(gv), ["preferredVersion"] = gv.DeepClone() });
        }
        return new JsonObject { ["kind"] = "APIGroupList", ["apiVersion"] = "v1", ["groups"] = groups };
    }

    static JsonObject ResourceList(string group, string version)
    {
        var list = new JsonArray();
        foreach (var rt in Resources.All.Where(r => r.Group == group && r.Version == version))
        {
            var r = new JsonObject
            {
                ["name"] = rt.Plural, ["singularName"] = rt.Singular, ["namespaced"] = rt.Namespaced, ["kind"] = rt.Kind,
                ["verbs"] = new JsonArray(rt.Verbs.Select(v => (JsonNode)v).ToArray()),
            };
            if (rt.ShortNames.Length > 0) r["shortNames"] = new JsonArray(rt.ShortNames.Select(v => (JsonNode)v).ToArray());
            if (rt.Categories.Length > 0) r["categories"] = new JsonArray(rt.Categories.Select(v => (JsonNode)v).ToArray());
            list.Add(r);
            foreach (var sub in Resources.SubresourcesOf(rt))
            {
                var s = new JsonObject { ["name"] = $"{rt.Plural}/{sub}", ["singularName"] = "", ["namespaced"] = rt.Namespaced };
                if (sub == "scale") { s["group"] = "autoscaling"; s["version"] = "v1"; s["kind"] = "Scale"; s["verbs"] = new JsonArray("get", "patch", "update"); }
                else if (sub == "log") { s["kind"] = rt.Kind; s["verbs"] = new JsonArray("get"); }
                else { s["kind"] = rt.Kind; s["verbs"] = new JsonArray("get", "patch", "update"); }
                list.Add(s);
            }
        }
        return new JsonObject { ["kind"] = "APIResourceList", ["apiVersion"] = "v1", ["groupVersion"] = group == "" ? version : $"{group}/{version}", ["resources"] = list };
    }

    // ------------------------------------------------------------------ read
    static string? TableAs(HttpContext ctx)
    {
        var accept = ctx.Request.Headers.Accept.ToString();
        // The first acceptable media type wins, as in the real content negotiation.
        foreach (var part in accept.Split(','))
        {
            var p = part.Trim();
            if (p.Contains("as=Table")) return "Table";
            if (p.Contains("as=PartialObjectMetadataList") || p.Contains("as=PartialObjectMetadata")) return "Partial";
            if (p.StartsWith("application/json") || p.StartsWith("*/*")) return null;
        }
        return null;
    }

    async Task Get(HttpContext ctx, ResourceType rt, string? ns, string name, string? sub)
    {
        var o = store.Get(rt, ns, name) ?? throw ApiException.NotFound(rt, name);
        if (sub == "scale") { await WriteJson(ctx, 200, Scale(o)); return; }
        if (sub == "log") { await PodLog(ctx, o); return; }
        var asKind = TableAs(ctx);
        if (asKind == "Table") { await WriteJson(ctx, 200, Tables.Table(rt, [o], store.Clock.Now, o.Str("metadata.resourceVersion") ?? "", null, true, ctx.Request.Query["includeObject"] == "Object")); return; }
        if (asKind == "Partial") { await WriteJson(ctx, 200, Tables.PartialMetadata(o)); return; }
        await WriteJson(ctx, 200, o);
    }

    static async Task PodLog(HttpContext ctx, JsonObject pod)
    {
        ctx.Response.ContentType = "text/plain";
        var image = pod.Str("spec.containers.0.image") ?? (pod.At("spec.containers") as JsonArray)?.FirstOrDefault().Str("image");
        var sb = new StringBuilder();
        sb.Append($"{pod.Str("metadata.creationTimestamp")} starting {pod.Name()} image={image}\n");
        var waiting = (pod.At("status.containerStatuses") as JsonArray)?.Select(s => s.Str("state.waiting.reason")).FirstOrDefault(r => r != null);
        if (waiting == "CrashLoopBackOff") sb.Append("panic: contract check failed: policy bundle digest mismatch\nexit status 1\n");
        else sb.Append("listening on :8080\n");
        await ctx.Response.WriteAsync(sb.ToString());
    }

    IEnumerable<JsonObject> Filter(HttpContext ctx, IEnumerable<JsonObject> items)
    {
        var ls = LabelSelector.Parse(ctx.Request.Query["labelSelector"]);
        var fs = FieldSelector.Parse(ctx.Request.Query["fieldSelector"]);
        return items.Where(o => ls.Matches(o) && fs.Matches(o));
    }

    async Task List(HttpContext ctx, ResourceType rt, string? ns)
    {
        var (all, rv) = store.ListWithRv(rt, ns);
        var items = Filter(ctx, all).ToList();
        var q = ctx.Request.Query;
        string? next = null;
        var cont = q["continue"].ToString();
        if (!string.IsNullOrEmpty(cont))
        {
            string[] parts;
            try { parts = Encoding.UTF8.GetString(Convert.FromBase64String(cont)).Split('|', 2); }
            catch (FormatException) { throw ApiException.BadRequest("continue key is not valid: illegal base64 data"); }
            if (parts.Length != 2 || !long.TryParse(parts[0], out var crv)) throw ApiException.BadRequest("continue key is not valid");
            if (crv < store.CompactedRv)
                throw new ApiException(410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.");
            items = items.Where(o => string.CompareOrdinal(o.Ns() + "/" + o.Name(), parts[1]) > 0).ToList();
            rv = crv;
        }
        long? remaining = null;
        if (long.TryParse(q["limit"], out var limit) && limit > 0 && items.Count > limit)
        {
            remaining = items.Count - limit;
            items = items.Take((int)limit).ToList();
            var last = items[^1];
            next = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{rv}|{last.Ns()}/{last.Name()}"));
        }
        var asKind = TableAs(ctx);
        if (asKind == "Table") { await WriteJson(ctx, 200, Tables.Table(rt, items, store.Clock.Now, rv.ToString(), next, true, q["includeObject"] == "Object")); return; }
        var meta = new JsonObject { ["resourceVersion"] = rv.ToString() };
        if (next != null) { meta["continue"] = next; meta["remainingItemCount"] = remaining; }
        var list = new JsonObject
        {
            ["kind"] = asKind == "Partial" ? "PartialObjectMetadataList" : rt.ListKind,
            ["apiVersion"] = asKind == "Partial" ? "meta.k8s.io/v1" : rt.GroupVersion,
            ["metadata"] = meta,
            ["items"] = new JsonArray(items.Select(i => (JsonNode)(asKind == "Partial" ? Tables.PartialMetadata(i) : i)).ToArray()),
        };
        await WriteJson(ctx, 200, list);
    }

    async Task Watch(HttpContext ctx, ResourceType rt, string? ns, List<FaultRule> rules)
    {
        var q = ctx.Request.Query;
        long? from = long.TryParse(q["resourceVersion"], out var r) ? r : null;
        var ls = LabelSelector.Parse(q["labelSelector"]);
        var fs = FieldSelector.Parse(q["fieldSelector"]);
        var asTable = TableAs(ctx) == "Table";
        var bookmarks = q["allowWatchBookmarks"] == "true";
        var timeout = TimeSpan.FromSeconds(long.TryParse(q["timeoutSeconds"], out var ts) && ts > 0 ? Math.Min(ts, 3600) : 1800);
        var dropAfter = rules.Where(x => x.DropWatchAfterEvents > 0).Select(x => x.DropWatchAfterEvents).DefaultIfEmpty(0).Min();

        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        ctx.Response.Headers.CacheControl = "no-cache, private";
        List<WatchEvent> replay; System.Threading.Channels.ChannelReader<WatchEvent> live; IDisposable sub;
        try { (replay, live, sub) = store.Subscribe(rt, ns, from); }
        catch (ApiException e)
        {
            await WriteLine(ctx, new JsonObject { ["type"] = "ERROR", ["object"] = e.ToStatus() });
            return;
        }
        using var _ = sub;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        cts.CancelAfter(timeout);
        var sent = 0;
        var first = true;
        var lastRv = from ?? store.CurrentRv;
        await ctx.Response.Body.FlushAsync(cts.Token);

        async Task<bool> Send(WatchEvent ev)
        {
            lastRv = Math.Max(lastRv, ev.Rv);
            var o = ev.Object;
            if (!(ls.Matches(o) && fs.Matches(o))) return true;
            JsonNode obj = asTable ? Tables.Table(rt, [o], store.Clock.Now, ev.Rv.ToString(), null, first, q["includeObject"] == "Object") : o;
            first = false;
            await WriteLine(ctx, new JsonObject { ["type"] = ev.Type, ["object"] = obj });
            sent++;
            return dropAfter == 0 || sent < dropAfter;
        }

        try
        {
            foreach (var ev in replay) if (!await Send(ev)) return;
            var nextBookmark = DateTime.UtcNow.AddSeconds(1);
            while (!cts.IsCancellationRequested)
            {
                using var waitCts = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
                waitCts.CancelAfter(TimeSpan.FromMilliseconds(500));
                try
                {
                    if (await live.WaitToReadAsync(waitCts.Token))
                    {
                        while (live.TryRead(out var ev))
                            if (ev.Rt == rt && (string.IsNullOrEmpty(ns) || ev.Ns == ns) && !await Send(ev)) return;
                    }
                    else return;
                }
                catch (OperationCanceledException) when (!cts.IsCancellationRequested) { }
                if (bookmarks && DateTime.UtcNow >= nextBookmark)
                {
                    nextBookmark = DateTime.UtcNow.AddSeconds(1);
                    var bm = new JsonObject { ["kind"] = rt.Kind, ["apiVersion"] = rt.GroupVersion, ["metadata"] = new JsonObject { ["resourceVersion"] = lastRv.ToString() } };
                    await WriteLine(ctx, new JsonObject { ["type"] = "BOOKMARK", ["object"] = bm });
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    static async Task WriteLine(HttpContext ctx, JsonObject o)
    {
        var bytes = Encoding.UTF8.GetBytes(o.ToJsonString(J.Compact) + "\n");
        await ctx.Response.Body.WriteAsync(bytes, ctx.RequestAborted);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
    }

    // ------------------------------------------------------------------ write
    static async Task<JsonObject> Body(HttpContext ctx)
    {
        using var sr = new StreamReader(ctx.Request.Body);
        var text = await sr.ReadToEndAsync();
        if (string.IsNullOrWhiteSpace(text)) throw ApiException.BadRequest("the request body is empty");
        return JsonNode.Parse(text) as JsonObject ?? throw ApiException.BadRequest("the object provided is unrecognized");
    }

    static async Task<JsonObject?> TryBody(HttpContext ctx)
    {
        using var sr = new StreamReader(ctx.Request.Body);
        var text = await sr.ReadToEndAsync();
        if (string.IsNullOrWhiteSpace(text)) return null;
        try { return JsonNode.Parse(text) as JsonObject; } catch (JsonException) { return null; }
    }

    static void FixNs(ResourceType rt, JsonObject o, string? ns)
    {
        var m = o.Meta();
        if (!rt.Namespaced) { m.Remove("namespace"); return; }
        var bodyNs = o.Ns();
        if (string.IsNullOrEmpty(bodyNs)) m["namespace"] = ns;
        else if (ns != null && bodyNs != ns) throw ApiException.BadRequest("the namespace of the provided object does not match the namespace sent on the request");
    }

    void CheckKind(ResourceType rt, JsonObject o)
    {
        var kind = o.Str("kind");
        var av = o.Str("apiVersion");
        if ((kind != null && kind != rt.Kind) || (av != null && av != rt.GroupVersion))
            throw ApiException.BadRequest($"the API version in the data ({av}) does not match the expected API version ({rt.GroupVersion})");
    }

    async Task Create(HttpContext ctx, ResourceType rt, string? ns, string? name, string? sub, bool dryRun)
    {
        if (name != null || sub != null) throw ApiException.MethodNotAllowed("create");
        var o = await Body(ctx);
        CheckKind(rt, o);
        FixNs(rt, o, ns);
        var m = o.Meta();
        if (string.IsNullOrEmpty(o.Name()) && m.Str("generateName") is { Length: > 0 } gn) m["name"] = gn + J.RandomSuffix(5);
        m.Remove("resourceVersion");
        Admission.Default(rt, o);
        Admission.Validate(rt, o);
        webhooks?.Admit("CREATE", rt, null, o.Ns(), o.Name(), o, null);
        await WriteJson(ctx, 201, store.Create(rt, o, dryRun));
    }

    async Task Update(HttpContext ctx, ResourceType rt, string? ns, string? name, string? sub, bool dryRun)
    {
        if (name == null) throw ApiException.MethodNotAllowed("update");
        var o = await Body(ctx);
        if (sub == "scale") { await WriteJson(ctx, 200, ScaleWrite(rt, ns, name, o, dryRun)); return; }
        CheckKind(rt, o);
        FixNs(rt, o, ns);
        if (o.Name() != name) throw ApiException.BadRequest("the name of the object (" + o.Name() + ") does not match the name on the URL (" + name + ")");
        if (sub == null) { Admission.Default(rt, o); Admission.Validate(rt, o); } else Admission.StripNulls(o);
        webhooks?.Admit("UPDATE", rt, sub, ns, name, o, store.Get(rt, ns, name));
        await WriteJson(ctx, 200, store.Update(rt, o, dryRun, sub == "status"));
    }

    async Task PatchObj(HttpContext ctx, ResourceType rt, string? ns, string name, string? sub, bool dryRun)
    {
        var ct = (ctx.Request.ContentType ?? "").Split(';')[0].Trim();
        using var sr = new StreamReader(ctx.Request.Body);
        var text = await sr.ReadToEndAsync();
        JsonNode? patch;
        try { patch = JsonNode.Parse(text); }
        catch (JsonException e) { throw ApiException.BadRequest($"error decoding patch: {e.Message}"); }

        if (ct == "application/strategic-merge-patch+json" && rt.IsCustom)
            throw new ApiException(415, "UnsupportedMediaType", $"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml");
        if (ct is not ("application/json-patch+json" or "application/merge-patch+json" or "application/strategic-merge-patch+json"))
            throw new ApiException(415, "UnsupportedMediaType", $"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json");

        JsonNode Apply(JsonNode current)
        {
            try
            {
                return ct switch
                {
                    "application/json-patch+json" => Patch.ApplyJsonPatch(current, patch as JsonArray ?? throw ApiException.BadRequest("json patch must be an array")),
                    "application/merge-patch+json" => Patch.MergePatch(current, patch)!,
                    _ => Patch.StrategicMerge(current, patch)!,
                };
            }
            catch (Patch.PatchFailed e)
            {
                throw new ApiException(422, "Invalid", e.Message);
            }
        }

        var result = store.WithLock(() =>
        {
            var cur = store.Get(rt, ns, name) ?? throw ApiException.NotFound(rt, name);
            if (sub == "scale")
            {
                var scaled = Apply(Scale(cur)) as JsonObject ?? throw ApiException.BadRequest("invalid scale");
                return ScaleWrite(rt, ns, name, scaled, dryRun);
            }
            var patched = Apply(cur) as JsonObject ?? throw ApiException.BadRequest("patch produced a non-object");
            patched.Meta()["name"] = name;
            if (rt.Namespaced) patched.Meta()["namespace"] = ns;
            patched["kind"] = rt.Kind; patched["apiVersion"] = rt.GroupVersion;
            if (sub == null) { Admission.Default(rt, patched); Admission.Validate(rt, patched); } else Admission.StripNulls(patched);
            webhooks?.Admit("UPDATE", rt, sub, ns, name, patched, cur);
            return store.Update(rt, patched, dryRun, sub == "status");
        });
        await WriteJson(ctx, 200, result);
    }

    static JsonObject Scale(JsonObject o) => new()
    {
        ["kind"] = "Scale",
        ["apiVersion"] = "autoscaling/v1",
        ["metadata"] = new JsonObject
        {
            ["name"] = o.Name(), ["namespace"] = o.Ns(), ["uid"] = o.Uid(),
            ["resourceVersion"] = o.Str("metadata.resourceVersion"), ["creationTimestamp"] = o.Str("metadata.creationTimestamp"),
        },
        ["spec"] = new JsonObject { ["replicas"] = o.Long("spec.replicas") ?? 0 },
        ["status"] = new JsonObject { ["replicas"] = o.Long("status.replicas") ?? 0, ["selector"] = LabelSelector.FromObject(o.At("spec.selector")).ToString() },
    };

    JsonObject ScaleWrite(ResourceType rt, string? ns, string name, JsonObject scale, bool dryRun)
    {
        var cur = store.Get(rt, ns, name) ?? throw ApiException.NotFound(rt, name);
        var rv = scale.Str("metadata.resourceVersion");
        if (!string.IsNullOrEmpty(rv) && rv != cur.Str("metadata.resourceVersion")) throw ApiException.Conflict(rt, name);
        var replicas = scale.Long("spec.replicas") ?? 0;
        if (replicas < 0) throw ApiException.Invalid(rt, name, "spec.replicas", $"Invalid value: {replicas}: must be greater than or equal to 0");
        cur.Obj("spec")["replicas"] = replicas;
        return Scale(store.Update(rt, cur, dryRun));
    }

    async Task Ssar(HttpContext ctx, string user)
    {
        JsonObject o;
        if ((ctx.Request.ContentType ?? "").Contains("protobuf"))
        {
            using var ms = new MemoryStream();
            await ctx.Request.Body.CopyToAsync(ms);
            var bytes = ms.ToArray();
            if (!Protobuf.IsK8sProtobuf(bytes)) throw ApiException.BadRequest("not a Kubernetes protobuf body");
            o = Protobuf.DecodeSsar(bytes);
        }
        else o = await Body(ctx);
        var ra = o.At("spec.resourceAttributes");
        var nra = o.At("spec.nonResourceAttributes");
        var verb = ra.Str("verb") ?? nra.Str("verb") ?? "";
        var allowed = ra != null ? Allowed(user, verb, ra.Str("resource") ?? "") : Allowed(user, verb);
        var status = new JsonObject { ["allowed"] = allowed };
        if (allowed) status["reason"] = $"RBAC: allowed by ClusterRoleBinding \"lab-{user}\" of ClusterRole \"{(user == "admin" ? "cluster-admin" : "view")}\" to User \"{user}\"";
        o["status"] = status;
        o["apiVersion"] = "authorization.k8s.io/v1";
        o["kind"] = "SelfSubjectAccessReview";
        o["metadata"] = new JsonObject { ["creationTimestamp"] = null };
        await WriteJson(ctx, 201, o);
    }
}
