using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Verification;

/// <summary>
/// Checklist B, probed from outside as a client would: governed endpoints deny anonymous callers;
/// a public caller cannot tell "restricted and exists" from "does not exist" (status, error code,
/// message, body shape, content length, timing); safety fields are present and well formed; every
/// error carries the error model and echoes no restricted identifier.
/// </summary>
public static partial class PolicyChecks
{
    [GeneratedRegex(@"^\d{4}-\d{2}(-\d{2})?\.[0-9a-f]{8}$")] private static partial Regex DatasetVersionId();
    [GeneratedRegex(@"^[a-z][a-z0-9+.-]*://\S+$")] private static partial Regex Uri();
    [GeneratedRegex(@"^sha256:[a-f0-9]{64}$")] private static partial Regex Digest();

    public static async Task<IReadOnlyList<CheckResult>> RunAsync(EnvironmentConfig environment, CancellationToken cancellationToken)
    {
        ProbePlan plan = environment.Api.Probe;
        using var client = new ProbeClient(environment.Api);
        IReadOnlyList<string> restrictedIds = VerificationRunner.RestrictedIds(plan);
        string missingId = plan.MissingIdPattern.Replace("{random}", Guid.NewGuid().ToString("N")[..12], StringComparison.Ordinal);
        string publicCaller = plan.Callers.First(c => c.Value.Role == CallerRole.Public && !c.Value.Anonymous).Key;
        string? publicToken = client.TokenOf(publicCaller);
        var results = new List<CheckResult>();
        var responses = new List<(string Path, ProbeResponse Response)>();

        // 1. Anonymous callers are denied on every governed endpoint.
        var unauthenticated = new List<string>();
        foreach (ProbeEndpoint endpoint in plan.Endpoints.Where(e => e.Governed))
        {
            string path = endpoint.Path.Replace("{id}", missingId, StringComparison.Ordinal);
            ProbeResponse response = await client.SendAsync(Method(endpoint), path, token: null, cancellationToken).ConfigureAwait(false);
            responses.Add((endpoint.Path, response));
            if (response.Status is >= 200 and < 300) { unauthenticated.Add(endpoint.Path); }
        }
        results.Add(HealthChecks.Result(environment, "B.unauthenticated-denied", unauthenticated.Count == 0 ? Verdict.Pass : Verdict.Fail,
            unauthenticated.Count == 0 ? "every governed endpoint denies an anonymous caller" : $"served anonymously: {string.Join(", ", unauthenticated)}",
            new Dictionary<string, string> { ["endpoints"] = plan.Endpoints.Count(e => e.Governed).ToString(CultureInfo.InvariantCulture) }));

        // 2. No existence leak, per endpoint with an {id}.
        foreach (ProbeEndpoint endpoint in plan.Endpoints.Where(e => e.Governed && e.Path.Contains("{id}", StringComparison.Ordinal)))
        {
            if (restrictedIds.Count == 0)
            {
                results.Add(HealthChecks.Result(environment, "B.existence-leak" + endpoint.Path, Verdict.Inconclusive,
                    "no restricted ids known to exist were given (restricted_ids_env/restricted_ids_file), so a leak cannot be tested", new Dictionary<string, string>()));
                continue;
            }
            results.Add(await ExistenceLeakAsync(environment, client, endpoint, restrictedIds, missingId, publicToken, plan.Samples, responses, cancellationToken).ConfigureAwait(false));
        }

        // 3. Safety fields on what a public caller can see.
        foreach (ProbeEndpoint endpoint in plan.Endpoints.Where(e => e.Governed && !e.Path.Contains("{id}", StringComparison.Ordinal)))
        {
            responses.Add((endpoint.Path, await client.SendAsync(Method(endpoint), endpoint.Path, publicToken, cancellationToken).ConfigureAwait(false)));
        }
        results.Add(SafetyFields(environment, plan, responses));
        results.Add(ErrorModel(environment, responses, restrictedIds));
        return results;
    }

