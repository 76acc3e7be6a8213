using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Verification;

/// <summary>
/// Checklist C: the API's own OpenAPI document drives smoke calls, each response is validated
/// against its schema (JsonSchema.Net), the error model is checked on a miss, and the shape of every
/// response is compared with the contract snapshot recorded for a known-good build: a removed
/// field or a changed type is a breaking change.
/// </summary>
public static class ContractChecks
{
    public static async Task<IReadOnlyList<CheckResult>> RunAsync(EnvironmentConfig environment, string? runningDigest, bool recordSnapshot, CancellationToken cancellationToken)
    {
        ApiConfig api = environment.Api;
        if (api.OpenapiPath is null)
        {
            return new[] { HealthChecks.Result(environment, "C.openapi", Verdict.Inconclusive, "api.openapi_path is not configured, so there is no contract to check against", new Dictionary<string, string>()) };
        }
        using var client = new ProbeClient(api);
        string? token = client.TokenOf(api.Probe.Callers.First(c => c.Value.Role == CallerRole.Public && !c.Value.Anonymous).Key);
        ProbeResponse document = await client.SendAsync(HttpMethod.Get, api.OpenapiPath, token, cancellationToken).ConfigureAwait(false);
        if (document.Status != 200 || document.Body is not JsonObject openApi || openApi["paths"] is not JsonObject paths)
        {
            return new[] { HealthChecks.Result(environment, "C.openapi", Verdict.Fail, $"the OpenAPI document at {api.OpenapiPath} could not be read (status {document.Status})", new Dictionary<string, string>()) };
        }

        var results = new List<CheckResult>();
        var shapes = new SortedDictionary<string, SortedDictionary<string, string>>(StringComparer.Ordinal);
        foreach (var (path, item) in paths)
        {
            if (item?["get"] is not JsonObject get || get["responses"]?["200"]?["content"]?["application/json"]?["schema"] is not JsonNode schema || IsHealthPath(api, path))
            {
                continue;
            }
            string? concrete = await ConcretePathAsync(client, path, token, cancellationToken).ConfigureAwait(false);
            if (concrete is null)
            {
                results.Add(HealthChecks.Result(environment, "C.smoke" + path, Verdict.Inconclusive, "no example id could be found for this path", new Dictionary<string, string>()));
                continue;
            }
            ProbeResponse response = await client.SendAsync(HttpMethod.Get, concrete, token, cancellationToken).ConfigureAwait(false);
            IReadOnlyList<string> problems = response.Status == 200 ? Validate(openApi, schema, response.Body) : new[] { $"status {response.Status}" };
            if (response.Status == 200 && response.Body is not null)
            {
                shapes[path] = Shape(response.Body);
            }
            results.Add(HealthChecks.Result(environment, "C.smoke" + path, problems.Count == 0 ? Verdict.Pass : Verdict.Fail,
                problems.Count == 0 ? "response valid against its schema" : "response does not match its schema: " + string.Join("; ", problems.Take(5)),
                new Dictionary<string, string> { ["status"] = response.Status.ToString(CultureInfo.InvariantCulture), ["violations"] = problems.Count.ToString(CultureInfo.InvariantCulture) }));
        }
        results.Add(await ErrorModelAsync(environment, client, openApi, token, cancellationToken).ConfigureAwait(false));
        results.Add(CompareWithSnapshot(environment, api, runningDigest, shapes, recordSnapshot));
        return results;
    }

    private static bool IsHealthPath(ApiConfig api, string path) => api.HealthPaths.Contains(path) || path == api.OpenapiPath;

    /// <summary>A path with {id} gets the first id its collection lists, so the smoke call hits a real object.</summary>
    private static async Task<string?> ConcretePathAsync(ProbeClient client, string path, string? token, CancellationToken cancellationToken)
    {
        int brace = path.IndexOf('{', StringComparison.Ordinal);
        if (brace < 0) { return path; }
        string collection = path[..(brace - 1)];
        ProbeResponse list = await client.SendAsync(HttpMethod.Get, collection, token, cancellationToken).ConfigureAwait(false);
        JsonNode? first = (list.Body?["items"] as JsonArray)?.FirstOrDefault();
        string? id = (string?)first?["dataset_id"] ?? (string?)first?["id"];
        if (id is null) { return null; }
        int close = path.IndexOf('}', brace);
        return path[..brace] + Uri.EscapeDataString(id) + path[(close + 1)..];
    }

    private static async Task<CheckResult> ErrorModelAsync(EnvironmentConfig environment, ProbeClient client, JsonObject openApi, string? token, CancellationToken cancellationToken)
    {
        string missing = "/api/v1/datasets/" + environment.Api.Probe.MissingIdPattern.Replace("{random}", Guid.NewGuid().ToString("N")[..12], StringComparison.Ordinal);
        ProbeResponse response = await client.SendAsync(HttpMethod.Get, missing, token, cancellationToken).ConfigureAwait(false);
        JsonNode? errorSchema = openApi["components"]?["schemas"]?["Error"] is null ? null : JsonNode.Parse("{\"$ref\":\"#/components/schemas/Error\"}");
        var problems = new List<string>();
        if (response.Status < 400) { problems.Add($"a missing object answered {response.Status}"); }
        if (errorSchema is not null) { problems.AddRange(Validate(openApi, errorSchema, response.Body)); }
        foreach (string field in new[] { "error_code", "message", "audit_ref" })
        {
            if (response.Body?[field] is null) { problems.Add($"error lacks {field}"); }
        }
        return HealthChecks.Result(environment, "C.error-model", problems.Count == 0 ? Verdict.Pass : Verdict.Fail,
            problems.Count == 0 ? "errors keep the documented model (error_code, message, audit_ref)" : string.Join("; ", problems),
            new Dictionary<string, string> { ["status"] = response.Status.ToString(CultureInfo.InvariantCulture) });
    }

