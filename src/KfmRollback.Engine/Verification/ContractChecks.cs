using KfmRollback.Engine.Adapters.Http;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Verification.Contract;

namespace KfmRollback.Engine.Verification;

/// <summary>
/// Checklist C: the API's own OpenAPI document (JSON or YAML, 3.0 or 3.1, read by Microsoft.OpenApi)
/// drives a call to every operation safe to call, each answer validated against its schema
/// (JsonSchema.Net); the error model is checked on a miss; the shape of every response is compared
/// with the snapshot recorded for a known-good build; and the document itself is compared with the
/// last-known-good specification, each breaking change named.
/// </summary>
public static class ContractChecks
{
    /// <summary>
    /// Section C's round (Test-KfmContract): the contract of the digest the cluster runs (its snapshot is
    /// recorded under that digest with <see cref="ChecklistInput.RecordContractSnapshot"/>).
    /// </summary>
    public static async Task<IReadOnlyList<CheckResult>> SectionAsync(ChecklistInput input, CancellationToken cancellationToken)
    {
        EnvironmentConfig environment = input.Environment;
        string? digest = (await new Refs.ClusterRefSource(input.Context).ReadAsync(new Refs.RefQuery(environment, IncidentId: input.IncidentId), Refs.LastKnownGoodAuthority.HistoryOnly, cancellationToken).ConfigureAwait(false)).CurrentRef;
        return await Unprobed.Guard(environment, "C.contract", () => RunAsync(environment, digest, input.RecordContractSnapshot, cancellationToken)).ConfigureAwait(false);
    }

    public static async Task<IReadOnlyList<CheckResult>> RunAsync(EnvironmentConfig environment, string? runningDigest, bool recordSnapshot, CancellationToken cancellationToken)
    {
        ApiConfig api = environment.Api;
        if (api.OpenapiPath is null)
        {
            return new[] { HealthChecks.Result(environment, "C.openapi", Verdict.Inconclusive, "api.openapi_path is not configured, so there is no contract to check against", new Dictionary<string, string>())
                with { Settled = true, NextStep = "set api.openapi_path to where the API serves its OpenAPI document" } };
        }
        using var client = new ProbeClient(api);
        string? caller = api.Probe.Callers.FirstOrDefault(c => c.Value.Role == CallerRole.Public && !c.Value.Anonymous).Key;
        string? token = caller is null ? null : client.TokenOf(caller);
        ProbeResponse document = await client.SendAsync(HttpMethod.Get, api.OpenapiPath, token, cancellationToken).ConfigureAwait(false);
        if (document.Status != 200)
        {
            return new[] { HealthChecks.Result(environment, "C.openapi", Verdict.Fail, $"the OpenAPI document at {api.OpenapiPath} could not be read (status {document.Status})", new Dictionary<string, string>()) };
        }
        OpenApiContract contract;
        try
        {
            contract = await OpenApiContract.ParseAsync(document.Content, api.OpenapiPath, cancellationToken).ConfigureAwait(false);
        }
        catch (KfmException ex) when (ex.ErrorId == "ContractDocumentUnreadable")
        {
            return new[] { HealthChecks.Result(environment, "C.openapi", Verdict.Fail, ex.Message, new Dictionary<string, string>()) };
        }

        var results = new List<CheckResult>();
        var shapes = new SortedDictionary<string, SortedDictionary<string, string>>(StringComparer.Ordinal);
        var smoke = new ContractSmoke(api, contract, client, token);
        var notCalled = new List<string>();
        foreach (ContractOperation operation in contract.Operations.Where(o => !smoke.Skipped(o)))
        {
            if (!smoke.Safe(operation) && !smoke.OutsideApi(operation)) { notCalled.Add(operation.Name); continue; }
            SmokeOutcome outcome = await smoke.RunAsync(operation, cancellationToken).ConfigureAwait(false);
            if (outcome.Body is not null) { shapes[ShapeKey(operation)] = Shape(outcome.Body); }
            string check = "C.smoke" + (operation.Method == HttpMethod.Get ? "" : "." + operation.Method.Method.ToLowerInvariant()) + operation.Path;
            results.Add(HealthChecks.Result(environment, check, outcome.Verdict, outcome.Summary, outcome.Evidence));
        }
        if (notCalled.Count > 0)
        {
            // Named, not failed: calling them could change data; listing a POST in api.probe.endpoints opts it in.
            results.Add(HealthChecks.Result(environment, "C.smoke-coverage", Verdict.Pass,
                $"{notCalled.Count} operation(s) not called (not safe to call, and not listed as POST in api.probe.endpoints): {string.Join(", ", notCalled.Take(10))}",
                new Dictionary<string, string> { ["not_called"] = notCalled.Count.ToString(CultureInfo.InvariantCulture) }));
        }
        results.Add(await ErrorModelAsync(environment, api, client, contract, token, cancellationToken).ConfigureAwait(false));

        var store = new ContractStore(api.ContractSnapshotDir, runningDigest);
        if (recordSnapshot)
        {
            // Only a build that passes is known-good: a failing one recorded would hide its own breaks.
            List<CheckResult> failing = results.Where(r => r.Verdict != Verdict.Pass).ToList();
            if (failing.Count > 0 || !store.Record(shapes, contract))
            {
                results.Add(HealthChecks.Result(environment, "C.record", Verdict.Inconclusive,
                    failing.Count > 0 ? "nothing recorded: this build does not pass its own contract (" + string.Join(", ", failing.Select(r => r.Check)) + ")"
                        : "nothing recorded: the running build's digest is unknown, or api.contract_snapshot_dir is not configured",
                    new Dictionary<string, string>()) with
                {
                    Settled = true,
                    NextStep = failing.Count > 0 ? "record a build that passes its own contract" : "set api.contract_snapshot_dir, and record while the rollout has settled on one digest",
                });
            }
        }
        results.Add(CompareWithSnapshot(environment, store, shapes));
        results.Add(await CompareSpecificationsAsync(environment, store, contract, cancellationToken).ConfigureAwait(false));
        return results;
    }

