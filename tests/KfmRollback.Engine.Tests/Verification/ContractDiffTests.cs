using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Verification.Contract;
using Xunit;

namespace KfmRollback.Engine.Tests.Verification;

/// <summary>Checklist C's spec-to-spec comparison and document reading, on documents written here (no API).</summary>
public sealed class ContractDiffTests
{
    // The same contract twice: OpenAPI 3.0 in JSON (nullable, example) and 3.1 in YAML (type arrays, examples).
    private const string Json30 = """
        {
          "openapi": "3.0.3",
          "info": { "title": "t", "version": "1" },
          "paths": {
            "/api/v1/datasets": {
              "get": {
                "parameters": [ { "name": "policy_label", "in": "query", "schema": { "$ref": "#/components/schemas/PolicyLabel" } } ],
                "responses": {
                  "200": { "description": "ok", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/DatasetList" } } } },
                  "404": { "description": "miss", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
                }
              }
            },
            "/api/v1/datasets/{id}": {
              "get": {
                "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" }, "example": "kansas_counties" } ],
                "responses": { "200": { "description": "ok", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Dataset" } } } } }
              }
            }
          },
          "components": {
            "schemas": {
              "PolicyLabel": { "type": "string", "enum": [ "public", "restricted", "quarantine" ] },
              "Error": { "type": "object", "required": [ "error_code", "message", "audit_ref" ],
                         "properties": { "error_code": { "type": "string" }, "message": { "type": "string" }, "audit_ref": { "type": "string" } } },
              "Dataset": { "type": "object", "required": [ "dataset_id", "policy_label" ],
                           "properties": { "dataset_id": { "type": "string" }, "policy_label": { "$ref": "#/components/schemas/PolicyLabel" },
                                           "size_bytes": { "type": "integer", "nullable": true }, "parts": { "type": "array", "items": { "$ref": "#/components/schemas/Dataset" } } } },
              "DatasetList": { "type": "object", "required": [ "items" ], "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/Dataset" } } } }
            }
          }
        }
        """;

    private const string Yaml31 = """
        openapi: 3.1.0
        info: { title: t, version: '1' }
        paths:
          /api/v1/datasets:
            get:
              parameters:
                - name: policy_label
                  in: query
                  schema: { $ref: '#/components/schemas/PolicyLabel' }
              responses:
                '200':
                  description: ok
                  content:
                    application/json:
                      schema: { $ref: '#/components/schemas/DatasetList' }
                '404':
                  description: miss
                  content:
                    application/json:
                      schema: { $ref: '#/components/schemas/Error' }
          /api/v1/datasets/{dataset_id}:
            get:
              parameters:
                - { name: dataset_id, in: path, required: true, schema: { type: string }, examples: { one: { value: kansas_counties } } }
              responses:
                '200':
                  description: ok
                  content:
                    application/json:
                      schema: { $ref: '#/components/schemas/Dataset' }
        components:
          schemas:
            PolicyLabel: { type: string, enum: [public, restricted, quarantine] }
            Error:
              type: object
              required: [error_code, message, audit_ref]
              properties:
                error_code: { type: string }
                message: { type: string }
                audit_ref: { type: string }
            Dataset:
              type: object
              required: [dataset_id, policy_label]
              properties:
                dataset_id: { type: string }
                policy_label: { $ref: '#/components/schemas/PolicyLabel' }
                size_bytes: { type: [integer, 'null'] }
                parts: { type: array, items: { $ref: '#/components/schemas/Dataset' } }
            DatasetList:
              type: object
              required: [items]
              properties:
                items: { type: array, items: { $ref: '#/components/schemas/Dataset' } }
        """;

    private static Task<OpenApiContract> Read(string text) => OpenApiContract.ParseAsync(Encoding.UTF8.GetBytes(text), "test", CancellationToken.None);

    /// <summary>The JSON 3.0 document with one edit made to it.</summary>
    private static Task<OpenApiContract> Edited(Action<JsonObject> edit)
    {
        var document = JsonNode.Parse(Json30)!.AsObject();
        edit(document);
        return Read(document.ToJsonString());
    }

    private static JsonObject Schema(JsonObject document, string name) => document["components"]!["schemas"]![name]!.AsObject();

    private static async Task<IReadOnlyList<ContractChange>> Diff(Action<JsonObject> edit) => ContractDiff.Compare(await Read(Json30), await Edited(edit));

