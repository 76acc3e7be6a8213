using System.Text;
using System.Text.Json.Nodes;

namespace KfmRollback.Lab;

/// <summary>
/// The OpenAPI document each build serves: the v1 document (<see cref="KfmApi.OpenApi"/>) with the
/// build's contract change applied, matching what its responses do (<c>DatasetJson</c>, the STAC route).
/// Served as JSON at /api/v1/openapi.json and as YAML at /api/v1/openapi.yaml.
/// </summary>
public sealed partial class KfmApi
{
    /// <summary>The document of the build the API currently behaves as.</summary>
    public JsonObject ServedOpenApi() => OpenApiFor(CurrentBuild().entry?.Regression ?? Regression.None);

    public JsonObject OpenApiFor(Regression regression)
    {
        var document = OpenApi();
        var paths = (JsonObject)document["paths"]!;
        var schemas = (JsonObject)document["components"]!["schemas"]!;
        var dataset = (JsonObject)schemas["Dataset"]!["properties"]!;
        switch (regression)
        {
            case Regression.ContractFieldRemoved:
                dataset.Remove("title");
                break;
            case Regression.ContractFieldRetyped:
                dataset["size_bytes"] = new JsonObject { ["type"] = "string" };
                break;
            case Regression.ContractPathRemoved:
                paths.Remove("/api/v1/stac/items");
                break;
            case Regression.ContractRequiredParam:
                paths["/api/v1/stac/items"]!["get"]!["parameters"] = new JsonArray(new JsonObject
                {
                    ["name"] = "collection", ["in"] = "query", ["required"] = true,
                    ["schema"] = new JsonObject { ["type"] = "string" }, ["example"] = "kansas_counties",
                });
                break;
            case Regression.ContractEnumRemoved:
                ((JsonArray)schemas["PolicyLabel"]!["enum"]!).RemoveAll(v => (string?)v == "quarantine");
                break;
            case Regression.ContractFieldAdded:
                dataset["license"] = new JsonObject { ["type"] = "string" };
                break;
        }
        return document;
    }

    /// <summary>
    /// Block-style YAML of a JSON document: mappings and sequences indented, every scalar written as
    /// JSON (a JSON string is a YAML double-quoted scalar), so the text means exactly the JSON.
    /// </summary>
    public static string Yaml(JsonNode document)
    {
        var text = new StringBuilder();
        void Write(JsonNode? node, int indent)
        {
            string pad = new(' ', indent);
            switch (node)
            {
                case JsonObject { Count: > 0 } obj:
                    foreach (var (key, value) in obj)
                    {
                        text.Append(pad).Append(JsonValue.Create(key)!.ToJsonString()).Append(':');
                        WriteValue(value, indent);
                    }
                    break;
                case JsonArray { Count: > 0 } array:
                    foreach (var item in array)
                    {
                        text.Append(pad).Append('-');
                        WriteValue(item, indent);
                    }
                    break;
            }
        }
        void WriteValue(JsonNode? value, int indent)
        {
            if (value is JsonObject { Count: > 0 } or JsonArray { Count: > 0 })
            {
                text.Append('\n');
                Write(value, indent + 2);
            }
            else
            {
                text.Append(' ').Append(value?.ToJsonString() ?? "null").Append('\n');
            }
        }
        Write(document, 0);
        return text.ToString();
    }
}