    // Nothing recorded cannot change by waiting: a person records a known-good build's contract.
    private const string NoSnapshotDir = "set api.contract_snapshot_dir, then record a known-good build's contract (Test-KfmContract -RecordSnapshot while it serves)";
    private const string NoSnapshot = "record a known-good build's contract (Test-KfmContract -RecordSnapshot while it serves); until then no breaking change can be ruled out";

    /// <summary>GET responses keep the path as their key (snapshots recorded before other methods were called stay comparable).</summary>
    private static string ShapeKey(ContractOperation operation) => operation.Method == HttpMethod.Get ? operation.Path : operation.Name;

    private static async Task<CheckResult> ErrorModelAsync(EnvironmentConfig environment, ApiConfig api, ProbeClient client, OpenApiContract contract, string? token, CancellationToken cancellationToken)
    {
        string missing = "/api/v1/datasets/" + api.Probe.MissingIdPattern.Replace("{random}", Guid.NewGuid().ToString("N")[..12], StringComparison.Ordinal);
        ProbeResponse response = await client.SendAsync(HttpMethod.Get, missing, token, cancellationToken).ConfigureAwait(false);
        var problems = new List<string>();
        if (response.Status < 400) { problems.Add($"a missing object answered {response.Status}"); }
        // The error as the document describes this operation's answer, else its Error schema.
        ContractOperation? byId = contract.Operations.FirstOrDefault(o => o.Method == HttpMethod.Get && o.Path.StartsWith("/api/v1/datasets/{", StringComparison.Ordinal));
        var documented = byId is null ? null : OpenApiContract.ResponseFor(byId.Operation, response.Status);
        if (byId is not null && documented is { } d && OpenApiContract.JsonContent(d.Response.Content) is { Value.Schema: not null } media)
        {
            problems.AddRange(contract.ValidateResponse(byId, d.Key, media.Key, response.Body));
        }
        else if (contract.Document.Components?.Schemas?.ContainsKey("Error") == true)
        {
            problems.AddRange(contract.ValidateComponent("Error", response.Body));
        }
        foreach (string field in new[] { "error_code", "message", "audit_ref" })
        {
            if (response.Body?[field] is null) { problems.Add($"error lacks {field}"); }
        }
        return HealthChecks.Result(environment, "C.error-model", problems.Count == 0 ? Verdict.Pass : Verdict.Fail,
            problems.Count == 0 ? "errors keep the documented model (error_code, message, audit_ref)" : string.Join("; ", problems.Distinct()),
            new Dictionary<string, string> { ["status"] = response.Status.ToString(CultureInfo.InvariantCulture) });
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

    private static CheckResult CompareWithSnapshot(EnvironmentConfig environment, ContractStore store, SortedDictionary<string, SortedDictionary<string, string>> shapes)
    {
        if (!store.Configured)
        {
            return HealthChecks.Result(environment, "C.no-breaking-change", Verdict.Inconclusive, "api.contract_snapshot_dir is not configured: nothing recorded to compare with", new Dictionary<string, string>())
                with { Settled = true, NextStep = NoSnapshotDir };
        }
        FileInfo? baseline = store.ShapeBaseline();
        if (baseline is null)
        {
            return HealthChecks.Result(environment, "C.no-breaking-change", Verdict.Inconclusive, "no contract snapshot recorded yet (Test-KfmContract -RecordSnapshot on a known-good build records one)", new Dictionary<string, string>())
                with { Settled = true, NextStep = NoSnapshot };
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

    /// <summary>
    /// The running document against the last-known-good specification: each breaking change is its own
    /// evidence line ("breaking 1", …) naming method, path and field; additions are notes on a pass.
    /// </summary>
    private static async Task<CheckResult> CompareSpecificationsAsync(EnvironmentConfig environment, ContractStore store, OpenApiContract running, CancellationToken cancellationToken)
    {
        const string Check = "C.spec-diff";
        if (!store.Configured)
        {
            return HealthChecks.Result(environment, Check, Verdict.Inconclusive, "api.contract_snapshot_dir is not configured: no last-known-good specification to compare with", new Dictionary<string, string>())
                with { Settled = true, NextStep = NoSnapshotDir };
        }
        FileInfo? baseline = store.SpecificationBaseline();
        if (baseline is null)
        {
            return HealthChecks.Result(environment, Check, Verdict.Inconclusive, "no last-known-good specification recorded yet (Test-KfmContract -RecordSnapshot on a known-good build records one)", new Dictionary<string, string>())
                with { Settled = true, NextStep = NoSnapshot };
        }
        OpenApiContract recorded;
        try
        {
            recorded = await OpenApiContract.ParseAsync(await File.ReadAllBytesAsync(baseline.FullName, cancellationToken).ConfigureAwait(false), baseline.FullName, cancellationToken).ConfigureAwait(false);
        }
        catch (KfmException ex) when (ex.ErrorId == "ContractDocumentUnreadable")
        {
            return HealthChecks.Result(environment, Check, Verdict.Fail, ex.Message, new Dictionary<string, string> { ["baseline"] = baseline.Name });
        }
        IReadOnlyList<ContractChange> changes = ContractDiff.Compare(recorded, running);
        List<ContractChange> breaking = changes.Where(c => c.Breaking).ToList(), notes = changes.Where(c => !c.Breaking).ToList();
        var evidence = new Dictionary<string, string>
        {
            ["baseline"] = "openapi/" + baseline.Name,
            ["breaking"] = breaking.Count.ToString(CultureInfo.InvariantCulture),
            ["notes"] = notes.Count.ToString(CultureInfo.InvariantCulture),
        };
        for (int i = 0; i < breaking.Count; i++) { evidence["breaking " + (i + 1).ToString(CultureInfo.InvariantCulture)] = breaking[i].ToString(); }
        for (int i = 0; i < notes.Count; i++) { evidence["note " + (i + 1).ToString(CultureInfo.InvariantCulture)] = notes[i].ToString(); }
        string summary = breaking.Count > 0
            ? $"{breaking.Count} breaking change(s) since the last-known-good specification: " + string.Join("; ", breaking)
            : notes.Count > 0 ? $"no breaking change since the last-known-good specification; noted: " + string.Join("; ", notes)
            : "the specification matches the last-known-good one";
        return HealthChecks.Result(environment, Check, breaking.Count > 0 ? Verdict.Fail : Verdict.Pass, summary, evidence);
    }
}
