using KfmRollback.Engine.Core;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Safety;
using KfmRollback.Engine.Incidents;
using KfmRollback.Engine.Receipts;

namespace KfmRollback.Engine.Aftermath;

/// <summary>The receipt facts a report names: the receipt and the ledger's chain head (the anchor to keep in the ticket).</summary>
public sealed record ReportReceipt(string Digest, string ChainHead, RollbackReceipt Receipt);

/// <summary>What Export-KfmIncidentReport wrote.</summary>
public sealed record IncidentReportFiles(string IncidentId, string MarkdownPath, string HtmlPath, IReadOnlyList<EvidencePlot> Plots, string? EvidenceDigest, string? ReceiptDigest);

/// <summary>
/// The incident report for the ticket, as Markdown and as one self-contained HTML page (inline CSS,
/// plots as data URIs): incident, impact, timeline in UTC and America/Chicago, refs, plan and
/// method, verification A–D, receipt and chain head, plots, follow-ups. Every text that came from
/// people or systems is redacted, and the finished files must pass the same scanner.
/// </summary>
public static class IncidentReport
{
    public static ReportReceipt? FindReceipt(ReceiptStore? store, string incidentId)
    {
        if (store is null) return null;
        IReadOnlyList<LedgerEntry> entries;
        try { entries = store.List(); }
        catch (Core.KfmException) { return null; }
        LedgerEntry? mine = entries.LastOrDefault(e => e.IncidentId == incidentId);
        return mine is null ? null : new ReportReceipt(mine.ReceiptDigest, entries[^1].EntryDigest, store.Get(mine.ReceiptDigest).Receipt);
    }