    /// <summary>Validates a body against an OpenAPI schema, with components.schemas as JSON Schema $defs.</summary>
    internal static IReadOnlyList<string> Validate(JsonObject openApi, JsonNode schema, JsonNode? body)
    {
        string defs = openApi["components"]?["schemas"]?.ToJsonString() ?? "{}";
        string rootSchema = schema.ToJsonString();
        string text = ("{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"$defs\":" + defs + ",\"allOf\":[" + rootSchema + "]}")
            .Replace("#/components/schemas/", "#/$defs/", StringComparison.Ordinal);
        JsonSchema jsonSchema = JsonSchema.FromText(text);
        EvaluationResults results = jsonSchema.Evaluate(body, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (results.IsValid) { return Array.Empty<string>(); }
        // Locations and keywords only: values could be restricted data.
        return results.Details.Where(d => d.HasErrors && d.Errors is not null)
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Key}"))
            .Distinct().ToList();
    }

    /// <summary>Field path → JSON type, with array items folded together ("items[].policy_label": "string").</summary>
    internal static SortedDictionary<string, string> Shape(JsonNode body)
    {
        var shape = new SortedDictionary<string, string>(StringComparer.Ordinal);
        void Walk(JsonNode? node, string path)
        {
            switch (node)
            {
                case JsonObject obj:
                    foreach (var (key, value) in obj) { Walk(value, path.Length == 0 ? key : path + "." + key); }
                    break;
                case JsonArray array:
                    foreach (JsonNode? item in array) { Walk(item, path + "[]"); }
                    break;
                case JsonValue value when path.Length > 0 && !path.EndsWith("audit_ref", StringComparison.Ordinal):
                    shape[path] = value.GetValueKind() switch
                    {
                        JsonValueKind.String => "string",
                        JsonValueKind.Number => "number",
                        JsonValueKind.True or JsonValueKind.False => "boolean",
                        _ => "null",
                    };
                    break;
            }
        }
        Walk(body, string.Empty);
        return shape;
    }

    private static CheckResult CompareWithSnapshot(EnvironmentConfig environment, ApiConfig api, string? runningDigest, SortedDictionary<string, SortedDictionary<string, string>> shapes, bool record)
    {
        if (api.ContractSnapshotDir is null)
        {
            return HealthChecks.Result(environment, "C.no-breaking-change", Verdict.Inconclusive, "api.contract_snapshot_dir is not configured: nothing recorded to compare with", new Dictionary<string, string>());
        }
        Directory.CreateDirectory(api.ContractSnapshotDir);
        string SnapshotPath(string digest) => Path.Combine(api.ContractSnapshotDir, digest.Replace(':', '-') + ".json");
        if (record && runningDigest is not null)
        {
            File.WriteAllText(SnapshotPath(runningDigest), JsonSerializer.Serialize(shapes, new JsonSerializerOptions { WriteIndented = true }));
        }
        FileInfo? baseline = runningDigest is not null && File.Exists(SnapshotPath(runningDigest))
            ? new FileInfo(SnapshotPath(runningDigest))
            : new DirectoryInfo(api.ContractSnapshotDir).GetFiles("sha256-*.json").OrderByDescending(f => f.LastWriteTimeUtc).FirstOrDefault();
        if (baseline is null)
        {
            return HealthChecks.Result(environment, "C.no-breaking-change", Verdict.Inconclusive, "no contract snapshot recorded yet (Test-KfmContract -RecordSnapshot on a known-good build records one)", new Dictionary<string, string>());
        }
        var recorded = JsonSerializer.Deserialize<SortedDictionary<string, SortedDictionary<string, string>>>(File.ReadAllText(baseline.FullName))!;
        var breaks = new List<string>();
        foreach (var (path, fields) in recorded)
        {
            if (!shapes.TryGetValue(path, out var now)) { breaks.Add($"{path}: no response to compare"); continue; }
            foreach (var (field, type) in fields)
            {
                if (!now.TryGetValue(field, out string? nowType)) { breaks.Add($"{path}: {field} removed"); }
                else if (nowType != type && nowType != "null") { breaks.Add($"{path}: {field} changed from {type} to {nowType}"); }
            }
        }
        return HealthChecks.Result(environment, "C.no-breaking-change", breaks.Count == 0 ? Verdict.Pass : Verdict.Fail,
            breaks.Count == 0 ? "no field removed or retyped since the recorded contract" : "breaking change: " + string.Join("; ", breaks.Take(6)),
            new Dictionary<string, string> { ["baseline"] = baseline.Name, ["breaks"] = breaks.Count.ToString(CultureInfo.InvariantCulture) });
    }
}
