using KfmRollback.Engine.Refs;
using System.Management.Automation;
using KfmRollback.Cmdlets.Common;

namespace KfmRollback.Cmdlets.Refs;

/// <summary>Compares Git's desired ref with what the cluster runs: after an emergency rollback, Git must be re-aligned.</summary>
[Cmdlet(VerbsDiagnostic.Test, "KfmDrift")]
[OutputType(typeof(DriftItem), typeof(bool))]
public sealed class TestKfmDriftCommand : KfmGitCmdlet
{
    [Parameter]
    public SwitchParameter Quiet { get; set; }

    protected override void ProcessRecordCore()
    {
        var environment = RequireEnvironment();
        var drift = RunAsync(token => GitOpsDrift.ReadAsync(RefSources, environment, Container, GitCredential, token))
            .Select(i => i with { IncidentId = IncidentId }).ToList();
        if (Quiet)
        {
            WriteObject(drift.Count == 0);
            return;
        }
        if (drift.Count > 0)
        {
            WriteWarning($"{environment.Name} has drifted from Git in {drift.Count} way(s): re-align Git by piping the drift to Invoke-KfmRollback -Method GitOps (it pins the live digest).");
        }
        WriteObject(drift, enumerateCollection: true);
    }
}