    [Fact]
    public async Task Reads_json_3_0_and_yaml_3_1_as_the_same_contract()
    {
        OpenApiContract json = await Read(Json30), yaml = await Read(Yaml31);

        Assert.Equal(("json", "3.0"), (json.Format, json.Version));
        Assert.Equal(("yaml", "3.1"), (yaml.Format, yaml.Version));
        Assert.Empty(ContractDiff.Compare(json, yaml));
        Assert.Empty(ContractDiff.Compare(yaml, json));
    }

    [Fact]
    public async Task Validates_through_references_the_library_resolved_in_either_format()
    {
        foreach (OpenApiContract contract in new[] { await Read(Json30), await Read(Yaml31) })
        {
            ContractOperation list = contract.Operations.Single(o => o.Path == "/api/v1/datasets");
            var good = JsonNode.Parse("""{"items":[{"dataset_id":"a","policy_label":"public","size_bytes":null,"parts":[{"dataset_id":"b","policy_label":"restricted"}]}]}""");
            var bad = JsonNode.Parse("""{"items":[{"dataset_id":"a","policy_label":"public","parts":[{"dataset_id":"b","policy_label":"secret-label-value"}]}]}""");

            Assert.Empty(contract.ValidateResponse(list, "200", "application/json", good));
            string problem = Assert.Single(contract.ValidateResponse(list, "200", "application/json", bad));
            Assert.Equal("/items/0/parts/0/policy_label: enum", problem);   // where and which keyword, never the value
            Assert.Contains(": required", string.Join(";", contract.ValidateComponent("Error", JsonNode.Parse("""{"error_code":"X"}"""))));
        }
    }