    public static IncidentReportFiles Write(Incident incident, IReadOnlyList<EvidenceBundle> bundles, ReportReceipt? receipt, FollowUpPlan followUp,
        Redactor redactor, string directory)
    {
        EvidenceBundle? latest = bundles.LastOrDefault();
        IReadOnlyList<EvidencePlot> plots = latest is null ? Array.Empty<EvidencePlot>() : EvidencePlots.Draw(latest, Path.Combine(directory, "plots"));
        // The phase chart of each run that sent a change sits next to the plots.
        plots = plots.Concat(RunPhaseTimes.Of(incident).Select(run => PhaseChart.Draw(run, Path.Combine(directory, "plots"))).OfType<EvidencePlot>()).ToList();
        var sections = Sections(incident, bundles, receipt, followUp, redactor);

        var md = new StringBuilder($"# Incident report {incident.IncidentId}\n\n");
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Incident report ").Append(Enc(incident.IncidentId)).Append("</title><style>")
            // Fits a 1280 px window: the page is at most 1150 px wide, text wraps at spaces, and a long
            // token (a digest, a path) may break anywhere, so it never widens a table past the page. What
            // is read at a glance keeps one line: the timeline's times and role, and verdicts.
            .Append("body{font-family:DejaVu Sans,Arial,sans-serif;margin:2em auto;padding:0 1em;max-width:1150px;color:#222}h1{border-bottom:3px solid #b22}h2{margin-top:1.6em;border-bottom:1px solid #ccc}")
            .Append("table{border-collapse:collapse;width:100%;font-size:.92em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}td{overflow-wrap:anywhere}th{background:#f3f3f3}")
            .Append("code{background:#f5f5f5;padding:1px 3px;word-break:break-all}.Pass{color:#176617;font-weight:bold}.Fail{color:#b22;font-weight:bold}.Inconclusive{color:#a60;font-weight:bold}")
            .Append(".flag{background:#fde;border:1px solid #b22;padding:6px 10px}img{max-width:100%;border:1px solid #ddd;margin:.5em 0}")
            .Append("table.timeline td:nth-child(-n+3),td.Pass,td.Fail,td.Inconclusive{white-space:nowrap}")
            .Append("</style></head><body><h1>Incident report ").Append(Enc(incident.IncidentId)).Append("</h1>");
        foreach (var (title, rows, paragraphs) in sections)
        {
            string tableClass = title == "Timeline" ? " class=\"timeline\"" : "";
            md.Append("## ").Append(title).Append("\n\n");
            html.Append("<h2>").Append(Enc(title)).Append("</h2>");
            foreach (string p in paragraphs)
            {
                md.Append(MarkdownText.Inline(p)).Append("\n\n");
                html.Append(p.StartsWith("GOVERNANCE", StringComparison.Ordinal) ? "<p class=\"flag\">" : "<p>").Append(Enc(p)).Append("</p>");
            }
            if (rows.Count > 0)
            {
                md.Append("| ").AppendJoin(" | ", rows[0]).Append(" |\n|").AppendJoin("|", rows[0].Select(_ => "---")).Append("|\n");
                foreach (string[] row in rows.Skip(1)) md.Append("| ").AppendJoin(" | ", row.Select(MarkdownText.Inline)).Append(" |\n");
                md.Append('\n');
                html.Append($"<table{tableClass}><thead><tr>").AppendJoin("", rows[0].Select(c => $"<th scope=\"col\">{Enc(c)}</th>")).Append("</tr></thead><tbody>");
                foreach (string[] row in rows.Skip(1))
                    html.Append("<tr>").AppendJoin("", row.Select(c => c is "Pass" or "Fail" or "Inconclusive" ? $"<td class=\"{c}\">{c}</td>" : $"<td>{Enc(c)}</td>")).Append("</tr>");
                html.Append("</tbody></table>");
            }
        }
        md.Append("## Plots\n\n");
        html.Append("<h2>Plots</h2>");
        if (!plots.Any(p => !p.Name.StartsWith("phases-", StringComparison.Ordinal)))
        {
            md.Append("No metric samples were captured, so there is nothing to plot.\n");
            html.Append("<p>No metric samples were captured, so there is nothing to plot.</p>");
        }
        // The phase chart needs no evidence bundle; the baseline line does.
        if (latest is not null && plots.Count > 0 && BaselineLine(latest) is { } baseline)
        {
            md.Append(MarkdownText.Inline(baseline)).Append("\n\n");
            html.Append("<p>").Append(Enc(baseline)).Append("</p>");
        }
        foreach (EvidencePlot plot in plots)
        {
            md.Append($"![{plot.Title}](plots/{Path.GetFileName(plot.PngPath)}) ([SVG](plots/{Path.GetFileName(plot.SvgPath)}))\n\n");
            html.Append($"<figure><img alt=\"{Enc(plot.Title)}\" src=\"data:image/png;base64,{Convert.ToBase64String(File.ReadAllBytes(plot.PngPath))}\"><figcaption>{Enc(plot.Title)}, times in UTC</figcaption></figure>");
        }
        html.Append("</body></html>");

        string mdText = md.ToString(), htmlText = html.ToString();
        // The data URIs are base64 of our own PNGs; everything else must pass the scanner as text.
        redactor.EnsureClean(mdText, "the Markdown report");
        redactor.EnsureClean(System.Text.RegularExpressions.Regex.Replace(htmlText, "data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,"), "the HTML report");
        Directory.CreateDirectory(directory);
        string mdPath = Path.Combine(directory, $"{incident.IncidentId}-report.md"), htmlPath = Path.Combine(directory, $"{incident.IncidentId}-report.html");
        File.WriteAllText(mdPath, mdText);
        File.WriteAllText(htmlPath, htmlText);
        return new IncidentReportFiles(incident.IncidentId, mdPath, htmlPath, plots, latest?.Digest, receipt?.Digest);
    }

    private static string Enc(string text) => WebUtility.HtmlEncode(text);