    private static async Task<CheckResult> ExistenceLeakAsync(EnvironmentConfig environment, ProbeClient client, ProbeEndpoint endpoint, IReadOnlyList<string> restrictedIds,
        string missingId, string? token, int samples, List<(string, ProbeResponse)> responses, CancellationToken cancellationToken)
    {
        var existing = new List<ProbeResponse>();
        var missing = new List<ProbeResponse>();
        var tasks = new List<Task>();
        for (int i = 0; i < samples; i++)
        {
            string restricted = restrictedIds[i % restrictedIds.Count];
            tasks.Add(Task.Run(async () => { var r = await client.SendAsync(Method(endpoint), endpoint.Path.Replace("{id}", restricted, StringComparison.Ordinal), token, cancellationToken).ConfigureAwait(false); lock (existing) { existing.Add(r); } }, cancellationToken));
            tasks.Add(Task.Run(async () => { var r = await client.SendAsync(Method(endpoint), endpoint.Path.Replace("{id}", missingId, StringComparison.Ordinal), token, cancellationToken).ConfigureAwait(false); lock (missing) { missing.Add(r); } }, cancellationToken));
        }
        await Task.WhenAll(tasks).ConfigureAwait(false);
        responses.AddRange(existing.Concat(missing).Select(r => (endpoint.Path, r)));

        var differences = new List<string>();
        Compare("status", existing.Select(r => r.Status.ToString(CultureInfo.InvariantCulture)), missing.Select(r => r.Status.ToString(CultureInfo.InvariantCulture)), differences);
        Compare("error_code", existing.Select(r => (string?)r.Body?["error_code"] ?? "-"), missing.Select(r => (string?)r.Body?["error_code"] ?? "-"), differences);
        Compare("message", existing.Select(r => (string?)r.Body?["message"] ?? "-"), missing.Select(r => (string?)r.Body?["message"] ?? "-"), differences);
        Compare("body keys", existing.Select(Keys), missing.Select(Keys), differences);
        Compare("content type", existing.Select(r => r.ContentType ?? "-"), missing.Select(r => r.ContentType ?? "-"), differences);
        Compare("content length", existing.Select(NormalisedLength), missing.Select(NormalisedLength), differences);

        var existingMs = existing.Select(r => r.Milliseconds).ToList();
        var missingMs = missing.Select(r => r.Milliseconds).ToList();
        MannWhitney.Result timing = MannWhitney.Test(existingMs, missingMs);
        double medianGap = Math.Abs(Median(existingMs) - Median(missingMs));
        bool timingLeak = timing.PValue < 0.01 && medianGap > 25;
        if (timingLeak) { differences.Add($"timing (median gap {medianGap:0} ms, p={timing.PValue:0.####})"); }

        var evidence = new Dictionary<string, string>
        {
            ["samples"] = $"{existing.Count}+{missing.Count}",
            ["status_existing"] = string.Join(",", existing.Select(r => r.Status).Distinct()),
            ["status_missing"] = string.Join(",", missing.Select(r => r.Status).Distinct()),
            ["median_gap_ms"] = medianGap.ToString("0.0", CultureInfo.InvariantCulture),
            ["mann_whitney_p"] = timing.PValue.ToString("0.####", CultureInfo.InvariantCulture),
        };
        return HealthChecks.Result(environment, "B.existence-leak" + endpoint.Path, differences.Count == 0 ? Verdict.Pass : Verdict.Fail,
            differences.Count == 0
                ? "a public caller cannot tell restricted-and-existing from missing"
                : $"existence leak: restricted-and-existing and missing differ in {string.Join(", ", differences)}",
            evidence);
    }

