using System.Text.Json.Nodes;
using KfmRollback.Lab.Api;
using Microsoft.AspNetCore.Http;

namespace KfmRollback.Lab;

/// <summary>
/// /lab/ admin endpoints on the apiserver port (admin bearer token):
/// GET state, GET catalogue, POST advance?seconds=N, POST tick, POST compact,
/// GET/POST/DELETE faults, POST images {digest|name, state}, POST datasets {dataset_id, slice},
/// POST opa {active_revision}, GET/POST/DELETE admission (denying validating webhooks), POST helm {build} (a helm upgrade to that build).
/// </summary>
public sealed class LabAdmin(LabHost lab)
{
    public async Task Handle(HttpContext ctx)
    {
        try { await Inner(ctx); }
        catch (ApiException e) { await ApiServer.WriteStatus(ctx, e); }
        catch (System.Text.Json.JsonException e) { await ApiServer.WriteStatus(ctx, ApiException.BadRequest(e.Message)); }
    }

    async Task Inner(HttpContext ctx)
    {
        var auth = ctx.Request.Headers.Authorization.ToString();
        var tok = auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? auth[7..].Trim() : "";
        if (tok == lab.ViewerToken) throw new ApiException(403, "Forbidden", "the lab admin endpoints need the admin token");
        if (tok != lab.AdminToken) throw new ApiException(401, "Unauthorized", "Unauthorized");
        var what = (ctx.Request.RouteValues["rest"]?.ToString() ?? "").Trim('/');
        var m = ctx.Request.Method;
        async Task<JsonObject> Body()
        {
            using var sr = new StreamReader(ctx.Request.Body);
            var t = await sr.ReadToEndAsync();
            return string.IsNullOrWhiteSpace(t) ? new JsonObject() : J.Parse(t);
        }
        switch (what, m)
        {
            case ("state", "GET"): await ApiServer.WriteJson(ctx, 200, State()); break;
            case ("catalogue", "GET"): await ApiServer.WriteJson(ctx, 200, lab.Images.ToJson()); break;
            case ("advance", "POST"):
                {
                    var secs = double.TryParse(ctx.Request.Query["seconds"], System.Globalization.CultureInfo.InvariantCulture, out var s) ? s : 0;
                    if (secs <= 0) throw ApiException.BadRequest("seconds must be > 0");
                    lab.Clock.Advance(TimeSpan.FromSeconds(secs));
                    lab.TickNow();
                    await ApiServer.WriteJson(ctx, 200, State());
                    break;
                }
            case ("tick", "POST"): lab.TickNow(); await ApiServer.WriteJson(ctx, 200, State()); break;
            case ("compact", "POST"): lab.Store.Compact(); await ApiServer.WriteJson(ctx, 200, new JsonObject { ["compactedResourceVersion"] = lab.Store.CompactedRv }); break;
            case ("faults", "GET"): await ApiServer.WriteJson(ctx, 200, lab.Faults.ToJson()); break;
            case ("faults", "DELETE"): lab.Faults.Clear(); await ApiServer.WriteJson(ctx, 200, lab.Faults.ToJson()); break;
            case ("faults", "POST"):
                {
                    var b = await Body();
                    if (b["globalLatencyMs"] != null) lab.Faults.GlobalLatencyMs = (int)(b.Long("globalLatencyMs") ?? 0);
                    if (b["rules"] is JsonArray rules) foreach (var r in rules) lab.Faults.Add(FaultRule.FromJson(r!));
                    else if (b["resource"] != null || b["verb"] != null || b["pathContains"] != null) lab.Faults.Add(FaultRule.FromJson(b));
                    await ApiServer.WriteJson(ctx, 200, lab.Faults.ToJson());
                    break;
                }
            case ("admission", "GET"): await ApiServer.WriteJson(ctx, 200, lab.Webhooks.ToJson()); break;
            case ("admission", "DELETE"): lab.Webhooks.Clear(); await ApiServer.WriteJson(ctx, 200, lab.Webhooks.ToJson()); break;
            case ("admission", "POST"):
                {
                    var b = await Body();
                    if (b["webhooks"] is JsonArray hooks) foreach (var h in hooks) lab.Webhooks.Add(WebhookRule.FromJson(h!));
                    else lab.Webhooks.Add(WebhookRule.FromJson(b));
                    await ApiServer.WriteJson(ctx, 200, lab.Webhooks.ToJson());
                    break;
                }
            case ("images", "POST"):
                {
                    var b = await Body();
                    var digest = b.Str("digest") ?? (b.Str("name") is { } n ? lab.Images.Entries.FirstOrDefault(e => e.Name == n)?.Digest : null)
                        ?? throw ApiException.BadRequest("give digest or name");
                    var state = b.Str("state") switch
                    {
                        "CrashLoopBackOff" => PodFailure.CrashLoopBackOff,
                        "ImagePullBackOff" => PodFailure.ImagePullBackOff,
                        "None" or "Good" or null => PodFailure.None,
                        var x => throw ApiException.BadRequest($"unknown state {x}: CrashLoopBackOff, ImagePullBackOff or None"),
                    };
                    lab.Images.Mark(digest, state);
                    lab.TickNow();
                    await ApiServer.WriteJson(ctx, 200, new JsonObject { ["digest"] = digest, ["state"] = state.ToString() });
                    break;
                }
            case ("datasets", "POST"):
                {
                    var b = await Body();
                    string version;
                    try { version = lab.KfmApi.PublishDataset(b.Str("dataset_id") ?? "", b.Str("slice") ?? ""); }
                    catch (ArgumentException e) { throw ApiException.BadRequest(e.Message); }
                    await ApiServer.WriteJson(ctx, 200, new JsonObject { ["dataset_id"] = b.Str("dataset_id"), ["dataset_version_id"] = version });
                    break;
                }
            case ("helm", "POST"):
                {
                    // A bad deploy through Helm (helm upgrade with another image), for rollback tests.
                    var b = await Body();
                    var build = b.Str("build") ?? throw ApiException.BadRequest("give build (a catalogue name, e.g. bad-5xx)");
                    if (lab.Images.Entries.All(e => e.Name != build)) throw ApiException.BadRequest($"unknown build {build}");
                    int version = HelmSeed.Upgrade(lab, build);
                    await ApiServer.WriteJson(ctx, 200, new JsonObject { ["release"] = HelmSeed.Release, ["version"] = version, ["build"] = build });
                    break;
                }
            case ("opa", "POST"):
                {
                    var b = await Body();
                    lab.KfmApi.SetOpaRevision(b.Str("active_revision"));
                    await ApiServer.WriteJson(ctx, 200, lab.KfmApi.OpaStatus());
                    break;
                }
            default: throw new ApiException(404, "NotFound", $"no lab endpoint {m} /lab/{what}");
        }
    }