    /// <summary>"The green band is the baseline …": which window checklist A compared with, and why.</summary>
    private static string? BaselineLine(EvidenceBundle bundle)
    {
        System.Text.Json.Nodes.JsonNode? ranges = bundle.ReadJson("metrics/ranges.json");
        if (ranges?["windows"]?["baseline"] is not System.Text.Json.Nodes.JsonArray { Count: 2 } window) return null;
        string reason = ranges["baseline_reason"]?.GetValue<string>() is { Length: > 0 } r ? $" ({r})" : "";
        return $"The green band is the baseline the verdict compared with: {window[0]} to {window[1]}{reason}.";
    }

    private static List<(string Title, List<string[]> Rows, List<string> Paragraphs)> Sections(Incident incident, IReadOnlyList<EvidenceBundle> bundles, ReportReceipt? receipt,
        FollowUpPlan followUp, Redactor redactor)
    {
        string R(string? s) => redactor.Text(s ?? "");
        static string Ms(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture);
        static string Utc(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", System.Globalization.CultureInfo.InvariantCulture);
        var sections = new List<(string, List<string[]>, List<string>)>();

        sections.Add(("Incident", new List<string[]>
        {
            new[] { "field", "value" },
            new[] { "incident", incident.IncidentId },
            new[] { "environment", R(incident.Environment) },
            new[] { "commander (IC)", R(incident.Commander) },
            new[] { "reason", R(incident.Reason) },
            new[] { "started (UTC)", incident.StartedAtUtc },
            new[] { "started (America/Chicago)", incident.StartedAtChicago },
        }, new List<string>()));

        var impact = new List<string[]> { new[] { "endpoint", "exposure" } };
        impact.AddRange(incident.ImpactedEndpoints.Select(e => new[] { R(e.Path), e.Exposure.ToString().ToLowerInvariant() }));
        sections.Add(("Impact", impact, incident.ImpactedEndpoints.Count == 0 ? new List<string> { "No impacted endpoints were recorded." } : new List<string>()));

        var timeline = new List<string[]> { new[] { "UTC", "America/Chicago", "role", "event" } };
        timeline.AddRange(incident.Timeline.OrderBy(e => e.At).Select(e => new[] { Utc(e.At), IncidentTime.FormatChicago(e.At), R(e.Role), R(e.Event) }));
        sections.Add(("Timeline", timeline, new List<string>()));

        EvidenceBundle? first = bundles.FirstOrDefault(), last = bundles.LastOrDefault();
        var refs = new List<string[]> { new[] { "ref", "value" } };
        void Ref(string name, JsonNode? node) { if (node?.ToString() is { Length: > 0 } v) refs.Add(new[] { name, R(v) }); }
        Ref("running at first evidence", first?.ReadJson("refs.json")?["current_ref"]);
        Ref("revision at first evidence", first?.ReadJson("refs.json")?["revision"]);
        Ref("last known good", first?.ReadJson("refs.json")?["last_known_good_ref"]);
        Ref("running at last evidence", last?.ReadJson("refs.json")?["current_ref"]);
        Ref("policy bundle at first evidence", first?.ReadJson("config/config-and-policy.json")?["policy"]?["bundle_ref"]);
        if (receipt is not null)
        {
            refs.Add(new[] { "receipt current_ref", receipt.Receipt.CurrentRef });
            refs.Add(new[] { "receipt rollback_target_ref", receipt.Receipt.RollbackTargetRef });
        }
        sections.Add(("Refs", refs, refs.Count == 1 ? new List<string> { "No refs were captured." } : new List<string>()));

        var plan = new List<string[]> { new[] { "item", "value" } };
        if (receipt is not null)
        {
            plan.Add(new[] { "method", receipt.Receipt.KfmIntegrity.Revision?.Method ?? "not recorded" });
            plan.Add(new[] { "revisions", $"{receipt.Receipt.KfmIntegrity.Revision?.From ?? "?"} -> {receipt.Receipt.KfmIntegrity.Revision?.To ?? "?"}" });
            plan.Add(new[] { "changed surfaces", string.Join(", ", receipt.Receipt.ChangedSurfaces) });
            plan.Add(new[] { "started / completed", $"{receipt.Receipt.StartedAt} / {receipt.Receipt.CompletedAt}" });
            foreach (DecisionEvidence d in receipt.Receipt.KfmIntegrity.Decision ?? Array.Empty<DecisionEvidence>())
                plan.Add(new[] { $"decision: {d.Surface} {R(d.Item)}", d.Changed ? "changed" : "unchanged" });
        }
        sections.Add(("Plan and method", plan, receipt is null ? new List<string> { "No rollback receipt is stored for this incident yet." } : new List<string>()));

        JsonNode? verification = bundles.Select(b => b.ReadJson("verification.json")).LastOrDefault(v => v is not null);
        var verdicts = new List<string[]> { new[] { "section", "verdict" } };
        // The checks are a table of their own, under their own header row (not a header inside the sections' table).
        var checks = new List<string[]> { new[] { "check", "verdict", "summary" } };
        if (verification is not null)
        {
            verdicts.Add(new[] { "A. health", verification["health"]!.GetValue<string>() });
            verdicts.Add(new[] { "B. policy invariants", verification["policy_invariants"]!.GetValue<string>() });
            verdicts.Add(new[] { "C. contract", verification["contract"]!.GetValue<string>() });
            verdicts.Add(new[] { "D. observability", verification["observability"]!.GetValue<string>() });
            foreach (JsonNode? r in verification["results"] as JsonArray ?? new JsonArray())
                checks.Add(new[] { R(r!["check"]!.GetValue<string>()), r["verdict"]!.GetValue<string>(), R(r["summary"]?.GetValue<string>()) });
        }
        sections.Add(("Verification A-D", verdicts, verification is null ? new List<string> { "No verification was saved with the evidence (pipe Test-KfmRollback into Save-KfmEvidence)." } : new List<string>()));
        if (checks.Count > 1)
            sections.Add(("Verification checks", checks, new List<string>()));

        var integrity = new List<string[]> { new[] { "item", "digest" } };
        foreach (EvidenceBundle b in bundles) integrity.Add(new[] { $"evidence bundle ({b.Stage}, {Utc(b.CapturedAt)}, {b.Files.Count} files)", b.Digest });
        int auditRefs = bundles.Sum(b => (b.ReadJson("api/audit-refs.json")?["from_probes"] as JsonArray)?.Count + (b.ReadJson("api/audit-refs.json")?["from_logs"] as JsonArray)?.Count ?? 0);
        integrity.Add(new[] { "audit_ref ids captured", auditRefs.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        if (receipt is not null)
        {
            integrity.Add(new[] { "rollback receipt", receipt.Digest });
            integrity.Add(new[] { "receipt ledger chain head (anchor)", receipt.ChainHead });
        }
        sections.Add(("Evidence and receipt", integrity, new List<string>()));

        var phases = new List<string[]> { new[] { "run", "phase", "start (UTC)", "end (UTC)", "took", "note" } };
        var safeNotes = new List<string>();
        foreach (RunPhaseTimes run in RunPhaseTimes.Of(incident))
        {
            phases.AddRange(run.Phases.Select(p => new[] { run.RunId, p.Phase, p.Start is { } s ? Ms(s) : "-", p.End is { } e ? Ms(e) : "-", p.Took, p.Note ?? "" }));
            safeNotes.Add($"{run.RunId}: {run.TimeToSafeText}.");
        }
        sections.Add(("Phases and time to safe", phases, safeNotes.Count == 0 ? new List<string> { "No rollback run sent a change for this incident." } : safeNotes));

        var follow = new List<string[]> { new[] { "follow-up" } };
        follow.AddRange(followUp.Items.Select(i => new[] { i }));
        var notes = new List<string>();
        notes.Add(followUp.GovernanceReview
            ? "GOVERNANCE REVIEW REQUIRED: " + string.Join("; ", followUp.GovernanceReasons)
            : "Governance review not required: no policy bypass, existence leak, safety-field, policy-label or redaction failure was recorded.");
        sections.Add(("Follow-ups", follow, notes));
        return sections;
    }
}
