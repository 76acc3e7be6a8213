using System.Text;
using System.Text.RegularExpressions;

namespace KfmRollback.Engine.Refs;

/// <summary>
/// Commit message (with git trailers) and PR body of a rollback. The Incident: trailer is also how
/// a rerun recognises its own earlier branch.
/// </summary>
public static partial class RollbackMessage
{
    public const string BranchPrefix = "ops/rollback-api-";

    public static string BranchName(DateTimeOffset utc) => BranchPrefix + utc.UtcDateTime.ToString("yyyyMMdd-HHmm", System.Globalization.CultureInfo.InvariantCulture);

    public static string Title(string incidentId, string what) => $"Rollback API ({incidentId}): {what}";

    public static string Commit(string incidentId, string what, string lastGoodRef, string reason, string blastRadius) =>
        $"{Title(incidentId, what)}\n\n{OneLine(reason)}\n\nIncident: {OneLine(incidentId)}\nLast-Good-Ref: {lastGoodRef}\nReason: {OneLine(reason)}\nBlast-Radius: {OneLine(blastRadius)}\n";

    /// <summary>The value of trailer <paramref name="key"/> in a commit message, or null.</summary>
    public static string? Trailer(string message, string key)
    {
        foreach (var line in Enumerable.Reverse(message.Split('\n')))
            if (line.StartsWith(key + ": ", StringComparison.Ordinal))
                return line[(key.Length + 2)..].Trim();
        return null;
    }

    public static string PullRequestBody(string incidentId, string lastGoodRef, string currentRef, string reason, string blastRadius)
    {
        var b = new StringBuilder();
        b.Append("Emergency API rollback (runbook step 2: roll back via GitOps).\n\n");
        // Markdown: free text is escaped (MarkdownText) and refs stay inside their code spans.
        b.Append($"- Incident: {Safety.MarkdownText.Inline(OneLine(incidentId))}\n- last_good_ref: `{Code(lastGoodRef)}`\n- current_ref: `{Code(currentRef)}`\n");
        b.Append($"- Reason: {Safety.MarkdownText.Inline(OneLine(reason))}\n- Blast radius: {Safety.MarkdownText.Inline(OneLine(blastRadius))}\n\n");
        b.Append("## Verification checklist\n\n");
        b.Append("### A) Health and stability\n- [ ] Deployment is stable (no crash loop)\n- [ ] 5xx rate back to baseline\n- [ ] P95 latency back to baseline\n\n");
        b.Append("### B) Policy and trust membrane invariants\n- [ ] No endpoints bypass policy evaluation\n- [ ] 403/404 behavior is policy-safe (no existence leaks)\n");
        b.Append("- [ ] Responses include required safety fields where applicable (`policy_label`, `audit_ref`, `dataset_version_id`, artifact digests)\n\n");
        b.Append("### C) Contract sanity\n- [ ] `/api/v1` semantics preserved (no breaking change introduced by rollback)\n- [ ] Error model stable (`error_code`, policy-safe message, `audit_ref`)\n\n");
        b.Append("### D) Observability\n- [ ] Logs present and not leaking sensitive payloads\n- [ ] Traces span policy evaluation / evidence resolution (where implemented)\n");
        return b.ToString();
    }

    [GeneratedRegex(@"\s+", RegexOptions.CultureInvariant)]
    private static partial Regex Whitespace();

    /// <summary>A ref inside a code span: one line, and no backtick to close the span early.</summary>
    private static string Code(string text) => OneLine(text).Replace("`", "'", StringComparison.Ordinal);

    /// <summary>Trailers are one line each: a newline in free text would forge another trailer.</summary>
    private static string OneLine(string text) => Whitespace().Replace(text, " ").Trim();
}
