using System.Text.Json.Nodes;

namespace KfmRollback.Lab.Api;

/// <summary>Server-side printing: meta.k8s.io/v1 Table like a real apiserver returns to kubectl get.</summary>
public static class Tables
{
    static JsonObject Col(string name, string type = "string", string format = "", int priority = 0, string description = "") =>
        new() { ["name"] = name, ["type"] = type, ["format"] = format, ["description"] = description, ["priority"] = priority };

    public static JsonArray Columns(ResourceType rt)
    {
        var cols = rt.Plural switch
        {
            "deployments" => new[] { Col("Name", format: "name"), Col("Ready"), Col("Up-to-date", "integer"), Col("Available", "integer"), Col("Age"), Col("Containers", priority: 1), Col("Images", priority: 1), Col("Selector", priority: 1) },
            "replicasets" => [Col("Name", format: "name"), Col("Desired", "integer"), Col("Current", "integer"), Col("Ready", "integer"), Col("Age"), Col("Containers", priority: 1), Col("Images", priority: 1), Col("Selector", priority: 1)],
            "pods" => [Col("Name", format: "name"), Col("Ready"), Col("Status"), Col("Restarts"), Col("Age"), Col("IP", priority: 1), Col("Node", priority: 1), Col("Nominated Node", priority: 1), Col("Readiness Gates", priority: 1)],
            "namespaces" => [Col("Name", format: "name"), Col("Status"), Col("Age")],
            "configmaps" => [Col("Name", format: "name"), Col("Data", "integer"), Col("Age")],
            "secrets" => [Col("Name", format: "name"), Col("Type"), Col("Data", "integer"), Col("Age")],
            "events" => [Col("Last Seen"), Col("Type"), Col("Reason"), Col("Object"), Col("Message")],
            "leases" => [Col("Name", format: "name"), Col("Holder"), Col("Age")],
            "horizontalpodautoscalers" => [Col("Name", format: "name"), Col("Reference"), Col("Targets"), Col("MinPods", "integer"), Col("MaxPods", "integer"), Col("Replicas", "integer"), Col("Age")],
            "applications" => [Col("Name", format: "name"), Col("Sync Status"), Col("Health Status"), Col("Revision", priority: 10), Col("Project", priority: 10)],
            "kustomizations" or "helmreleases" or "gitrepositories" => [Col("Name", format: "name"), Col("Age", "date"), Col("Ready"), Col("Status")],
            // The CRD's printer columns: Last run, Ready, Status, Age (the controller's additionalPrinterColumns).
            "imageupdateautomations" => [Col("Name", format: "name"), Col("Last run", "string"), Col("Ready"), Col("Status"), Col("Age", "date")],
            _ => [Col("Name", format: "name"), Col("Age")],
        };
        return new JsonArray(cols.Select(c => (JsonNode)c).ToArray());
    }

    public static JsonObject Table(ResourceType rt, IEnumerable<JsonObject> items, DateTimeOffset now, string rv, string? cont, bool includeColumns = true, bool fullObject = false)
    {
        var rows = new JsonArray();
        foreach (var o in items) rows.Add(Row(rt, o, now, fullObject));
        var meta = new JsonObject { ["resourceVersion"] = rv };
        if (!string.IsNullOrEmpty(cont)) meta["continue"] = cont;
        return new JsonObject
        {
            ["kind"] = "Table",
            ["apiVersion"] = "meta.k8s.io/v1",
            ["metadata"] = meta,
            ["columnDefinitions"] = includeColumns ? Columns(rt) : new JsonArray(),
            ["rows"] = rows,
        };
    }

    public static JsonObject PartialMetadata(JsonObject o) => new()
    {
        ["kind"] = "PartialObjectMetadata",
        ["apiVersion"] = "meta.k8s.io/v1",
        ["metadata"] = o["metadata"]?.DeepClone(),
    };

    static JsonObject Row(ResourceType rt, JsonObject o, DateTimeOffset now, bool fullObject)
    {
        var cells = new JsonArray(Cells(rt, o, now).Select(c => c).ToArray());
        return new JsonObject { ["cells"] = cells, ["object"] = fullObject ? o.Clone() : PartialMetadata(o) };
    }

    static JsonNode? N(object? v) => v switch { null => null, string s => JsonValue.Create(s), long l => JsonValue.Create(l), int i => JsonValue.Create(i), _ => JsonValue.Create(v.ToString()) };

