using System.Text.Json.Nodes;

namespace KfmRollback.Lab.Api;

/// <summary>JSON patch (RFC 6902), JSON merge patch (RFC 7386) and a strategic merge patch subset.</summary>
public static class Patch
{
    public sealed class PatchFailed(string msg, bool testFailed = false) : Exception(msg) { public bool TestFailed { get; } = testFailed; }

    // ---- RFC 6902 ----
    public static JsonNode ApplyJsonPatch(JsonNode doc, JsonArray ops)
    {
        var root = doc.DeepClone();
        foreach (var opn in ops)
        {
            var op = opn.Str("op") ?? throw new PatchFailed("missing op");
            var path = opn.Str("path") ?? throw new PatchFailed("missing path");
            switch (op)
            {
                case "add": root = Add(root, path, opn!["value"]?.DeepClone()); break;
                case "remove": root = Remove(root, path, out _); break;
                case "replace":
                    if (path == "") { root = opn!["value"]!.DeepClone(); break; }
                    Resolve(root, path); // must exist
                    root = Remove(root, path, out _);
                    root = Add(root, path, opn!["value"]?.DeepClone());
                    break;
                case "move":
                    {
                        var from = opn.Str("from") ?? throw new PatchFailed("missing from");
                        root = Remove(root, from, out var v);
                        root = Add(root, path, v);
                        break;
                    }
                case "copy":
                    {
                        var from = opn.Str("from") ?? throw new PatchFailed("missing from");
                        root = Add(root, path, Resolve(root, from)?.DeepClone());
                        break;
                    }
                case "test":
                    {
                        var actual = Resolve(root, path);
                        if (!J.Same(actual, opn!["value"]))
                            throw new PatchFailed($"testing value {path} failed: test failed", true);
                        break;
                    }
                default: throw new PatchFailed($"Unexpected kind: {op}");
            }
        }
        return root;
    }

    static string[] Tokens(string path)
    {
        if (path == "") return [];
        if (!path.StartsWith('/')) throw new PatchFailed($"invalid path {path}");
        return path[1..].Split('/').Select(t => t.Replace("~1", "/").Replace("~0", "~")).ToArray();
    }

    static JsonNode? Resolve(JsonNode root, string path)
    {
        JsonNode? cur = root;
        foreach (var t in Tokens(path))
        {
            cur = cur switch
            {
                JsonObject o when o.TryGetPropertyValue(t, out var c) => c,
                JsonArray a when int.TryParse(t, out var i) && i >= 0 && i < a.Count => a[i],
                _ => throw new PatchFailed($"doc is missing path: \"{path}\": missing value")
            };
        }
        return cur;
    }

    static JsonNode Add(JsonNode root, string path, JsonNode? value)
    {
        var toks = Tokens(path);
        if (toks.Length == 0) return value ?? throw new PatchFailed("null root");
        var parent = Resolve(root, "/" + string.Join("/", toks[..^1].Select(Esc)));
        var last = toks[^1];
        switch (parent)
        {
            case JsonObject o: o[last] = value; break;
            case JsonArray a:
                if (last == "-") a.Add(value);
                else if (int.TryParse(last, out var i) && i >= 0 && i <= a.Count) a.Insert(i, value);
                else throw new PatchFailed($"add operation does not apply: doc is missing path: \"{path}\": missing value");
                break;
            default: throw new PatchFailed($"add operation does not apply: doc is missing path: \"{path}\": missing value");
        }
        return root;
    }

    static string Esc(string t) => t.Replace("~", "~0").Replace("/", "~1");

    static JsonNode Remove(JsonNode root, string path, out JsonNode? removed)
    {
        var toks = Tokens(path);
        if (toks.Length == 0) throw new PatchFailed("cannot remove root");
        var parent = toks.Length == 1 ? root : Resolve(root, "/" + string.Join("/", toks[..^1].Select(Esc)));
        var last = toks[^1];
        switch (parent)
        {
            case JsonObject o when o.TryGetPropertyValue(last, out var v):
                removed = v?.DeepClone(); o.Remove(last); break;
            case JsonArray a when int.TryParse(last, out var i) && i >= 0 && i < a.Count:
                removed = a[i]?.DeepClone(); a.RemoveAt(i); break;
            default: throw new PatchFailed($"remove operation does not apply: doc is missing path: \"{path}\": missing value");
        }
        return root;
    }

    // ---- RFC 7386 ----
    public static JsonNode? MergePatch(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject po) return patch?.DeepClone();
        var result = target is JsonObject to ? to.Clone() : new JsonObject();
        foreach (var (k, v) in po)
        {
            if (v is null) result.Remove(k);
            else result[k] = MergePatch(result[k], v);
        }
        return result;
    }

    // ---- strategic merge patch (the subset kubectl and a rollback tool send) ----
    static readonly Dictionary<string, string> MergeKeys = new()
    {
        ["containers"] = "name", ["initContainers"] = "name", ["ephemeralContainers"] = "name", ["env"] = "name",
        ["volumes"] = "name", ["volumeMounts"] = "mountPath", ["ports"] = "containerPort", ["imagePullSecrets"] = "name",
        ["conditions"] = "type", ["ownerReferences"] = "uid", ["tolerations"] = "key", ["hostAliases"] = "ip",
        ["volumeDevices"] = "devicePath", ["envFrom"] = "", ["finalizers"] = "",
    };

    public static JsonNode? StrategicMerge(JsonNode? target, JsonNode? patch, string? field = null)
    {
        if (patch is not JsonObject po) return patch?.DeepClone();
        if (po["$patch"]?.GetValue<string>() is "replace") { var c = po.Clone(); c.Remove("$patch"); return c; }
        if (po["$patch"]?.GetValue<string>() is "delete") return null;
        var result = target is JsonObject to ? to.Clone() : new JsonObject();
        foreach (var (k, v) in po)
        {
            if (k.StartsWith("$setElementOrder/") || k == "$retainKeys" || k.StartsWith("$deleteFromPrimitiveList/")) continue;
            if (k == "$patch") continue;
            if (v is null) { result.Remove(k); continue; }
            if (v is JsonArray pa && MergeKeys.TryGetValue(k, out var mk) && mk != "" && (result[k] is JsonArray || result[k] is null))
            {
                var ta = result[k] as JsonArray ?? new JsonArray();
                var merged = new JsonArray(ta.Select(x => x?.DeepClone()).ToArray());
                foreach (var item in pa)
                {
                    if (item is not JsonObject io) { merged.Add(item?.DeepClone()); continue; }
                    var keyVal = io[mk];
                    var idx = -1;
                    for (int i = 0; i < merged.Count; i++) if (J.Same(merged[i]?[mk], keyVal)) { idx = i; break; }
                    var directive = io["$patch"]?.GetValue<string>();
                    if (directive == "delete") { if (idx >= 0) merged.RemoveAt(idx); continue; }
                    if (idx >= 0) merged[idx] = StrategicMerge(merged[idx], io, k);
                    else { var n = io.Clone(); n.Remove("$patch"); merged.Add(n); }
                }
                result[k] = merged;
            }
            else if (v is JsonObject) result[k] = StrategicMerge(result[k], v, k);
            else result[k] = v.DeepClone();
        }
        return result;
    }
}
