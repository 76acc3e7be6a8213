using KfmRollback.Engine.Adapters.Http;
using System.Globalization;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Configuration;
using Microsoft.OpenApi;

namespace KfmRollback.Engine.Verification.Contract;

/// <summary>One exercised operation: its verdict, why, and the body it answered (kept in memory for the shape snapshot only).</summary>
internal sealed record SmokeOutcome(ContractOperation Operation, Verdict Verdict, string Summary, IReadOnlyDictionary<string, string> Evidence, JsonNode? Body);

/// <summary>
/// Calls every operation the document lists that is safe to call: GET and HEAD always, POST when
/// api.probe.endpoints lists it with method POST (its body_file, else the documented example, else a
/// body built from the schema's examples and defaults). Parameters come from documented examples;
/// a path parameter without one takes the first id its collection lists. Each answer is validated
/// against the schema documented for its status.
/// </summary>
internal sealed class ContractSmoke(ApiConfig api, OpenApiContract contract, ProbeClient client, string? token)
{
    /// <summary>Health paths belong to checklist A, and the document's own path is not part of the contract.</summary>
    public bool Skipped(ContractOperation operation) => api.HealthPaths.Contains(operation.Path) || operation.Path == api.OpenapiPath;

    /// <summary>The operations this run may call; the rest (PUT, DELETE, unlisted POSTs) are only named.</summary>
    public bool Safe(ContractOperation operation) =>
        operation.Method == HttpMethod.Get || operation.Method == HttpMethod.Head || ConfiguredPost(operation) is not null;

    private ProbeEndpoint? ConfiguredPost(ContractOperation operation) =>
        operation.Method != HttpMethod.Post ? null
            : api.Probe.Endpoints.FirstOrDefault(e => e.Method == ProbeMethod.Post && SamePath(e.Path, operation.Path));

    /// <summary>/api/v1/datasets/{id} in the probe plan matches /api/v1/datasets/{dataset_id} in the document.</summary>
    private static bool SamePath(string configured, string documented)
    {
        static string Shape(string p) => System.Text.RegularExpressions.Regex.Replace(p, "\\{[^}]*\\}", "{}");
        return Shape(configured) == Shape(documented);
    }

    /// <summary>
    /// A document path that is absolute, protocol-relative or leaves api.base_url: the API under test
    /// may be the bad build, and its document must not choose where the probe's token goes.
    /// </summary>
    public bool OutsideApi(ContractOperation operation) => client.Resolve(operation.Path) is null;

    public async Task<SmokeOutcome> RunAsync(ContractOperation operation, CancellationToken cancellationToken)
    {
        if (OutsideApi(operation))
        {
            return new SmokeOutcome(operation, Verdict.Fail,
                $"refused: the document path '{operation.Path}' is absolute, protocol-relative or leaves the API's base URL; it was not requested and no token was sent",
                new Dictionary<string, string> { ["requested"] = "false" }, null);
        }
        (string? target, string? missing) = await TargetAsync(operation, cancellationToken).ConfigureAwait(false);
        if (target is null)
        {
            return new SmokeOutcome(operation, Verdict.Inconclusive, $"not called: {missing}", new Dictionary<string, string>(), null);
        }
        string? body = null;
        if (operation.Method == HttpMethod.Post)
        {
            body = RequestBody(operation);
            if (body is null)
            {
                return new SmokeOutcome(operation, Verdict.Inconclusive, "not called: the request body has no example and no schema to build one from (set body_file on its api.probe.endpoints entry)", new Dictionary<string, string>(), null);
            }
        }
        ProbeResponse response = await client.SendAsync(operation.Method, target, token, cancellationToken, body).ConfigureAwait(false);
        var problems = new List<string>();
        if (response.Status is < 200 or > 299) { problems.Add($"status {response.Status}"); }
        var documented = OpenApiContract.ResponseFor(operation.Operation, response.Status);
        if (documented is null)
        {
            problems.Add($"status {response.Status} is not documented");
        }
        else if (OpenApiContract.JsonContent(documented.Value.Response.Content) is { Value.Schema: not null } media)
        {
            if (response.Body is null) { problems.Add("the body is not JSON"); }
            else { problems.AddRange(contract.ValidateResponse(operation, documented.Value.Key, media.Key, response.Body)); }
        }
        var evidence = new Dictionary<string, string>
        {
            ["status"] = response.Status.ToString(CultureInfo.InvariantCulture),
            ["violations"] = problems.Count.ToString(CultureInfo.InvariantCulture),
        };
        return problems.Count == 0
            ? new SmokeOutcome(operation, Verdict.Pass, "response valid against its schema", evidence, response.Body)
            : new SmokeOutcome(operation, Verdict.Fail, "response does not match its schema: " + string.Join("; ", problems.Take(5)), evidence, response.Status is >= 200 and <= 299 ? response.Body : null);
    }

