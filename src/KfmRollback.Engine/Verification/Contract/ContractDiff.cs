using KfmRollback.Engine.Adapters.Http;
using System.Text.RegularExpressions;
using Microsoft.OpenApi;

namespace KfmRollback.Engine.Verification.Contract;

/// <summary>
/// One difference between the last-known-good specification and the running one. <see cref="Location"/>
/// is where in the operation ("200 response", "query parameter limit", "request body"), <see cref="Field"/>
/// the JSON path inside a body ("items[].policy_label"), empty when the change is not about a field.
/// </summary>
internal sealed record ContractChange(bool Breaking, string Operation, string Location, string Field, string Change)
{
    public override string ToString() =>
        Operation + (Location.Length == 0 ? "" : " " + Location) + (Field.Length == 0 ? "" : " field " + Field) + ": " + Change;
}

/// <summary>
/// Spec-to-spec comparison with the usual breaking-change rules (those of oasdiff): a client written
/// against the old document must keep working. Breaking: a removed path or operation, a new required
/// parameter or request field (or an optional one made required), a removed or retyped response field,
/// a response field no longer required, a removed success response, a request enum value removed, and
/// any of those on an error response (the error model). Additions (a new path, an optional parameter, a
/// response field) are notes. oneOf/anyOf branches are not compared.
/// </summary>
internal static class ContractDiff
{
    private static readonly string[] ErrorModel = { "error_code", "message", "audit_ref" };

    private enum Direction { Request, Response }

    public static IReadOnlyList<ContractChange> Compare(OpenApiContract baseline, OpenApiContract running)
    {
        var changes = new List<ContractChange>();
        Dictionary<string, ContractOperation> before = baseline.Operations.ToDictionary(Key), after = running.Operations.ToDictionary(Key);
        var beforePaths = baseline.Operations.Select(o => Normalise(o.Path)).ToHashSet();
        var afterPaths = running.Operations.Select(o => Normalise(o.Path)).ToHashSet();
        foreach (var (key, old) in before)
        {
            if (!after.TryGetValue(key, out ContractOperation? now))
            {
                changes.Add(new(true, old.Name, "", "", afterPaths.Contains(Normalise(old.Path)) ? "operation removed" : "path removed"));
                continue;
            }
            Parameters(old, now, changes);
            RequestBody(old, now, changes);
            Responses(old, now, changes);
        }
        foreach (var (key, now) in after.Where(a => !before.ContainsKey(a.Key)))
        {
            changes.Add(new(false, now.Name, "", "", beforePaths.Contains(Normalise(now.Path)) ? "operation added" : "path added"));
        }
        return changes;
    }

    /// <summary>Path parameter names do not matter: /datasets/{id} and /datasets/{dataset_id} are the same path.</summary>
    private static string Normalise(string path) => Regex.Replace(path, "\\{[^}]*\\}", "{}");

    private static string Key(ContractOperation operation) => operation.Method.Method.ToUpperInvariant() + " " + Normalise(operation.Path);

    private static void Parameters(ContractOperation old, ContractOperation now, List<ContractChange> changes)
    {
        static string Id(IOpenApiParameter p) => $"{p.In.ToString()!.ToLowerInvariant()} parameter {p.Name}";
        var before = old.Parameters.Where(p => p.In != ParameterLocation.Path).ToDictionary(Id);
        foreach (IOpenApiParameter parameter in now.Parameters.Where(p => p.In != ParameterLocation.Path))
        {
            string id = Id(parameter);
            if (!before.TryGetValue(id, out IOpenApiParameter? was))
            {
                changes.Add(new(parameter.Required, now.Name, id, "", parameter.Required ? "new required parameter" : "new optional parameter"));
                continue;
            }
            if (parameter.Required && !was.Required) { changes.Add(new(true, now.Name, id, "", "optional parameter made required")); }
            Schemas(Direction.Request, now.Name, id, "", was.Schema, parameter.Schema, changes, new HashSet<string>(), 0);
        }
        foreach (string id in before.Keys.Where(id => !now.Parameters.Any(p => p.In != ParameterLocation.Path && Id(p) == id)))
        {
            changes.Add(new(false, now.Name, id, "", "parameter removed (no longer read)"));
        }
        // Path parameters are positional: their names may change freely, their types may not narrow.
        var oldPath = old.Parameters.Where(p => p.In == ParameterLocation.Path).ToList();
        var nowPath = now.Parameters.Where(p => p.In == ParameterLocation.Path).ToList();
        for (int i = 0; i < Math.Min(oldPath.Count, nowPath.Count); i++)
        {
            Schemas(Direction.Request, now.Name, "path parameter " + nowPath[i].Name, "", oldPath[i].Schema, nowPath[i].Schema, changes, new HashSet<string>(), 0);
        }
    }

