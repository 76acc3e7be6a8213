using KfmRollback.Engine.Adapters.Trackers;
using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Safety;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Incidents;

namespace KfmRollback.Engine.Aftermath;

/// <summary>The follow-up of one incident: the runbook's post-rollback items, what is still pending, and whether governance must review.</summary>
public sealed record FollowUpPlan
{
    public const string Label = "kfm-follow-up";
    public const string GovernanceLabel = "governance-review";

    public required string IncidentId { get; init; }
    public required string Environment { get; init; }
    public required string Title { get; init; }
    public required IReadOnlyList<string> Items { get; init; }
    public required bool GovernanceReview { get; init; }
    public required IReadOnlyList<string> GovernanceReasons { get; init; }
    public required string Body { get; init; }
}

/// <summary>Where the follow-up went. <see cref="Created"/> is false when an earlier run had already opened it.</summary>
public sealed record FollowUpResult
{
    public required string IncidentId { get; init; }
    public required string Environment { get; init; }
    public required string Provider { get; init; }
    public required string Location { get; init; }
    public required bool Created { get; init; }
    public required bool GovernanceReview { get; init; }
    public required IReadOnlyList<string> GovernanceReasons { get; init; }
    public required IReadOnlyList<string> Items { get; init; }
}

/// <summary>
/// Post-rollback actions: one follow-up per incident (runbook: tests that would have caught the
/// regression, a canary guardrail, automated rollback verification; plus Git re-alignment and
/// thawing while still pending) through the configured tracker, with the governance-review flag
/// set from the evidence and verification checks (policy bypass, existence leak, safety fields,
/// policy labels, redaction).
/// </summary>
public static class FollowUpService
{
    public static readonly string[] RunbookItems =
    {
        "Add tests that would have caught the regression",
        "Add a canary guardrail (automated analysis that halts a bad rollout)",
        "Automate rollback verification (checklist A-D in the pipeline)",
    };

    public static FollowUpPlan Plan(Incident incident, string environment, IReadOnlyList<EvidenceBundle> bundles, Redactor redactor)
    {
        var items = RunbookItems.ToList();
        var timeline = incident.Timeline.OrderBy(e => e.At).ToList();
        bool clusterSide = timeline.Any(e => e.Event.StartsWith("Cluster rollback of", StringComparison.Ordinal) || e.Event.StartsWith("Helm rollback of", StringComparison.Ordinal));
        bool gitAligned = timeline.Any(e => e.Event.StartsWith("GitOps rollback of", StringComparison.Ordinal) && !e.Event.Contains("Failed", StringComparison.Ordinal));
        if (clusterSide && !gitAligned)
            items.Add("Re-align Git with what runs (Invoke-KfmRollback -Method GitOps), so a thaw does not redeploy the bad build");
        foreach (string target in TimelineFacts.Read(timeline).StillFrozen)
            items.Add($"Thaw deploys when safe: {target} is still frozen (Stop-KfmFreeze)" + (target.Contains("kill", StringComparison.OrdinalIgnoreCase) || target.StartsWith("git:", StringComparison.Ordinal) ? "; remove the kill-switch file" : ""));

        IReadOnlyList<string> reasons = GovernanceReasons(bundles);
        string title = $"[{incident.IncidentId}] Follow-up: {incident.Reason}";
        // Markdown: what came from people or systems is redacted, then escaped so it stays text (MarkdownText).
        string M(string? text) => MarkdownText.Inline(redactor.Text(text));
        var body = new StringBuilder()
            .AppendLine($"Incident {M(incident.IncidentId)} ({M(environment)}), started {incident.StartedAtUtc} / {incident.StartedAtChicago}, commander {M(incident.Commander)}.")
            .AppendLine()
            .AppendLine("## Follow-up")
            .AppendLine()
            .AppendJoin(Environment.NewLine, items.Select(i => "- [ ] " + M(i))).AppendLine()
            .AppendLine()
            .AppendLine("## Governance review")
            .AppendLine()
            .AppendLine(reasons.Count == 0 ? "Not required: no policy bypass, existence leak, safety-field, policy-label or redaction failure was recorded."
                : "REQUIRED:" + Environment.NewLine + string.Join(Environment.NewLine, reasons.Select(r => "- " + M(r))))
            .AppendLine()
            .AppendLine("## Evidence")
            .AppendLine()
            .AppendJoin(Environment.NewLine, bundles.Select(b => $"- {b.Stage} bundle `{b.Digest}` captured {b.CapturedAt.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC"))
            .AppendLine();
        string safeBody = redactor.Text(body.ToString()), safeTitle = redactor.Text(title);
        redactor.EnsureClean(safeTitle + safeBody, "the follow-up");
        return new FollowUpPlan
        {
            IncidentId = incident.IncidentId,
            Environment = environment,
            Title = safeTitle,
            Items = items,
            GovernanceReview = reasons.Count > 0,
            GovernanceReasons = reasons,
            Body = safeBody,
        };
    }

