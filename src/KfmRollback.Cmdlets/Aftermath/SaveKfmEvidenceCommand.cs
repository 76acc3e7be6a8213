using KfmRollback.Engine.Adapters.Http;
using KfmRollback.Engine.Aftermath;
using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Verification;

namespace KfmRollback.Cmdlets.Aftermath;

/// <summary>
/// Runbook step 0, "snapshot evidence": a content-addressed bundle of what the cluster, the
/// controllers, Prometheus and the API showed, redacted, with a manifest of sha256 digests. Its
/// digest goes on the incident timeline and into the rollback receipt.
/// </summary>
[Cmdlet(VerbsData.Save, "KfmEvidence", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(EvidenceBundle))]
public sealed class SaveKfmEvidenceCommand : KfmEnvironmentCmdlet
{
    /// <summary>A checklist summary (Test-KfmRollback) to keep with the evidence; makes the stage "aftermath".</summary>
    [Parameter(ValueFromPipeline = true)]
    public object? InputObject { get; set; }

    /// <summary>The evidence directory; default: evidence.directory, else next to the receipt store.</summary>
    [Parameter]
    public string? Path { get; set; }

    [Parameter]
    [ValidateSet("freeze", "aftermath", "manual")]
    public string? Stage { get; set; }

    protected override void ProcessRecordCore()
    {
        var environment = RequireEnvironment();
        VerificationSummary? verification = PipelineObjects.Unwrap<VerificationSummary>(InputObject is null ? null : new[] { InputObject }).FirstOrDefault();
        string stage = Stage ?? (verification is null ? "manual" : "aftermath");
        if (DecideChange($"incident {IncidentId} in {environment.Name}", $"Save a {stage} evidence bundle") != ChangeMode.Apply)
        {
            return;
        }
        WriteObject(SaveEvidence(environment, stage, verification, Path));
    }
}