    static IEnumerable<JsonNode?> Cells(ResourceType rt, JsonObject o, DateTimeOffset now)
    {
        var age = Age(o.Str("metadata.creationTimestamp"), now);
        var containers = (o.At("spec.template.spec.containers") as JsonArray) ?? new JsonArray();
        var cnames = string.Join(",", containers.Select(c => c.Str("name")));
        var cimages = string.Join(",", containers.Select(c => c.Str("image")));
        var selector = LabelSelector.FromObject(o.At("spec.selector")).ToString();
        switch (rt.Plural)
        {
            case "deployments":
                return [N(o.Name()), N($"{o.Long("status.readyReplicas") ?? 0}/{o.Long("spec.replicas") ?? 0}"), N(o.Long("status.updatedReplicas") ?? 0),
                    N(o.Long("status.availableReplicas") ?? 0), N(age), N(cnames), N(cimages), N(selector)];
            case "replicasets":
                return [N(o.Name()), N(o.Long("spec.replicas") ?? 0), N(o.Long("status.replicas") ?? 0), N(o.Long("status.readyReplicas") ?? 0), N(age), N(cnames), N(cimages), N(selector)];
            case "pods":
                {
                    var statuses = (o.At("status.containerStatuses") as JsonArray) ?? new JsonArray();
                    var total = (o.At("spec.containers") as JsonArray)?.Count ?? 0;
                    var ready = statuses.Count(s => s.Bool("ready"));
                    var restarts = statuses.Sum(s => s.Long("restartCount") ?? 0);
                    var reason = o.Str("status.phase") ?? "Pending";
                    foreach (var s in statuses)
                    {
                        var w = s.Str("state.waiting.reason");
                        if (!string.IsNullOrEmpty(w)) reason = w;
                    }
                    if (o.At("metadata.deletionTimestamp") != null) reason = "Terminating";
                    return [N(o.Name()), N($"{ready}/{total}"), N(reason), N(restarts), N(age), N(o.Str("status.podIP") ?? "<none>"), N(o.Str("spec.nodeName") ?? "<none>"), N("<none>"), N("<none>")];
                }
            case "namespaces": return [N(o.Name()), N(o.Str("status.phase") ?? "Active"), N(age)];
            case "configmaps": return [N(o.Name()), N((o["data"] as JsonObject)?.Count ?? 0), N(age)];
            case "secrets": return [N(o.Name()), N(o.Str("type") ?? "Opaque"), N((o["data"] as JsonObject)?.Count ?? 0), N(age)];
            case "events":
                return [N(Age(o.Str("lastTimestamp") ?? o.Str("metadata.creationTimestamp"), now)), N(o.Str("type")), N(o.Str("reason")),
                    N($"{o.Str("involvedObject.kind")?.ToLowerInvariant()}/{o.Str("involvedObject.name")}"), N(o.Str("message"))];
            case "leases": return [N(o.Name()), N(o.Str("spec.holderIdentity") ?? ""), N(age)];
            case "horizontalpodautoscalers":
                return [N(o.Name()), N($"{o.Str("spec.scaleTargetRef.kind")}/{o.Str("spec.scaleTargetRef.name")}"), N("cpu: <unknown>/80%"),
                    N(o.Long("spec.minReplicas") ?? 1), N(o.Long("spec.maxReplicas") ?? 0), N(o.Long("status.currentReplicas") ?? 0), N(age)];
            case "applications": return [N(o.Name()), N(o.Str("status.sync.status") ?? ""), N(o.Str("status.health.status") ?? ""), N(o.Str("status.sync.revision") ?? ""), N(o.Str("spec.project") ?? "")];
            case "kustomizations" or "helmreleases" or "gitrepositories":
                {
                    var ready = (o.At("status.conditions") as JsonArray)?.FirstOrDefault(c => c.Str("type") == "Ready");
                    return [N(o.Name()), N(o.Str("metadata.creationTimestamp")), N(ready.Str("status") ?? "Unknown"), N(ready.Str("message") ?? "")];
                }
            case "imageupdateautomations":
                {
                    var ready = (o.At("status.conditions") as JsonArray)?.FirstOrDefault(c => c.Str("type") == "Ready");
                    return [N(o.Name()), N(o.Str("status.lastAutomationRunTime") ?? ""), N(ready.Str("status") ?? "Unknown"), N(ready.Str("message") ?? ""), N(o.Str("metadata.creationTimestamp"))];
                }
            default: return [N(o.Name()), N(age)];
        }
    }

    public static string Age(string? ts, DateTimeOffset now)
    {
        var t = J.ParseTime(ts);
        if (t == null) return "<unknown>";
        return HumanDuration(now - t.Value);
    }

    /// <summary>k8s.io/apimachinery duration.HumanDuration.</summary>
    public static string HumanDuration(TimeSpan d)
    {
        var seconds = (long)d.TotalSeconds;
        if (seconds < -1) return "<invalid>";
        if (seconds < 0) return "0s";
        if (seconds < 60 * 2) return $"{seconds}s";
        var minutes = (long)d.TotalMinutes;
        if (minutes < 10) { var s = seconds % 60; return s == 0 ? $"{minutes}m" : $"{minutes}m{s}s"; }
        if (minutes < 60 * 3) return $"{minutes}m";
        var hours = (long)d.TotalHours;
        if (hours < 8) { var m = minutes % 60; return m == 0 ? $"{hours}h" : $"{hours}h{m}m"; }
        if (hours < 48) return $"{hours}h";
        if (hours < 24 * 8) { var h = hours % 24; return h == 0 ? $"{hours / 24}d" : $"{hours / 24}d{h}h"; }
        if (hours < 24 * 365 * 2) return $"{hours / 24}d";
        return $"{hours / 24 / 365}y";
    }
}