    [Fact]
    public async Task An_unreadable_document_is_refused_with_what_to_fix()
    {
        KfmException e = await Assert.ThrowsAsync<KfmException>(() => Read("""{"openapi":"3.0.3","info":{"title":"t","version":"1"},"paths":{"/x":{"get":{"responses":{"200":{"$ref":"#/components/responses/Gone"}}}}}"""[..40]));
        Assert.Equal("ContractDocumentUnreadable", e.ErrorId);
        Assert.Contains("api.openapi_path", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_removed_path_is_breaking_and_names_each_operation()
    {
        var changes = await Diff(d => d["paths"]!.AsObject().Remove("/api/v1/datasets/{id}"));

        ContractChange change = Assert.Single(changes);
        Assert.True(change.Breaking);
        Assert.Equal("GET /api/v1/datasets/{id}: path removed", change.ToString());
    }

    [Fact]
    public async Task A_removed_operation_on_a_kept_path_is_breaking()
    {
        var changes = await Diff(d =>
        {
            var item = d["paths"]!["/api/v1/datasets"]!.AsObject();
            item["post"] = item["get"]!.DeepClone();
            item.Remove("get");
        });

        Assert.Contains(changes, c => c.Breaking && c.ToString() == "GET /api/v1/datasets: operation removed");
        Assert.Contains(changes, c => !c.Breaking && c.ToString() == "POST /api/v1/datasets: operation added");
    }

    [Fact]
    public async Task A_new_required_parameter_or_an_optional_one_made_required_is_breaking()
    {
        var added = await Diff(d => d["paths"]!["/api/v1/datasets"]!["get"]!["parameters"]!.AsArray()
            .Add(JsonNode.Parse("""{"name":"collection","in":"query","required":true,"schema":{"type":"string"}}""")));
        var tightened = await Diff(d => d["paths"]!["/api/v1/datasets"]!["get"]!["parameters"]![0]!["required"] = true);
        var optional = await Diff(d => d["paths"]!["/api/v1/datasets"]!["get"]!["parameters"]!.AsArray()
            .Add(JsonNode.Parse("""{"name":"limit","in":"query","schema":{"type":"integer"}}""")));

        Assert.Equal("GET /api/v1/datasets query parameter collection: new required parameter", Assert.Single(added, c => c.Breaking).ToString());
        Assert.Equal("GET /api/v1/datasets query parameter policy_label: optional parameter made required", Assert.Single(tightened, c => c.Breaking).ToString());
        Assert.DoesNotContain(optional, c => c.Breaking);
        Assert.Equal("GET /api/v1/datasets query parameter limit: new optional parameter", Assert.Single(optional).ToString());
    }

    [Fact]
    public async Task A_removed_or_retyped_response_field_is_breaking_wherever_the_schema_is_used()
    {
        var removed = await Diff(d => Schema(d, "Dataset")["properties"]!.AsObject().Remove("size_bytes"));
        var retyped = await Diff(d => Schema(d, "Dataset")["properties"]!["size_bytes"] = JsonNode.Parse("""{"type":"string"}"""));

        Assert.All(removed, c => Assert.True(c.Breaking));
        Assert.Contains(removed, c => c.ToString() == "GET /api/v1/datasets 200 response field items[].size_bytes: removed");
        Assert.Contains(removed, c => c.ToString() == "GET /api/v1/datasets/{id} 200 response field size_bytes: removed");
        Assert.Contains(retyped, c => c.Breaking && c.ToString() == "GET /api/v1/datasets/{id} 200 response field size_bytes: retyped from null|integer to string");
    }

    [Fact]
    public async Task A_response_type_narrowed_is_compatible_and_a_field_no_longer_required_is_not()
    {
        var narrowed = await Diff(d => Schema(d, "Dataset")["properties"]!["size_bytes"]!.AsObject().Remove("nullable"));
        var optional = await Diff(d => Schema(d, "Dataset")["required"] = new JsonArray("dataset_id"));

        Assert.NotEmpty(narrowed);
        Assert.DoesNotContain(narrowed, c => c.Breaking);
        Assert.Contains(optional, c => c.Breaking && c.ToString() == "GET /api/v1/datasets/{id} 200 response field policy_label: no longer required");
    }

    [Fact]
    public async Task A_removed_enum_value_breaks_the_request_and_is_a_note_on_responses()
    {
        var changes = await Diff(d => Schema(d, "PolicyLabel")["enum"] = new JsonArray("public", "restricted"));

        ContractChange breaking = Assert.Single(changes, c => c.Breaking);
        Assert.Equal("GET /api/v1/datasets query parameter policy_label: enum value \"quarantine\" removed", breaking.ToString());
        Assert.Contains(changes, c => !c.Breaking && c.ToString() == "GET /api/v1/datasets/{id} 200 response field policy_label: enum value \"quarantine\" removed");
    }

    [Fact]
    public async Task A_changed_error_model_is_named_as_such()
    {
        var changes = await Diff(d =>
        {
            var error = Schema(d, "Error");
            error["required"] = new JsonArray("error_code", "message");
            error["properties"]!["error_code"] = JsonNode.Parse("""{"type":"integer"}""");
        });

        Assert.All(changes, c => Assert.True(c.Breaking));
        Assert.Contains(changes, c => c.ToString() == "GET /api/v1/datasets 404 response field audit_ref: error model: no longer required");
        Assert.Contains(changes, c => c.ToString() == "GET /api/v1/datasets 404 response field error_code: error model: retyped from string to integer");
    }

    [Fact]
    public async Task Additions_are_notes_not_breaks()
    {
        var changes = await Diff(d =>
        {
            Schema(d, "Dataset")["properties"]!["license"] = JsonNode.Parse("""{"type":"string"}""");
            d["paths"]!["/api/v1/lineage/status"] = JsonNode.Parse("""{"get":{"responses":{"200":{"description":"ok"}}}}""");
        });

        Assert.DoesNotContain(changes, c => c.Breaking);
        Assert.Contains(changes, c => c.ToString() == "GET /api/v1/datasets/{id} 200 response field license: added (optional)");
        Assert.Contains(changes, c => c.ToString() == "GET /api/v1/lineage/status: path added");
    }

    [Fact]
    public async Task A_request_body_field_made_required_is_breaking()
    {
        const string Post = """{"post":{"requestBody":{"content":{"application/json":{"schema":{"type":"object","properties":{"dataset_id":{"type":"string"},"note":{"type":"string"}}}}}},"responses":{"200":{"description":"ok"}}}}""";
        OpenApiContract before = await Edited(d => d["paths"]!["/api/v1/evidence/resolve"] = JsonNode.Parse(Post));
        OpenApiContract after = await Edited(d =>
        {
            d["paths"]!["/api/v1/evidence/resolve"] = JsonNode.Parse(Post);
            d["paths"]!["/api/v1/evidence/resolve"]!["post"]!["requestBody"]!["content"]!["application/json"]!["schema"]!["required"] = new JsonArray("note");
        });

        Assert.Equal("POST /api/v1/evidence/resolve request body field note: made required", Assert.Single(ContractDiff.Compare(before, after)).ToString());
    }
}
