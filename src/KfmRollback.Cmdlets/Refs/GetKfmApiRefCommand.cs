using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Refs;

namespace KfmRollback.Cmdlets.Refs;

/// <summary>The API's current ref and last-known-good (runbook step 1).</summary>
[Cmdlet(VerbsCommon.Get, "KfmApiRef")]
[OutputType(typeof(ApiRef))]
public sealed class GetKfmApiRefCommand : KfmGitCmdlet
{
    [Parameter]
    public ApiRefSource Source { get; set; } = ApiRefSource.Cluster;

    protected override void ProcessRecordCore()
    {
        var environment = RequireEnvironment();
        var authority = Authority(environment);
        var query = new RefQuery(environment, Container, IncidentId, GitCredential);
        ApiRef reference = RunAsync(token => RefSources.For(Source.ToEngine()).ReadAsync(query, authority, token));
        foreach (string note in authority.For(environment).Notes)
        {
            WriteWarning($"{environment.Name}: {note}.");
        }
        WriteVerbose($"{environment.Name}: last-known-good {reference.LastKnownGoodRef ?? "none"} ({reference.LastKnownGoodSource ?? "no source"}): {reference.LastKnownGoodReason}");
        if (!reference.CurrentIsDigest)
        {
            // Git has no pods: there the problem is the pin itself.
            WriteWarning(Source == ApiRefSource.GitOps
                ? $"{environment.Name}: Git pins '{reference.CurrentImage}' by a mutable tag, not a digest, so what it deploys can change without a commit; pin a digest (Invoke-KfmRollback -Method GitOps -ToRef sha256:...)."
                : $"{environment.Name}: the current image '{reference.CurrentImage}' is a mutable tag and the pods do not agree on one digest; a rollback target must be a digest.");
        }
        if (reference.RolloutInFlight)
        {
            WriteWarning(reference.RunningDigests.Count > 1
                ? $"{environment.Name}: a rollout is in flight: pods run {reference.RunningDigests.Count} different digests."
                : $"{environment.Name}: a rollout is in flight: not every replica runs the current template yet.");
        }
        WriteObject(reference);
    }
}
