using KfmRollback.Engine.Adapters.Prometheus;
using KfmRollback.Engine.Adapters.Kubernetes;
using k8s;
using System.Globalization;
using k8s.Models;
using KfmRollback.Engine.Configuration;

namespace KfmRollback.Engine.Verification;

/// <summary>
/// Checklist A: the deployment is stable, the health endpoints answer, and 5xx ratio, P95, P99 and the
/// latency distribution are back to a verified-good baseline and within the absolute limits
/// (<see cref="MetricChecks"/>). Thin data or no valid baseline is inconclusive, never a pass.
/// </summary>
public static class HealthChecks
{
    /// <summary>Section A's round (Test-KfmApiHealth): the cluster of <see cref="ChecklistInput.Environment"/>, judged at the round's start.</summary>
    public static Task<IReadOnlyList<CheckResult>> SectionAsync(ChecklistInput input, CancellationToken cancellationToken) =>
        RunAsync(input.Context.Kubernetes(input.Environment), input.Environment, input.IncidentStart, input.Now, cancellationToken, input.History, input.Since,
            RestartsSeen(input.Previous), input.EvidenceWait, input.Context.Clock);

    /// <param name="history">Recorded incidents that rule baseline windows out (the deploys are read here).</param>
    /// <param name="since">When the rollout converged, if known: the metrics judge only the time since.</param>
    public static async Task<IReadOnlyList<CheckResult>> RunAsync(IKubernetes client, EnvironmentConfig environment, DateTimeOffset incidentStart, DateTimeOffset now,
        CancellationToken cancellationToken, BaselineHistory? history = null, DateTimeOffset? since = null, int? restartsEarlier = null,
        TimeSpan evidenceWait = default, Core.IClock? clock = null)
    {
        var results = new List<CheckResult> { await DeploymentStableAsync(environment, client, cancellationToken, restartsEarlier).ConfigureAwait(false) };
        results.AddRange(await EndpointsAsync(environment, cancellationToken).ConfigureAwait(false));
        DeploymentSnapshot deployments = await DeploymentSnapshot.ReadAsync(client, environment.Cluster.Namespace, environment.Cluster.Deployment, cancellationToken, includePods: false).ConfigureAwait(false);
        var deploys = deployments.ReplicaSets.Where(r => r.Metadata.CreationTimestamp is not null)
            .Select(r => (r.Metadata.Name, new DateTimeOffset(DateTime.SpecifyKind(r.Metadata.CreationTimestamp!.Value, DateTimeKind.Utc))));
        BaselineHistory known = (history ?? BaselineHistory.None).WithDeploys(deploys, environment.Prometheus.Baseline.DeploySettle);
        results.AddRange(await MetricChecks.RunAsync(environment, incidentStart, now, known, since, cancellationToken, evidenceWait, clock).ConfigureAwait(false));
        return results;
    }

    /// <summary>
    /// Checklist A's "deployment is stable (no crash loop)": the restart counts compared between two reads,
    /// two seconds apart, or, in a wait, with what the previous round read (<paramref name="restartsEarlier"/>),
    /// so a round does not sleep and the watch spans the whole time between rounds.
    /// </summary>
    public static async Task<CheckResult> DeploymentStableAsync(EnvironmentConfig environment, IKubernetes client, CancellationToken cancellationToken, int? restartsEarlier = null)
    {
        DeploymentSnapshot? first = null;
        if (restartsEarlier is null)
        {
            first = await DeploymentSnapshot.ReadAsync(client, environment.Cluster.Namespace, environment.Cluster.Deployment, cancellationToken).ConfigureAwait(false);
            await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
        }
        DeploymentSnapshot second = await DeploymentSnapshot.ReadAsync(client, environment.Cluster.Namespace, environment.Cluster.Deployment, cancellationToken).ConfigureAwait(false);

        RolloutStatus rollout = RolloutStatus.Evaluate(second.Deployment);
        RolloutStatus? podFailure = RolloutStatus.PodFailure(second.Pods);
        int restartsBefore = restartsEarlier ?? Restarts(first!.Pods), restartsAfter = Restarts(second.Pods);
        var evidence = new Dictionary<string, string>
        {
            ["rollout"] = rollout.Message,
            ["pods"] = second.Pods.Count.ToString(CultureInfo.InvariantCulture),
            ["restarts"] = $"{restartsBefore} -> {restartsAfter}",
        };
        (Verdict verdict, string summary) = podFailure is not null ? (Verdict.Fail, podFailure.Message)
            : rollout.Phase == RolloutPhase.Failed ? (Verdict.Fail, rollout.Message)
            : restartsAfter > restartsBefore ? (Verdict.Fail, $"restart counts rose from {restartsBefore} to {restartsAfter} while watching (crash loop)")
            : rollout.Phase == RolloutPhase.Waiting ? (Verdict.Inconclusive, $"the rollout has not finished: {rollout.Message}")
            : (Verdict.Pass, "rollout complete, no pod crash-looping, restart counts flat");
        return Result(environment, "A.deployment-stable", verdict, summary, evidence) with { Reading = new CheckReading { Restarts = restartsAfter } };
    }

    /// <summary>The restart count a round's A.deployment-stable read last (its <see cref="CheckReading.Restarts"/>); null without one.</summary>
    internal static int? RestartsSeen(VerificationSummary? round) =>
        round?.Results.FirstOrDefault(r => r.Check == "A.deployment-stable")?.Reading?.Restarts;

    private static int Restarts(IEnumerable<V1Pod> pods) =>
        pods.SelectMany(p => p.Status?.ContainerStatuses ?? new List<V1ContainerStatus>()).Sum(s => s.RestartCount);

    private static async Task<IReadOnlyList<CheckResult>> EndpointsAsync(EnvironmentConfig environment, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { BaseAddress = environment.Api.BaseUrl, Timeout = TimeSpan.FromSeconds(10) };
        var results = new List<CheckResult>();
        foreach (string path in environment.Api.HealthPaths)
        {
            string check = "A.endpoint" + path;
            try
            {
                using HttpResponseMessage response = await http.GetAsync(path.TrimStart('/'), cancellationToken).ConfigureAwait(false);
                int code = (int)response.StatusCode;
                results.Add(Result(environment, check, code == 200 ? Verdict.Pass : Verdict.Fail, $"{path} answered {code}",
                    new Dictionary<string, string> { ["status"] = code.ToString(CultureInfo.InvariantCulture) }));
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                results.Add(Result(environment, check, Verdict.Fail, $"{path} did not answer ({ex.GetType().Name})", new Dictionary<string, string>()));
            }
        }
        return results;
    }

    internal static CheckResult Result(EnvironmentConfig environment, string check, Verdict verdict, string summary, IReadOnlyDictionary<string, string> evidence) => new()
    {
        Environment = environment.Name,
        Section = check.StartsWith("A.", StringComparison.Ordinal) ? CheckSection.Health : check.StartsWith("B.", StringComparison.Ordinal) ? CheckSection.PolicyInvariants : check.StartsWith("C.", StringComparison.Ordinal) ? CheckSection.Contract : CheckSection.Observability,
        Check = check,
        Verdict = verdict,
        Summary = summary,
        Evidence = evidence,
    };
}