    private static void RequestBody(ContractOperation old, ContractOperation now, List<ContractChange> changes)
    {
        IOpenApiRequestBody? was = old.Operation.RequestBody, body = now.Operation.RequestBody;
        if (body is null) { return; }
        if (body.Required && (was is null || !was.Required))
        {
            changes.Add(new(true, now.Name, "request body", "", was is null ? "new required request body" : "request body made required"));
        }
        if (was is null) { return; }
        var oldMedia = OpenApiContract.JsonContent(was.Content);
        var newMedia = OpenApiContract.JsonContent(body.Content);
        if (oldMedia is not null && newMedia is null)
        {
            changes.Add(new(true, now.Name, "request body", "", $"media type {oldMedia.Value.Key} no longer accepted"));
            return;
        }
        if (oldMedia is not null && newMedia is not null)
        {
            Schemas(Direction.Request, now.Name, "request body", "", oldMedia.Value.Value.Schema, newMedia.Value.Value.Schema, changes, new HashSet<string>(), 0);
        }
    }

    private static void Responses(ContractOperation old, ContractOperation now, List<ContractChange> changes)
    {
        var before = old.Operation.Responses ?? new OpenApiResponses();
        var after = now.Operation.Responses ?? new OpenApiResponses();
        foreach (var (code, was) in before)
        {
            bool success = code.StartsWith('2');
            string location = code + " response";
            if (!after.TryGetValue(code, out IOpenApiResponse? response))
            {
                changes.Add(new(success, now.Name, location, "", success ? "success response removed" : "no longer documented"));
                continue;
            }
            var oldMedia = OpenApiContract.JsonContent(was.Content);
            var newMedia = OpenApiContract.JsonContent(response.Content);
            if (oldMedia is null) { continue; }
            if (newMedia is null)
            {
                changes.Add(new(true, now.Name, location, "", $"no longer answers {oldMedia.Value.Key}"));
                continue;
            }
            Schemas(Direction.Response, now.Name, location, "", oldMedia.Value.Value.Schema, newMedia.Value.Value.Schema, changes, new HashSet<string>(), 0);
        }
        foreach (string code in after.Keys.Where(c => !before.ContainsKey(c)))
        {
            changes.Add(new(false, now.Name, code + " response", "", "response added"));
        }
    }

