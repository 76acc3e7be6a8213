using KfmRollback.Engine.Adapters.Http;
using KfmRollback.Engine.Adapters.Opa;
using KfmRollback.Engine.Adapters.Kubernetes;
using System.Globalization;
using System.Text.RegularExpressions;
using k8s;
using k8s.Autorest;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Context;
using KfmRollback.Engine.Core;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace KfmRollback.Engine.Verification;

/// <summary>The decision a policy case expects.</summary>
public enum PolicyDecision
{
    Allow,
    Deny,
}

/// <summary>One policy case: a probe caller (a name from api.probe.callers) calls an endpoint and expects allow or deny.</summary>
public sealed record PolicyCase(string Name, string Caller, HttpMethod Method, string Endpoint, PolicyDecision Expect, string? Body);

/// <summary>
/// Runbook step 5, "roll back the policy bundle AND ensure policy tests still cover allow/deny
/// cases": first that OPA reports the bundle the API is configured with as its active_revision
/// (policy_surface.opa_status_url; without it the check is inconclusive, never a pass), then each
/// case against the API as its caller. A case is named in results by its name only: its endpoint
/// may carry a restricted identifier, and its caller's token is never shown.
/// </summary>
public static partial class PolicyCases
{
    public const string BundleCheck = "B.policy-bundle";
    public const string CoverageCheck = "B.policy-cases-coverage";
    public const string CasePrefix = "B.policy-case/";

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")] private static partial Regex CaseName();

