using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Adapters.Opa;

/// <summary>
/// OPA's status report (the document its status plugin sends; served at policy_surface.opa_status_url):
/// which revision of each bundle is active. Reads <c>bundles.&lt;name&gt;.active_revision</c>, also when
/// the report is wrapped in <c>result</c>.
/// </summary>
public static partial class OpaStatus
{
    /// <summary>The error id when the status report cannot be read (the plan names it RollbackPlanErrorIds.PolicyStatusUnavailable).</summary>
    public const string StatusUnavailable = "RollbackPlanPolicyStatusUnavailable";

    public static async Task<IReadOnlyDictionary<string, string>> ReadActiveRevisionsAsync(HttpClient http, Uri url, CancellationToken cancellationToken)
    {
        string where = url.GetLeftPart(UriPartial.Path);
        JsonNode? report;
        try
        {
            using HttpResponseMessage response = await http.GetAsync(url, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw Unavailable($"OPA status {where} answered {(int)response.StatusCode}");
            }
            report = JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw Unavailable($"OPA status {where} could not be read ({ex.GetType().Name})", ex);
        }
        JsonObject? bundles = (report?["bundles"] ?? report?["result"]?["bundles"]) as JsonObject;
        if (bundles is null)
        {
            throw Unavailable($"OPA status {where} has no bundles section");
        }
        var revisions = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, bundle) in bundles)
        {
            if (bundle?["active_revision"] is JsonValue value && value.TryGetValue(out string? revision) && !string.IsNullOrEmpty(revision))
            {
                revisions[name] = revision;
            }
        }
        return revisions;
    }

    /// <summary>
    /// The bundle a ref like <c>kfm-policy@sha256-…</c> names (by id, or a name ending in /id), else
    /// the only bundle; null when several are active and none matches.
    /// </summary>
    public static string? ChooseBundle(IReadOnlyDictionary<string, string> revisions, string? bundleRef)
    {
        string? id = bundleRef?.Split('@')[0];
        if (!string.IsNullOrEmpty(id) && id != bundleRef)
        {
            string? match = revisions.Keys.FirstOrDefault(k => k == id) ?? revisions.Keys.FirstOrDefault(k => k.EndsWith("/" + id, StringComparison.Ordinal));
            if (match is not null)
            {
                return match;
            }
        }
        return revisions.Count == 1 ? revisions.Keys.Single() : null;
    }

    /// <summary>Whether a bundle revision and a bundle ref name the same bundle: by sha256 when both carry one, else verbatim.</summary>
    public static bool SameBundle(string? revision, string? bundleRef)
    {
        string? a = Digest(revision);
        string? b = Digest(bundleRef);
        return a is not null && b is not null ? a == b : string.Equals(revision, bundleRef, StringComparison.Ordinal);
    }

    private static string? Digest(string? value) =>
        value is not null && DigestPattern().Match(value) is { Success: true } m ? m.Groups[1].Value.ToLowerInvariant() : null;

    [GeneratedRegex("sha256[:-]([0-9a-fA-F]{64})")]
    private static partial Regex DigestPattern();

    private static KfmException Unavailable(string what, Exception? inner = null) =>
        new(StatusUnavailable, KfmErrorKind.Ambiguous,
            $"{what}, so whether OPA runs the last-known-good policy bundle cannot be determined. Nothing is planned. " +
            "Check that OPA is up and policy_surface.opa_status_url points at its status report, or remove opa_status_url to compare the configured bundle ref only.", null, inner);
}
