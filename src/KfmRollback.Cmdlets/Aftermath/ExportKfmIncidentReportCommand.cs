using KfmRollback.Engine.Aftermath;
using System.Management.Automation;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Receipts;

namespace KfmRollback.Cmdlets.Aftermath;

/// <summary>
/// The incident report for the ticket: Markdown and a self-contained HTML page with the timeline
/// in UTC and America/Chicago, refs, plan, verification A–D, receipt and chain head, plots and
/// follow-ups, all policy-safe.
/// </summary>
[Cmdlet(VerbsData.Export, "KfmIncidentReport", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(IncidentReportFiles))]
public sealed class ExportKfmIncidentReportCommand : AftermathCmdlet
{
    protected override void ProcessRecordCore()
    {
        var (environment, incident, bundles, directory, _) = ResolveAftermath();
        if (DecideChange(directory, $"Write the incident report of {incident.IncidentId}") != ChangeMode.Apply)
        {
            return;
        }
        var redactor = Redactors.For(environment);
        var receipt = IncidentReport.FindReceipt(ReceiptStoreLocation.OpenExisting(environment.Receipts), incident.IncidentId);
        var followUp = FollowUpService.Plan(incident, environment.Name, bundles, redactor);
        IncidentReportFiles files = IncidentReport.Write(incident, bundles, receipt, followUp, redactor, directory);
        TimelineWriter(incident.IncidentId, environment)("OPS",
            $"Incident report exported ({bundles.Count} evidence bundles, receipt {files.ReceiptDigest ?? "none yet"}, {files.Plots.Count} plots)");
        WriteObject(files);
    }
}