    private static CheckResult SafetyFields(EnvironmentConfig environment, ProbePlan plan, List<(string Path, ProbeResponse Response)> responses)
    {
        var problems = new SortedSet<string>(StringComparer.Ordinal);
        int checkedResponses = 0;
        foreach (var (path, response) in responses.Where(r => r.Response.Body is JsonObject))
        {
            checkedResponses++;
            JsonObject body = (JsonObject)response.Body!;
            if (body["audit_ref"] is not JsonValue audit || !Uri().IsMatch((string)audit!))
            {
                problems.Add($"{path}: audit_ref missing or not a URI");
            }
            foreach (var (key, value) in Walk(body))
            {
                string? text = value is JsonValue v && v.TryGetValue(out string? s) ? s : null;
                if (key == "policy_label" && (text is null || !plan.AllowedPolicyLabels.Contains(text))) { problems.Add($"{path}: policy_label outside the allowed set"); }
                if (key == "dataset_version_id" && (text is null || !DatasetVersionId().IsMatch(text))) { problems.Add($"{path}: dataset_version_id malformed"); }
                if (key.EndsWith("digest", StringComparison.Ordinal) && text is not null && !Digest().IsMatch(text)) { problems.Add($"{path}: {key} not sha256:<64 hex>"); }
            }
        }
        if (checkedResponses == 0)
        {
            return HealthChecks.Result(environment, "B.safety-fields", Verdict.Inconclusive, "no JSON response to check", new Dictionary<string, string>());
        }
        return HealthChecks.Result(environment, "B.safety-fields", problems.Count == 0 ? Verdict.Pass : Verdict.Fail,
            problems.Count == 0 ? "policy_label, audit_ref, dataset_version_id and digests present and well formed" : string.Join("; ", problems),
            new Dictionary<string, string> { ["responses"] = checkedResponses.ToString(CultureInfo.InvariantCulture), ["problems"] = problems.Count.ToString(CultureInfo.InvariantCulture) });
    }

    private static CheckResult ErrorModel(EnvironmentConfig environment, List<(string Path, ProbeResponse Response)> responses, IReadOnlyList<string> restrictedIds)
    {
        var errors = responses.Where(r => r.Response.Status >= 400).ToList();
        var problems = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (path, response) in errors)
        {
            if (response.Body is not JsonObject body || body["error_code"] is null || body["message"] is null || body["audit_ref"] is null)
            {
                problems.Add($"{path}: {response.Status} without error_code, message and audit_ref");
                continue;
            }
            string message = (string?)body["message"] ?? string.Empty;
            if (restrictedIds.Any(id => message.Contains(id, StringComparison.Ordinal)))
            {
                // Say that it happened, never which id.
                problems.Add($"{path}: an error message echoes a restricted identifier");
            }
        }
        if (errors.Count == 0)
        {
            return HealthChecks.Result(environment, "B.error-model", Verdict.Inconclusive, "no error response was produced to check", new Dictionary<string, string>());
        }
        return HealthChecks.Result(environment, "B.error-model", problems.Count == 0 ? Verdict.Pass : Verdict.Fail,
            problems.Count == 0 ? "every error carries error_code, message and audit_ref, and echoes no restricted id" : string.Join("; ", problems),
            new Dictionary<string, string> { ["errors"] = errors.Count.ToString(CultureInfo.InvariantCulture), ["problems"] = problems.Count.ToString(CultureInfo.InvariantCulture) });
    }

    private static HttpMethod Method(ProbeEndpoint endpoint) => endpoint.Method == ProbeMethod.Post ? HttpMethod.Post : HttpMethod.Get;

    private static void Compare(string what, IEnumerable<string> a, IEnumerable<string> b, List<string> differences)
    {
        var left = a.Distinct().OrderBy(x => x, StringComparer.Ordinal).ToList();
        var right = b.Distinct().OrderBy(x => x, StringComparer.Ordinal).ToList();
        if (!left.SequenceEqual(right)) { differences.Add(what); }
    }

    private static string Keys(ProbeResponse response) =>
        response.Body is JsonObject body ? string.Join(",", body.Select(p => p.Key).Order(StringComparer.Ordinal)) : "-";

    /// <summary>Length with per-request values (audit_ref) blanked, so only structural differences count.</summary>
    private static string NormalisedLength(ProbeResponse response)
    {
        if (response.Body is not JsonObject body) { return response.ContentLength.ToString(CultureInfo.InvariantCulture); }
        var copy = (JsonObject)body.DeepClone();
        if (copy.ContainsKey("audit_ref")) { copy["audit_ref"] = "x"; }
        return copy.ToJsonString().Length.ToString(CultureInfo.InvariantCulture);
    }

    private static IEnumerable<(string Key, JsonNode? Value)> Walk(JsonNode? node)
    {
        if (node is JsonObject obj)
        {
            foreach (var (key, value) in obj)
            {
                yield return (key, value);
                foreach (var inner in Walk(value)) { yield return inner; }
            }
        }
        else if (node is JsonArray array)
        {
            foreach (JsonNode? item in array)
            {
                foreach (var inner in Walk(item)) { yield return inner; }
            }
        }
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        int n = sorted.Count;
        return n == 0 ? 0 : n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
