using System.Management.Automation;
using KfmRollback.Cmdlets.Common;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Planning;

namespace KfmRollback.Cmdlets.Planning;

/// <summary>The runbook's decision tree: what changed against the last-known-good, and so which rollback (or none).</summary>
[Cmdlet(VerbsCommon.Get, "KfmRollbackPlan")]
[OutputType(typeof(RollbackDecision))]
public sealed class GetKfmRollbackPlanCommand : KfmGitCmdlet
{
    /// <summary>When the problem began (instead of the incident's start time in the journal).</summary>
    [Parameter]
    public DateTime? Since { get; set; }

    /// <summary>How long before the incident a deploy still counts as its likely cause.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan DeployWindow { get; set; } = TimeSpan.FromHours(24);

    [Parameter]
    public long? ToRevision { get; set; }

    [Parameter]
    public string? ToRef { get; set; }

    /// <summary>Preflight the cluster rollback with -Fast's strategy raise (quota dry run included), as Invoke-KfmRollback -Fast -Wait would send it.</summary>
    [Parameter]
    public SwitchParameter Fast { get; set; }

    protected override void ProcessRecordCore()
    {
        KfmConfig config = LoadConfig(required: true)!;
        // -Environment takes several names and wildcards here (the base declares it string[]).
        string[] names = Environment ?? Array.Empty<string>();
        // Several environments (named, matched or piped): one failure is that environment's error only.
        bool several = MyInvocation.ExpectingInput || names.Length > 1 || names.Any(WildcardPattern.ContainsWildcardCharacters);
        IReadOnlyList<EnvironmentConfig> targets = names.Length == 0
            ? new[] { ConfigSession.ResolveEnvironment(config, null, required: true, MyInvocation.MyCommand.Name)! }
            : ConfigSession.SelectEnvironments(config, names, ex => WriteError(ErrorRecords.From(ex)));
        foreach (EnvironmentConfig environment in targets)
        {
            try
            {
                WritePlan(environment);
            }
            catch (KfmException ex) when (several)
            {
                WriteError(ErrorRecords.From(ex));
            }
        }
    }

    private void WritePlan(EnvironmentConfig environment)
    {
        var request = new RollbackPlanRequest
        {
            IncidentId = IncidentId,
            IncidentStartedAt = Since is { } since ? new DateTimeOffset(since.ToUniversalTime()) : TryGetIncident(environment)?.StartedAt,
            DeployWindow = DeployWindow,
            ToRevision = ToRevision,
            ToRef = ToRef,
            Container = Container,
            Fast = Fast,
        };
        RollbackDecision plan = RunAsync(token => new RollbackPlanning(EngineContext, RefSources).PlanAsync(environment, request, GitCredential, Authority(environment), token));
        if (plan.DeployAfterIncidentStart)
        {
            WriteWarning($"{plan.Environment}: the last deploy ({plan.LastDeployAt.UtcDateTime:HH:mm} UTC) came after the incident began; it is not the cause.");
        }
        // The plan is shown whatever its preflight says (it is what the operator decides on); a failed
        // check is Invoke-KfmRollback's refusal to come, so it is said now, with its error id.
        foreach (var check in plan.Preflight.Where(c => c.Failed))
        {
            WriteWarning($"{plan.Environment}: preflight {check.Check} FAILED ({check.ErrorId}): {check.Target}: {check.Saw}. {check.Advice}".TrimEnd());
        }
        WriteObject(plan);
    }
}
