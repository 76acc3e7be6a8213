using KfmRollback.Engine.Adapters.Http;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using KfmRollback.Engine.Configuration;

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
    [GeneratedRegex(@"^sha256:[a-f0-9]{64}$")] private static partial Regex Digest();

    /// <summary>Section B's round (Test-KfmPolicyInvariant): an API that cannot be probed is a failed B.probe, not a pass.</summary>
    public static Task<IReadOnlyList<CheckResult>> SectionAsync(ChecklistInput input, CancellationToken cancellationToken) =>
        Unprobed.Guard(input.Environment, "B.probe", () => RunAsync(input.Environment, cancellationToken));

    public static async Task<IReadOnlyList<CheckResult>> RunAsync(EnvironmentConfig environment, CancellationToken cancellationToken)
    {
        ProbePlan plan = environment.Api.Probe;
        using var client = new ProbeClient(environment.Api);
        IReadOnlyList<string> restrictedIds = plan.RestrictedIds();
        string missingId = plan.MissingIdPattern.Replace("{random}", Guid.NewGuid().ToString("N")[..12], StringComparison.Ordinal);
        string publicCaller = plan.Callers.FirstOrDefault(c => c.Value.Role == CallerRole.Public && !c.Value.Anonymous).Key
            ?? throw new Core.KfmException("ProbeCallerMissing", Core.KfmErrorKind.InvalidArgument,
                $"Environment '{environment.Name}': api.probe.callers has no authenticated caller with role public, so the existence-leak comparison cannot run. Add one (token_env or token_file, role: public).", environment.Name);
        string? publicToken = client.TokenOf(publicCaller);
        var results = new List<CheckResult>();
        // Distinct answers per endpoint with how many probes got each: thousands of identical
        // leak-comparison answers are checked once, and no per-probe list outlives its batch.
        var responses = new List<(string Path, ProbeResponse Response, int Count)>();

        // 1. Anonymous callers are denied on every governed endpoint.
        ProbeEndpoint[] governed = plan.Endpoints.Where(e => e.Governed).ToArray();
        ProbeResponse[] anonymous = await client.SendManyAsync(
            governed.Select(e => new ProbeRequest(Method(e), e.Path.Replace("{id}", missingId, StringComparison.Ordinal), null, Body(e))).ToArray(), cancellationToken).ConfigureAwait(false);
        var unauthenticated = new List<string>();
        for (int i = 0; i < governed.Length; i++)
        {
            responses.Add((governed[i].Path, anonymous[i], 1));
            if (anonymous[i].Status is >= 200 and < 300) { unauthenticated.Add(governed[i].Method == ProbeMethod.Get ? governed[i].Path : $"{Method(governed[i]).Method} {governed[i].Path}"); }
        }
        results.Add(HealthChecks.Result(environment, "B.unauthenticated-denied", unauthenticated.Count == 0 ? Verdict.Pass : Verdict.Fail,
            unauthenticated.Count == 0 ? "every governed endpoint denies an anonymous caller" : $"served anonymously: {string.Join(", ", unauthenticated)}",
            new Dictionary<string, string> { ["endpoints"] = plan.Endpoints.Count(e => e.Governed).ToString(CultureInfo.InvariantCulture) }));

        // 2. No existence leak, per endpoint with an {id}.
        foreach (ProbeEndpoint endpoint in plan.Endpoints.Where(e => e.Governed && e.Path.Contains("{id}", StringComparison.Ordinal)))
        {
            if (ChangesData(endpoint))
            {
                results.Add(HealthChecks.Result(environment, "B.existence-leak" + endpoint.Path, Verdict.Inconclusive,
                    $"not probed with a public caller: {Method(endpoint).Method} on restricted ids would change data if the policy failed (its anonymous denial is checked)", new Dictionary<string, string>()));
                continue;
            }
            if (restrictedIds.Count == 0)
            {
                results.Add(HealthChecks.Result(environment, "B.existence-leak" + endpoint.Path, Verdict.Inconclusive,
                    "no restricted ids known to exist were given (restricted_ids_env/restricted_ids_file), so a leak cannot be tested", new Dictionary<string, string>()));
                continue;
            }
            results.Add(await ExistenceLeakAsync(environment, client, endpoint, restrictedIds, missingId, publicToken, plan.Samples, plan.ComparedHeaders, responses, cancellationToken).ConfigureAwait(false));
        }

        // 3. Safety fields on what a public caller can see.
        ProbeEndpoint[] listings = governed.Where(e => !e.Path.Contains("{id}", StringComparison.Ordinal) && !ChangesData(e)).ToArray();
        ProbeResponse[] listed = await client.SendManyAsync(listings.Select(e => new ProbeRequest(Method(e), e.Path, publicToken, Body(e))).ToArray(), cancellationToken).ConfigureAwait(false);
        responses.AddRange(listings.Zip(listed, (e, r) => (e.Path, r, 1)));
        results.Add(SafetyFields(environment, plan, responses));
        results.Add(ErrorModel(environment, responses, restrictedIds));
        return results;
    }

    private static async Task<CheckResult> ExistenceLeakAsync(EnvironmentConfig environment, ProbeClient client, ProbeEndpoint endpoint, IReadOnlyList<string> restrictedIds,
        string missingId, string? token, int samples, IReadOnlyList<string> comparedHeaders, List<(string, ProbeResponse, int)> responses, CancellationToken cancellationToken)
    {
        // Interleaved, so both samples meet the same load, connections and server state; a
        // timing difference then comes from the API, not from the order of the probes.
        var requests = new InterleavedRequests(
            restrictedIds.Select(id => new ProbeRequest(Method(endpoint), endpoint.Path.Replace("{id}", id, StringComparison.Ordinal), token, Body(endpoint))).ToArray(),
            new ProbeRequest(Method(endpoint), endpoint.Path.Replace("{id}", missingId, StringComparison.Ordinal), token, Body(endpoint)),
            samples);
        ProbeResponse[] answered = await client.SendManyAsync(requests, cancellationToken).ConfigureAwait(false);

        // One pass: how many probes got each distinct answer (for the safety-field and error-model
        // checks), and which answers each side saw. Features are then compared between distinct
        // answers, so thousands of probes cost a handful of parses.
        var answers = new Dictionary<ProbeResponse, int>(ProbeResponse.SameAnswer);
        var existingAnswers = new HashSet<ProbeResponse>(ProbeResponse.SameAnswer);
        var missingAnswers = new HashSet<ProbeResponse>(ProbeResponse.SameAnswer);
        var existingMs = new double[samples];
        var missingMs = new double[samples];
        for (int i = 0; i < answered.Length; i++)
        {
            ProbeResponse response = answered[i];
            CollectionsMarshal.GetValueRefOrAddDefault(answers, response, out _)++;
            if (i % 2 == 0) { existingAnswers.Add(response); existingMs[i / 2] = response.Milliseconds; }
            else { missingAnswers.Add(response); missingMs[i / 2] = response.Milliseconds; }
        }
        responses.AddRange(answers.Select(a => (endpoint.Path, a.Key, a.Value)));

        var differences = new List<string>();
        Compare("status", existingAnswers.Select(r => r.Status.ToString(CultureInfo.InvariantCulture)), missingAnswers.Select(r => r.Status.ToString(CultureInfo.InvariantCulture)), differences);
        Compare("error_code", existingAnswers.Select(r => (string?)r.Body?["error_code"] ?? "-"), missingAnswers.Select(r => (string?)r.Body?["error_code"] ?? "-"), differences);
        Compare("message", existingAnswers.Select(r => (string?)r.Body?["message"] ?? "-"), missingAnswers.Select(r => (string?)r.Body?["message"] ?? "-"), differences);
        Compare("body keys", existingAnswers.Select(Keys), missingAnswers.Select(Keys), differences);
        Compare("content type", existingAnswers.Select(r => r.ContentType ?? "-"), missingAnswers.Select(r => r.ContentType ?? "-"), differences);
        Compare("content length", existingAnswers.Select(NormalisedLength), missingAnswers.Select(NormalisedLength), differences);
        foreach (string header in comparedHeaders)
        {
            // Named, never shown: a header value may carry the very identifier that must not leak.
            Compare($"header {header}", existingAnswers.Select(r => r.Header(header) ?? "-"), missingAnswers.Select(r => r.Header(header) ?? "-"), differences);
        }

        MannWhitney.Result timing = MannWhitney.Test(existingMs, missingMs);
        double medianGap = Math.Abs(Median(existingMs) - Median(missingMs));
        bool timingLeak = timing.PValue < 0.01 && medianGap > 25;
        if (timingLeak) { differences.Add($"timing (median gap {medianGap:0} ms, p={timing.PValue:0.####})"); }

        var evidence = new Dictionary<string, string>
        {
            ["samples"] = $"{existingMs.Length}+{missingMs.Length}",
            ["status_existing"] = string.Join(",", existingAnswers.Select(r => r.Status).Distinct()),
            ["status_missing"] = string.Join(",", missingAnswers.Select(r => r.Status).Distinct()),
            ["median_gap_ms"] = medianGap.ToString("0.0", CultureInfo.InvariantCulture),
            ["mann_whitney_p"] = timing.PValue.ToString("0.####", CultureInfo.InvariantCulture),
        };
        return HealthChecks.Result(environment, "B.existence-leak" + endpoint.Path, differences.Count == 0 ? Verdict.Pass : Verdict.Fail,
            differences.Count == 0
                ? "a public caller cannot tell restricted-and-existing from missing"
                : $"existence leak: restricted-and-existing and missing differ in {string.Join(", ", differences)}",
            evidence);
    }

    private static CheckResult SafetyFields(EnvironmentConfig environment, ProbePlan plan, List<(string Path, ProbeResponse Response, int Count)> responses)
    {
        var problems = new SortedSet<string>(StringComparer.Ordinal);
        int checkedResponses = 0;
        foreach (var (path, (response, count)) in Answers(responses).Where(r => r.Answer.Response.Body is JsonObject))
        {
            checkedResponses += count;
            JsonObject body = (JsonObject)response.Body!;
            if (body["audit_ref"] is not JsonValue audit || !audit.TryGetValue(out string? auditRef) || !ProbeResponse.UriPattern().IsMatch(auditRef))
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

    private static CheckResult ErrorModel(EnvironmentConfig environment, List<(string Path, ProbeResponse Response, int Count)> responses, IReadOnlyList<string> restrictedIds)
    {
        var errors = Answers(responses.Where(r => r.Response.Status >= 400)).ToList();
        var problems = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var (path, (response, _)) in errors)
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
            new Dictionary<string, string> { ["errors"] = errors.Sum(e => e.Answer.Count).ToString(CultureInfo.InvariantCulture), ["problems"] = problems.Count.ToString(CultureInfo.InvariantCulture) });
    }

    /// <summary>One representative of each distinct answer per endpoint, with how many responses gave it.</summary>
    private static IEnumerable<(string Path, (ProbeResponse Response, int Count) Answer)> Answers(IEnumerable<(string Path, ProbeResponse Response, int Count)> responses) =>
        responses.GroupBy(r => r.Path, StringComparer.Ordinal).SelectMany(byPath =>
            byPath.GroupBy(r => r.Response, ProbeResponse.SameAnswer).Select(g => (byPath.Key, (g.Key, g.Sum(r => r.Count)))));

    /// <summary>
    /// The leak comparison's batch without materialising it: even positions cycle through the
    /// restricted ids, odd positions ask for the missing id.
    /// </summary>
    private sealed class InterleavedRequests(ProbeRequest[] existing, ProbeRequest missing, int samples) : IReadOnlyList<ProbeRequest>
    {
        public int Count => 2 * samples;
        public ProbeRequest this[int index] => index % 2 == 1 ? missing : existing[index / 2 % existing.Length];
        public IEnumerator<ProbeRequest> GetEnumerator() { for (int i = 0; i < Count; i++) { yield return this[i]; } }
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>The endpoint's configured method, as configured: an anonymous DELETE is probed as a DELETE.</summary>
    internal static HttpMethod Method(ProbeEndpoint endpoint) => endpoint.Method switch
    {
        ProbeMethod.Head => HttpMethod.Head,
        ProbeMethod.Post => HttpMethod.Post,
        ProbeMethod.Put => HttpMethod.Put,
        ProbeMethod.Patch => HttpMethod.Patch,
        ProbeMethod.Delete => HttpMethod.Delete,
        _ => HttpMethod.Get,
    };

    /// <summary>
    /// PUT, PATCH and DELETE change data when the policy fails, so only the anonymous-denial probe
    /// (on a missing id) sends them; a public caller never does.
    /// </summary>
    private static bool ChangesData(ProbeEndpoint endpoint) => endpoint.Method is ProbeMethod.Put or ProbeMethod.Patch or ProbeMethod.Delete;

    /// <summary>A body for methods that carry one: the endpoint's body_file, else an empty JSON object.</summary>
    private static string? Body(ProbeEndpoint endpoint) =>
        endpoint.Method is ProbeMethod.Post or ProbeMethod.Put or ProbeMethod.Patch ? (endpoint.BodyFile is { } file ? File.ReadAllText(file) : "{}") : null;

    private static void Compare(string what, IEnumerable<string> a, IEnumerable<string> b, List<string> differences)
    {
        var left = a.Distinct().OrderBy(x => x, StringComparer.Ordinal).ToList();
        var right = b.Distinct().OrderBy(x => x, StringComparer.Ordinal).ToList();
        if (!left.SequenceEqual(right)) { differences.Add(what); }
    }

    private static string Keys(ProbeResponse response) =>
        response.Body is JsonObject body ? string.Join(",", body.Select(p => p.Key).Order(StringComparer.Ordinal)) : "-";

    private static string NormalisedLength(ProbeResponse response) => response.NormalisedLength.ToString(CultureInfo.InvariantCulture);

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

    private static double Median(double[] values)
    {
        var sorted = (double[])values.Clone();
        Array.Sort(sorted);
        int n = sorted.Length;
        return n == 0 ? 0 : n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