    JsonObject State()
    {
        var (entry, digest, ready) = lab.KfmApi.CurrentBuild();
        var deps = new JsonArray();
        foreach (var d in lab.Store.List(Resources.Deployments))
            deps.Add(new JsonObject
            {
                ["namespace"] = d.Ns(), ["name"] = d.Name(), ["generation"] = d.Long("metadata.generation"),
                ["revision"] = (d.At("metadata.annotations") as JsonObject)?["deployment.kubernetes.io/revision"]?.GetValue<string>(),
                ["images"] = new JsonArray((d.At("spec.template.spec.containers") as JsonArray)?.Select(c => (JsonNode?)c.Str("image")).ToArray() ?? []),
                ["status"] = d["status"]?.DeepClone(),
            });
        return new JsonObject
        {
            ["resourceVersion"] = lab.Store.CurrentRv, ["compactedResourceVersion"] = lab.Store.CompactedRv,
            ["simTime"] = J.MicroTime(lab.Clock.Now), ["timeScale"] = lab.Clock.Scale,
            ["kfmApi"] = new JsonObject { ["build"] = entry?.Name, ["digest"] = digest, ["readyPods"] = ready, ["regression"] = entry?.Regression.ToString() },
            ["deployments"] = deps,
            ["faults"] = lab.Faults.ToJson(),
            ["lastApiError"] = ApiServer.LastError,
            ["controllerErrors"] = new JsonArray(lab.LoopErrors.Select(e => (JsonNode?)e).ToArray()),
        };
    }
}