    /// <summary>The request target with path and required query parameters filled in, or why it cannot be built.</summary>
    private async Task<(string? Target, string? Missing)> TargetAsync(ContractOperation operation, CancellationToken cancellationToken)
    {
        string path = operation.Path;
        var query = new List<string>();
        foreach (IOpenApiParameter parameter in operation.Parameters)
        {
            if (parameter.Name is null) { continue; }
            string? value = Example(parameter);
            if (parameter.In == ParameterLocation.Path)
            {
                value ??= await ListedIdAsync(operation.Path, parameter.Name, cancellationToken).ConfigureAwait(false);
                if (value is null) { return (null, $"no example and no listed id for path parameter {parameter.Name}"); }
                path = path.Replace("{" + parameter.Name + "}", Uri.EscapeDataString(value), StringComparison.Ordinal);
            }
            else if (parameter.In == ParameterLocation.Query && parameter.Required)
            {
                if (value is null) { return (null, $"required query parameter {parameter.Name} has no example"); }
                query.Add(Uri.EscapeDataString(parameter.Name) + "=" + Uri.EscapeDataString(value));
            }
            else if (parameter.Required && parameter.In is ParameterLocation.Header or ParameterLocation.Cookie)
            {
                return (null, $"required {parameter.In.ToString()!.ToLowerInvariant()} parameter {parameter.Name} cannot be sent by the probe");
            }
        }
        return (query.Count == 0 ? path : path + "?" + string.Join("&", query), null);
    }

    /// <summary>A parameter's documented example: its own, its named examples, then its schema's example, default or first enum value.</summary>
    private static string? Example(IOpenApiParameter parameter)
    {
        JsonNode? example = parameter.Example
            ?? parameter.Examples?.Values.Select(e => e.Value).FirstOrDefault(v => v is not null)
            ?? SchemaExample(parameter.Schema);
        return example is JsonValue value ? (value.TryGetValue(out string? s) ? s : value.ToJsonString()) : null;
    }

    private static JsonNode? SchemaExample(IOpenApiSchema? schema) =>
#pragma warning disable CS0618 // 3.0 documents' single "example" still arrives here; "examples" is the 3.1 keyword
        schema?.Examples?.FirstOrDefault() ?? schema?.Example ?? schema?.Default ?? schema?.Enum?.FirstOrDefault();
#pragma warning restore CS0618

    /// <summary>The first id the collection above a path parameter lists (today's lab and KFM lists answer { items: [...] }).</summary>
    private async Task<string?> ListedIdAsync(string path, string name, CancellationToken cancellationToken)
    {
        int brace = path.IndexOf('{', StringComparison.Ordinal);
        if (brace < 2 || client.Resolve(path[..(brace - 1)]) is not { }) { return null; }
        ProbeResponse list = await client.SendAsync(HttpMethod.Get, path[..(brace - 1)], token, cancellationToken).ConfigureAwait(false);
        if ((list.Body?["items"] as JsonArray)?.FirstOrDefault() is not JsonObject first) { return null; }
        JsonNode? id = first[name] ?? first.FirstOrDefault(p => p.Key.EndsWith("_id", StringComparison.Ordinal)).Value ?? first["id"];
        return id is JsonValue v && v.TryGetValue(out string? s) ? s : null;
    }

    /// <summary>The body of a configured POST: its body_file, else the documented example, else one built from the schema.</summary>
    private string? RequestBody(ContractOperation operation)
    {
        if (ConfiguredPost(operation)?.BodyFile is { } file) { return File.ReadAllText(file); }
        if (OpenApiContract.JsonContent(operation.Operation.RequestBody?.Content) is not { } media)
        {
            return operation.Operation.RequestBody is null ? "{}" : null;
        }
        JsonNode? example = media.Value.Example ?? media.Value.Examples?.Values.Select(e => e.Value).FirstOrDefault(v => v is not null);
        example ??= media.Value.Schema is { } schema ? Build(schema, 0) : null;
        return example?.ToJsonString();
    }

    /// <summary>A value for a schema from its examples and defaults; objects get their required properties only.</summary>
    private static JsonNode? Build(IOpenApiSchema schema, int depth)
    {
        if (SchemaExample(schema) is { } example) { return example.DeepClone(); }
        if (depth > 8) { return null; }
        JsonSchemaType type = schema.Type ?? (schema.Properties is { Count: > 0 } ? JsonSchemaType.Object : JsonSchemaType.String);
        if (type.HasFlag(JsonSchemaType.Object))
        {
            var obj = new JsonObject();
            foreach (string name in schema.Required ?? new HashSet<string>())
            {
                if (schema.Properties?.TryGetValue(name, out IOpenApiSchema? property) == true) { obj[name] = Build(property, depth + 1); }
            }
            return obj;
        }
        if (type.HasFlag(JsonSchemaType.Array)) { return new JsonArray(); }
        if (type.HasFlag(JsonSchemaType.Integer) || type.HasFlag(JsonSchemaType.Number)) { return JsonValue.Create(0); }
        if (type.HasFlag(JsonSchemaType.Boolean)) { return JsonValue.Create(false); }
        return JsonValue.Create(string.Empty);
    }
}
