using System.Text.Json.Nodes;

namespace KfmRollback.Lab.Api;

/// <summary>
/// Minimal /openapi/v3 documents: every kind has a permissive schema and every resource a PATCH path
/// declaring the fieldValidation query parameter, so kubectl uses server-side field validation
/// (which the lab accepts) instead of downloading full schemas.
/// </summary>
public static class OpenApiDocs
{
    static string Gv(ResourceType rt) => rt.Group == "" ? $"api/{rt.Version}" : $"apis/{rt.Group}/{rt.Version}";

    public static JsonObject Index()
    {
        var paths = new JsonObject();
        foreach (var gv in Resources.All.Select(Gv).Distinct())
            paths[gv] = new JsonObject { ["serverRelativeURL"] = $"/openapi/v3/{gv}?hash=0000000000000000000000000000000000000000000000000000000000000000" };
        return new JsonObject { ["paths"] = paths };
    }

    public static JsonObject? ForGroupVersion(string gv)
    {
        var types = Resources.All.Where(r => Gv(r) == gv).ToList();
        if (types.Count == 0) return null;
        var paths = new JsonObject();
        var schemas = new JsonObject();
        foreach (var rt in types)
        {
            var gvk = new JsonObject { ["group"] = rt.Group, ["version"] = rt.Version, ["kind"] = rt.Kind };
            var schemaName = $"{(rt.Group == "" ? "io.k8s.api.core" : rt.Group)}.{rt.Version}.{rt.Kind}";
            schemas[schemaName] = new JsonObject
            {
                ["type"] = "object",
                ["x-kubernetes-preserve-unknown-fields"] = true,
                ["x-kubernetes-group-version-kind"] = new JsonArray(gvk.DeepClone()),
            };
            var p = rt.Namespaced ? $"/{gv}/namespaces/{{namespace}}/{rt.Plural}/{{name}}" : $"/{gv}/{rt.Plural}/{{name}}";
            JsonObject Op(string id) => new()
            {
                ["operationId"] = id,
                ["parameters"] = new JsonArray(
                    new JsonObject { ["name"] = "dryRun", ["in"] = "query", ["schema"] = new JsonObject { ["type"] = "string" } },
                    new JsonObject { ["name"] = "fieldManager", ["in"] = "query", ["schema"] = new JsonObject { ["type"] = "string" } },
                    new JsonObject { ["name"] = "fieldValidation", ["in"] = "query", ["schema"] = new JsonObject { ["type"] = "string" } }),
                ["responses"] = new JsonObject
                {
                    ["200"] = new JsonObject
                    {
                        ["description"] = "OK",
                        ["content"] = new JsonObject { ["application/json"] = new JsonObject { ["schema"] = new JsonObject { ["$ref"] = $"#/components/schemas/{schemaName}" } } },
                    },
                },
                ["x-kubernetes-action"] = id.StartsWith("patch") ? "patch" : "put",
                ["x-kubernetes-group-version-kind"] = gvk.DeepClone(),
            };
            paths[p] = new JsonObject { ["patch"] = Op("patch" + rt.Kind), ["put"] = Op("replace" + rt.Kind) };
            var coll = rt.Namespaced ? $"/{gv}/namespaces/{{namespace}}/{rt.Plural}" : $"/{gv}/{rt.Plural}";
            var post = Op("create" + rt.Kind);
            post["x-kubernetes-action"] = "post";
            paths[coll] = new JsonObject { ["post"] = post };
        }
        return new JsonObject
        {
            ["openapi"] = "3.0.0",
            ["info"] = new JsonObject { ["title"] = "Kubernetes (KFM lab)", ["version"] = "v1.32.0" },
            ["paths"] = paths,
            ["components"] = new JsonObject { ["schemas"] = schemas },
        };
    }
}