    /// <summary>Reads a YAML or JSON list of cases, checked against the environment's probe callers.</summary>
    public static IReadOnlyList<PolicyCase> Load(string path, EnvironmentConfig environment)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Invalid($"The policy cases file {path} cannot be read ({ex.GetType().Name}).", path, ex);
        }
        var yaml = new YamlStream();
        try { yaml.Load(new StringReader(text)); }
        catch (YamlException ex)
        {
            throw Invalid($"The policy cases file {path} is neither YAML nor JSON (line {ex.Start.Line}).", path, ex);
        }
        if (yaml.Documents.Count != 1 || yaml.Documents[0].RootNode is not YamlSequenceNode list)
        {
            throw Invalid($"The policy cases file {path} must hold one list of cases (name, caller, method, endpoint, expect).", path);
        }
        IReadOnlyList<string> restrictedIds = environment.Api.Probe.RestrictedIds();
        var cases = new List<PolicyCase>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < list.Children.Count; i++)
        {
            string where = $"{path}: case {i + 1}";
            if (list.Children[i] is not YamlMappingNode map)
            {
                throw Invalid($"{where} is not a mapping of name, caller, method, endpoint, expect.", path);
            }
            string? Field(string key) => map.Children.TryGetValue(new YamlScalarNode(key), out YamlNode? node) && node is YamlScalarNode { Value: { } v } ? v : null;
            foreach (var key in map.Children.Keys.OfType<YamlScalarNode>().Select(k => k.Value ?? ""))
            {
                if (key is not ("name" or "caller" or "method" or "endpoint" or "expect" or "body"))
                {
                    throw Invalid($"{where} has an unknown key '{key}' (known: name, caller, method, endpoint, expect, body).", path);
                }
            }
            string name = Field("name") ?? throw Invalid($"{where} has no name.", path);
            if (!CaseName().IsMatch(name))
            {
                throw Invalid($"{where}: a case name is letters, digits, '.', '_' and '-' (at most 80).", path);
            }
            if (restrictedIds.Any(id => name.Contains(id, StringComparison.Ordinal)))
            {
                // Case names appear in results; say that one carries a restricted id, never which.
                throw Invalid($"{where}: its name contains a restricted identifier; name cases by what they test.", path);
            }
            where = $"{path}: case '{name}'";
            if (!names.Add(name)) { throw Invalid($"{where} is named twice; case names must be unique.", path); }
            string caller = Field("caller") ?? throw Invalid($"{where} has no caller.", path);
            if (!environment.Api.Probe.Callers.ContainsKey(caller))
            {
                throw Invalid($"{where}: caller '{caller}' is not one of api.probe.callers ({string.Join(", ", environment.Api.Probe.Callers.Keys.Order(StringComparer.Ordinal))}).", path);
            }
            string method = (Field("method") ?? "GET").ToUpperInvariant();
            if (method is not ("GET" or "POST" or "PUT" or "DELETE" or "HEAD"))
            {
                throw Invalid($"{where}: method must be GET, POST, PUT, DELETE or HEAD.", path);
            }
            string endpoint = Field("endpoint") ?? throw Invalid($"{where} has no endpoint.", path);
            if (!endpoint.StartsWith('/') || endpoint.StartsWith("//", StringComparison.Ordinal) || endpoint.Contains("://", StringComparison.Ordinal))
            {
                throw Invalid($"{where}: endpoint must be a path under the API's base URL, starting with '/'.", path);
            }
            PolicyDecision expect = Field("expect")?.ToLowerInvariant() switch
            {
                "allow" => PolicyDecision.Allow,
                "deny" => PolicyDecision.Deny,
                _ => throw Invalid($"{where}: expect must be allow or deny.", path),
            };
            cases.Add(new PolicyCase(name, caller, new HttpMethod(method), endpoint, expect, Field("body")));
        }
        if (cases.Count == 0) { throw Invalid($"The policy cases file {path} lists no case.", path); }
        return cases;
    }

    /// <summary>
    /// The bundle check, then (unless OPA runs another bundle) the coverage check and one result per
    /// case. <paramref name="activation"/> is how long OPA may take to report the target bundle.
    /// </summary>
    public static Task<IReadOnlyList<CheckResult>> RunAsync(EngineContext context, EnvironmentConfig environment, string casesPath, TimeSpan activation, CancellationToken cancellationToken) =>
        RunOnClusterAsync(context.Kubernetes(environment), environment, casesPath, activation, cancellationToken);

    /// <inheritdoc cref="RunAsync(EngineContext, EnvironmentConfig, string, TimeSpan, CancellationToken)"/>
    public static async Task<IReadOnlyList<CheckResult>> RunOnClusterAsync(IKubernetes kubernetes, EnvironmentConfig environment, string casesPath, TimeSpan activation, CancellationToken cancellationToken)
    {
        IReadOnlyList<PolicyCase> cases = Load(casesPath, environment);
        var results = new List<CheckResult>();
        CheckResult bundle = await BundleAsync(kubernetes, environment, activation, cancellationToken).ConfigureAwait(false);
        results.Add(bundle);
        if (bundle.Verdict == Verdict.Fail)
        {
            // Cases run against another bundle say nothing about the target: not run.
            return results;
        }
        int allow = cases.Count(c => c.Expect == PolicyDecision.Allow), deny = cases.Count - allow;
        results.Add(HealthChecks.Result(environment, CoverageCheck, allow > 0 && deny > 0 ? Verdict.Pass : Verdict.Fail,
            allow > 0 && deny > 0 ? "the cases cover both allow and deny decisions"
                : $"the cases cover only {(allow > 0 ? "allow" : "deny")} decisions; pair every allow case with a deny case",
            new Dictionary<string, string> { ["allow"] = allow.ToString(CultureInfo.InvariantCulture), ["deny"] = deny.ToString(CultureInfo.InvariantCulture) }));

        using var client = new ProbeClient(environment.Api);
        var requests = cases.Select(c => new ProbeRequest(c.Method, c.Endpoint, client.TokenOf(c.Caller), c.Body)).ToArray();
        ProbeResponse[] answers = await client.SendManyAsync(requests, cancellationToken).ConfigureAwait(false);
        for (int i = 0; i < cases.Count; i++)
        {
            results.Add(Judge(environment, cases[i], answers[i].Status));
        }
        return results;
    }

    /// <summary>2xx is allow; 401, 403 and 404 are deny (a policy-safe deny may be a 404); anything else is no decision.</summary>
    internal static CheckResult Judge(EnvironmentConfig environment, PolicyCase policyCase, int status)
    {
        PolicyDecision? got = status is >= 200 and < 300 ? PolicyDecision.Allow : status is 401 or 403 or 404 ? PolicyDecision.Deny : null;
        string expected = policyCase.Expect.ToString().ToLowerInvariant();
        var evidence = new Dictionary<string, string>
        {
            ["caller"] = policyCase.Caller,
            ["expected"] = expected,
            ["status"] = status.ToString(CultureInfo.InvariantCulture),
        };
        if (got is null)
        {
            return HealthChecks.Result(environment, CasePrefix + policyCase.Name, Verdict.Fail,
                $"case '{policyCase.Name}' expected {expected} but the API answered {status}, which is no policy decision", evidence);
        }
        evidence["decision"] = got.Value.ToString().ToLowerInvariant();
        return got == policyCase.Expect
            ? HealthChecks.Result(environment, CasePrefix + policyCase.Name, Verdict.Pass, $"case '{policyCase.Name}': {expected} as expected", evidence)
            : HealthChecks.Result(environment, CasePrefix + policyCase.Name, Verdict.Fail,
                $"case '{policyCase.Name}' flipped: expected {expected}, the API answered {evidence["decision"]} ({status})", evidence);
    }

    /// <summary>Whether OPA reports the configured bundle as active, polling up to <paramref name="activation"/>.</summary>
    private static async Task<CheckResult> BundleAsync(IKubernetes client, EnvironmentConfig environment, TimeSpan activation, CancellationToken cancellationToken)
    {
        PolicySurfaceConfig? surface = environment.PolicySurface;
        if (surface is null)
        {
            return HealthChecks.Result(environment, BundleCheck, Verdict.Inconclusive,
                "policy_surface is not configured, so which bundle the API should run is unknown", new Dictionary<string, string>());
        }
        string? target = await ConfiguredBundleRefAsync(client, environment, cancellationToken).ConfigureAwait(false);
        var evidence = new Dictionary<string, string> { ["target"] = target ?? "-" };
        if (surface.OpaStatusUrl is not { } url)
        {
            return HealthChecks.Result(environment, BundleCheck, Verdict.Inconclusive,
                "policy_surface.opa_status_url is not configured, so whether OPA runs the target bundle cannot be confirmed", evidence);
        }
        if (target is null)
        {
            return HealthChecks.Result(environment, BundleCheck, Verdict.Inconclusive,
                "the configured policy bundle ref is empty where policy_surface says it lives, so there is no target to confirm", evidence);
        }
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(15) };
        DateTime deadline = DateTime.UtcNow + activation;
        while (true)
        {
            IReadOnlyDictionary<string, string> revisions;
            try
            {
                revisions = await OpaStatus.ReadActiveRevisionsAsync(http, url, cancellationToken).ConfigureAwait(false);
            }
            catch (KfmException ex) when (ex.ErrorId == OpaStatus.StatusUnavailable)
            {
                return HealthChecks.Result(environment, BundleCheck, Verdict.Inconclusive,
                    $"OPA status {url.GetLeftPart(UriPartial.Path)} could not be read, so whether OPA runs the target bundle cannot be confirmed", evidence);
            }
            string? name = OpaStatus.ChooseBundle(revisions, target);
            string? active = name is null ? null : revisions[name];
            evidence["bundle"] = name ?? "-";
            evidence["active_revision"] = active ?? "-";
            if (active is not null && OpaStatus.SameBundle(active, target))
            {
                return HealthChecks.Result(environment, BundleCheck, Verdict.Pass, $"OPA reports the target bundle as the active revision of {name}", evidence);
            }
            if (DateTime.UtcNow >= deadline)
            {
                string what = name is null
                    ? $"OPA reports {(revisions.Count == 0 ? "no active bundle" : $"bundles {string.Join(", ", revisions.Keys.Order(StringComparer.Ordinal))}")}, none named by the target ref"
                    : $"OPA reports {active} as the active revision of {name}, not the target bundle";
                return HealthChecks.Result(environment, BundleCheck, Verdict.Fail, $"{what}; the policy cases were not run", evidence);
            }
            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The bundle ref the API is configured with now: the template's env var or annotation, or the live ConfigMap key.</summary>
    public static async Task<string?> ConfiguredBundleRefAsync(IKubernetes client, EnvironmentConfig environment, CancellationToken cancellationToken)
    {
        PolicySurfaceConfig surface = environment.PolicySurface ?? throw new ArgumentException("policy_surface is not configured", nameof(environment));
        if (surface.Configmap is { } map)
        {
            try
            {
                var configMap = await client.CoreV1.ReadNamespacedConfigMapAsync(map, environment.Cluster.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
                return configMap.Data?.TryGetValue(surface.Key!, out string? value) == true ? value : null;
            }
            catch (HttpOperationException ex) when (ex.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
                return null;
            }
        }
        var deployment = await client.AppsV1.ReadNamespacedDeploymentAsync(environment.Cluster.Deployment, environment.Cluster.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        return TemplateReferences.PolicyBundleRef(deployment.Spec.Template, environment.Cluster.Container ?? string.Empty, surface);
    }

    private static KfmException Invalid(string message, string path, Exception? inner = null) =>
        new("PolicyCasesInvalid", KfmErrorKind.InvalidArgument, message, path, inner);
}