    private static void Schemas(Direction direction, string operation, string location, string field,
        IOpenApiSchema? was, IOpenApiSchema? now, List<ContractChange> changes, HashSet<string> seen, int depth)
    {
        if (was is null || now is null || depth > 24) { return; }
        // A recursive schema is compared once per reference pair and field.
        if (was is OpenApiSchemaReference a && now is OpenApiSchemaReference b && !seen.Add($"{a.Reference.Id}|{b.Reference.Id}|{field}")) { return; }
        bool error = direction == Direction.Response && !location.StartsWith('2');
        void Add(bool breaking, string what, string at)
        {
            bool errorModel = error && ErrorModel.Contains(at.Split('.', '[')[0]);
            changes.Add(new(breaking, operation, location, at, errorModel ? "error model: " + what : what));
        }

        JsonSchemaType? oldType = TypeOf(was), newType = TypeOf(now);
        if (oldType is { } t0 && newType is { } t1 && t0 != t1)
        {
            // A response may not answer a type it did not; a request must still take every type it took.
            JsonSchemaType widerThan = direction == Direction.Response ? Normalise(t1) & ~Normalise(t0) : Normalise(t0) & ~Normalise(t1);
            Add(widerThan != 0, $"retyped from {Describe(t0)} to {Describe(t1)}" + (widerThan != 0 ? "" : " (compatible)"), field);
        }

        var oldEnum = was.Enum?.Select(v => v.ToJsonString()).ToHashSet();
        var newEnum = now.Enum?.Select(v => v.ToJsonString()).ToHashSet();
        if (oldEnum is not null && newEnum is not null)
        {
            foreach (string removed in oldEnum.Where(v => !newEnum.Contains(v)))
            {
                Add(direction == Direction.Request, $"enum value {removed} removed", field);
            }
            foreach (string added in newEnum.Where(v => !oldEnum.Contains(v)))
            {
                Add(false, $"enum value {added} added", field);
            }
        }

        var (oldProperties, oldRequired) = Properties(was);
        var (newProperties, newRequired) = Properties(now);
        string Child(string name) => field.Length == 0 ? name : field + "." + name;
        foreach (var (name, schema) in oldProperties)
        {
            if (!newProperties.TryGetValue(name, out IOpenApiSchema? current))
            {
                Add(direction == Direction.Response, direction == Direction.Response ? "removed" : "removed from the request (no longer read)", Child(name));
                continue;
            }
            if (direction == Direction.Response && oldRequired.Contains(name) && !newRequired.Contains(name)) { Add(true, "no longer required", Child(name)); }
            if (direction == Direction.Request && !oldRequired.Contains(name) && newRequired.Contains(name)) { Add(true, "made required", Child(name)); }
            Schemas(direction, operation, location, Child(name), schema, current, changes, seen, depth + 1);
        }
        foreach (string name in newProperties.Keys.Where(n => !oldProperties.ContainsKey(n)))
        {
            bool required = newRequired.Contains(name);
            if (direction == Direction.Request) { Add(required, required ? "new required field" : "new optional field", Child(name)); }
            else { Add(false, required ? "added" : "added (optional)", Child(name)); }
        }

        Schemas(direction, operation, location, field + "[]", was.Items, now.Items, changes, seen, depth + 1);
    }

    /// <summary>The declared type; a schema with properties and no type is an object.</summary>
    private static JsonSchemaType? TypeOf(IOpenApiSchema schema) =>
        schema.Type ?? (schema.Properties is { Count: > 0 } ? JsonSchemaType.Object : null);

    /// <summary>An integer is a number: number → integer narrows, integer → number widens.</summary>
    private static JsonSchemaType Normalise(JsonSchemaType type) => type.HasFlag(JsonSchemaType.Number) ? type | JsonSchemaType.Integer : type;

    private static string Describe(JsonSchemaType type) =>
        string.Join("|", Enum.GetValues<JsonSchemaType>().Where(t => type.HasFlag(t)).Select(t => t.ToString().ToLowerInvariant()));

    /// <summary>Properties and required names, with allOf members merged in.</summary>
    private static (Dictionary<string, IOpenApiSchema> Properties, HashSet<string> Required) Properties(IOpenApiSchema schema)
    {
        var properties = new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal);
        var required = new HashSet<string>(StringComparer.Ordinal);
        void Merge(IOpenApiSchema s, int depth)
        {
            foreach (var (name, property) in s.Properties ?? new Dictionary<string, IOpenApiSchema>()) { properties.TryAdd(name, property); }
            required.UnionWith(s.Required ?? new HashSet<string>());
            if (depth < 8) { foreach (IOpenApiSchema member in s.AllOf ?? new List<IOpenApiSchema>()) { Merge(member, depth + 1); } }
        }
        Merge(schema, 0);
        return (properties, required);
    }
}
