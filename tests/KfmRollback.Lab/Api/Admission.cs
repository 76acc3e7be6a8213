using System.Text.Json.Nodes;

namespace KfmRollback.Lab.Api;

/// <summary>Defaulting and validation the real apiserver applies to the types the lab serves.</summary>
public static class Admission
{
    /// <summary>Go decoding turns JSON nulls into zero values that are then omitted: drop them.</summary>
    public static void StripNulls(JsonNode? n)
    {
        if (n is JsonObject o)
        {
            foreach (var k in o.Where(kv => kv.Value is null).Select(kv => kv.Key).ToList()) o.Remove(k);
            foreach (var (_, v) in o) StripNulls(v);
        }
        else if (n is JsonArray a) foreach (var v in a) StripNulls(v);
    }

    public static void Default(ResourceType rt, JsonObject o)
    {
        StripNulls(o);
        if (rt == Resources.Deployments)
        {
            var spec = o.Obj("spec");
            spec["replicas"] ??= 1;
            spec["revisionHistoryLimit"] ??= 10;
            spec["progressDeadlineSeconds"] ??= 600;
            var strat = spec.Obj("strategy");
            strat["type"] ??= "RollingUpdate";
            if (strat.Str("type") == "RollingUpdate")
            {
                var ru = strat.Obj("rollingUpdate");
                ru["maxSurge"] ??= "25%";
                ru["maxUnavailable"] ??= "25%";
            }
            DefaultPodSpec(spec.Obj("template").Obj("spec"));
        }
        else if (rt == Resources.ReplicaSets)
        {
            o.Obj("spec")["replicas"] ??= 1;
            DefaultPodSpec(o.Obj("spec").Obj("template").Obj("spec"));
        }
        else if (rt == Resources.Pods) DefaultPodSpec(o.Obj("spec"));
        else if (rt == Resources.Namespaces) o.Obj("status")["phase"] ??= "Active";
        else if (rt == Resources.Secrets) o["type"] ??= "Opaque";
    }

    static void DefaultPodSpec(JsonObject ps)
    {
        ps["restartPolicy"] ??= "Always";
        ps["terminationGracePeriodSeconds"] ??= 30;
        ps["dnsPolicy"] ??= "ClusterFirst";
        ps["securityContext"] ??= new JsonObject();
        ps["schedulerName"] ??= "default-scheduler";
        if (ps["containers"] is JsonArray cs)
            foreach (var c in cs.OfType<JsonObject>())
            {
                var image = c.Str("image") ?? "";
                var tagless = !image.Contains('@') && !image[(image.LastIndexOf('/') + 1)..].Contains(':');
                c["imagePullPolicy"] ??= tagless || image.EndsWith(":latest") ? "Always" : "IfNotPresent";
                c["terminationMessagePath"] ??= "/dev/termination-log";
                c["terminationMessagePolicy"] ??= "File";
                c["resources"] ??= new JsonObject();
            }
    }

    public static void Validate(ResourceType rt, JsonObject o)
    {
        var name = o.Name();
        foreach (var field in new[] { "labels", "annotations" })
            if (o.At("metadata." + field) is JsonNode m)
            {
                if (m is not JsonObject mo) throw ApiException.BadRequest($"json: cannot unmarshal {m.GetValueKind().ToString().ToLowerInvariant()} into Go struct field ObjectMeta.metadata.{field} of type map[string]string");
                foreach (var (k, v) in mo)
                    if (v is not JsonValue jv || jv.GetValueKind() != System.Text.Json.JsonValueKind.String)
                        throw ApiException.BadRequest($"json: cannot unmarshal {v?.GetValueKind().ToString().ToLowerInvariant() ?? "null"} into Go struct field ObjectMeta.metadata.{field} of type string");
            }
        if (rt == Resources.Deployments || rt == Resources.ReplicaSets)
        {
            var sel = o.At("spec.selector");
            if (sel == null) throw ApiException.Invalid(rt, name, "spec.selector", "Required value");
            var ls = LabelSelector.FromObject(sel);
            if (ls.Empty) throw ApiException.Invalid(rt, name, "spec.selector", "Invalid value: \"null\": empty selector is invalid for deployment");
            var labels = o.At("spec.template.metadata.labels").StrMap();
            if (!ls.Matches(labels))
                throw ApiException.Invalid(rt, name, "spec.template.metadata.labels",
                    $"Invalid value: map[string]string{{{string.Join(", ", labels.Select(kv => $"\"{kv.Key}\":\"{kv.Value}\""))}}}: `selector` does not match template `labels`");
            if ((o.Long("spec.replicas") ?? 0) < 0)
                throw ApiException.Invalid(rt, name, "spec.replicas", $"Invalid value: {o.Long("spec.replicas")}: must be greater than or equal to 0");
            ValidateContainers(rt, name, o.At("spec.template.spec.containers"), "spec.template.spec.containers");
        }
        else if (rt == Resources.Pods) ValidateContainers(rt, name, o.At("spec.containers"), "spec.containers");
        else if (rt == Resources.Leases)
        {
            var d = o.Long("spec.leaseDurationSeconds");
            if (d is <= 0) throw ApiException.Invalid(rt, name, "spec.leaseDurationSeconds", $"Invalid value: {d}: must be greater than 0");
        }
    }

    static void ValidateContainers(ResourceType rt, string name, JsonNode? cs, string path)
    {
        if (cs is not JsonArray a || a.Count == 0) throw ApiException.Invalid(rt, name, path, "Required value");
        for (int i = 0; i < a.Count; i++)
        {
            if (string.IsNullOrEmpty(a[i].Str("name"))) throw ApiException.Invalid(rt, name, $"{path}[{i}].name", "Required value");
            if (string.IsNullOrEmpty(a[i].Str("image"))) throw ApiException.Invalid(rt, name, $"{path}[{i}].image", "Required value");
        }
    }
}