    /// <summary>Why governance must review, from every failed B.* (and D.no-sensitive-payloads) check the evidence recorded.</summary>
    public static IReadOnlyList<string> GovernanceReasons(IEnumerable<EvidenceBundle> bundles)
    {
        var reasons = new SortedSet<string>(StringComparer.Ordinal);
        foreach (EvidenceBundle bundle in bundles)
        {
            foreach (string file in new[] { "api/policy-checks.json", "verification.json" })
            {
                foreach (JsonNode? result in bundle.ReadJson(file)?["results"] as JsonArray ?? new JsonArray())
                {
                    string check = result?["check"]?.GetValue<string>() ?? "";
                    if (result?["verdict"]?.GetValue<string>() != "Fail") continue;
                    string summary = result["summary"]?.GetValue<string>() ?? "";
                    string? why = check switch
                    {
                        "B.unauthenticated-denied" => "policy bypass: a governed endpoint served an anonymous caller",
                        _ when check.StartsWith("B.existence-leak", StringComparison.Ordinal) => "existence leak: a public caller could tell restricted from missing",
                        "B.safety-fields" when summary.Contains("policy_label", StringComparison.Ordinal) => "policy-label mismatch: policy_label outside the allowed set",
                        "B.safety-fields" => "missing or invalid safety field (audit_ref, dataset_version_id or digest)",
                        "B.error-model" => "redaction failure: error model broken or restricted id echoed",
                        "D.no-sensitive-payloads" => "redaction failure: sensitive payloads in the logs",
                        _ when check.StartsWith("B.", StringComparison.Ordinal) => "policy invariant failed",
                        _ => null,
                    };
                    if (why is not null) reasons.Add($"{why} ({check}, {bundle.Stage} evidence)");
                }
            }
        }
        return reasons.ToList();
    }

    /// <summary>Opens the follow-up once (finds an earlier one first), or writes the checklist file for provider none.</summary>
    public static async Task<FollowUpResult> OpenAsync(FollowUpPlan plan, TrackerConfig? tracker, string checklistDirectory, HttpMessageHandler? handler, CancellationToken cancellationToken)
    {
        PrProvider provider = tracker?.Provider ?? PrProvider.None;
        var item = new TrackerItem($"[{plan.IncidentId}]", plan.Title, plan.Body,
            plan.GovernanceReview ? new[] { FollowUpPlan.Label, FollowUpPlan.GovernanceLabel } : new[] { FollowUpPlan.Label });
        (string location, bool created) = provider switch
        {
            PrProvider.Github => await new GitHubIssues(tracker!).FindOrCreateAsync(item, cancellationToken).ConfigureAwait(false),
            PrProvider.AzureDevops => await new AzureDevOpsWorkItems(tracker!, handler).FindOrCreateAsync(item, cancellationToken).ConfigureAwait(false),
            _ => WriteChecklist(plan, checklistDirectory),
        };
        return new FollowUpResult
        {
            IncidentId = plan.IncidentId,
            Environment = plan.Environment,
            Provider = Configuration.Binding.ConfigSchema.YamlName(provider),
            Location = location,
            Created = created,
            GovernanceReview = plan.GovernanceReview,
            GovernanceReasons = plan.GovernanceReasons,
            Items = plan.Items,
        };
    }

    private static (string, bool) WriteChecklist(FollowUpPlan plan, string directory)
    {
        string path = Path.Combine(directory, $"{plan.IncidentId}-follow-up.md");
        bool created = !File.Exists(path);
        try
        {
            Directory.CreateDirectory(directory);
            File.WriteAllText(path, $"# {MarkdownText.Inline(plan.Title)}{System.Environment.NewLine}{System.Environment.NewLine}{plan.Body}");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new KfmException("FollowUpNotWritable", KfmErrorKind.WriteError, $"Cannot write the follow-up checklist '{path}': {ex.Message} Pass -Path to a writable directory.", path, ex);
        }
        return (path, created);
    }
}
