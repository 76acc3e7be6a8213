using KfmRollback.Engine.Adapters.Http;
using KfmRollback.Engine.Adapters.Kubernetes;
using System.Globalization;
using k8s;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Safety;

namespace KfmRollback.Engine.Verification;

/// <summary>
/// Checklist D: the API's pods logged over the window, and nothing sensitive is in those logs —
/// credentials, tokens, keys, or the restricted identifiers the configuration names. Only counts
/// and samples that locate a flagged line (pod, line number, kinds found) leave this class: a flagged
/// line is never echoed, not even redacted, since whatever the scanner missed in it would go along.
/// </summary>
public static class LogChecks
{
    /// <summary>Section D's log round (Test-KfmObservability): the restricted identifiers are those the probe plan names.</summary>
    public static Task<IReadOnlyList<CheckResult>> SectionAsync(ChecklistInput input, CancellationToken cancellationToken) =>
        RunAsync(input.Context.Kubernetes(input.Environment), input.Environment, input.Environment.Api.Probe.RestrictedIds(), cancellationToken);

    public static async Task<IReadOnlyList<CheckResult>> RunAsync(IKubernetes client, EnvironmentConfig environment, IReadOnlyList<string> restrictedIds, CancellationToken cancellationToken)
    {
        DeploymentSnapshot snapshot = await DeploymentSnapshot.ReadAsync(client, environment.Cluster.Namespace, environment.Cluster.Deployment, cancellationToken).ConfigureAwait(false);
        int since = (int)Math.Max(1, environment.Observability.LogWindow.TotalSeconds);
        var redactor = new Redactor(restrictedIds, environment.Observability.RestrictedIdPatterns);
        int lines = 0, findings = 0, read = 0;
        var gone = new List<string>();
        var kinds = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var samples = new List<string>();
        foreach (var pod in snapshot.Pods)
        {
            string text;
            try
            {
                using Stream stream = await client.CoreV1.ReadNamespacedPodLogAsync(pod.Metadata.Name, environment.Cluster.Namespace, sinceSeconds: since, cancellationToken: cancellationToken).ConfigureAwait(false);
                using var reader = new StreamReader(stream);
                text = await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (KubernetesErrors.IsNotFound(ex))
            {
                // Deleted since the list (a rollout or an eviction replaces pods all the time): its logs are gone
                // with it, which says nothing about the API. The scan goes on with the pods that remain.
                gone.Add(pod.Metadata.Name);
                continue;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                throw KubernetesErrors.Wrap(ex, $"Reading logs of pod {pod.Metadata.Name}", pod.Metadata.Name);
            }
            read++;
            int number = 0;
            foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                lines++;
                number++;
                var secrets = SecretScanner.Default.Scan(line);
                bool restricted = redactor.IsRestricted(line);
                if (secrets.Count == 0 && !restricted) { continue; }
                findings++;
                var found = secrets.Select(f => f.Kind).Append(restricted ? "restricted-id" : null).OfType<string>().Distinct().ToList();
                foreach (string kind in found) { kinds[kind] = kinds.GetValueOrDefault(kind) + 1; }
                if (samples.Count < 3) { samples.Add($"pod {pod.Metadata.Name} line {number}: {string.Join(", ", found)}"); }
            }
        }

        string goneNote = gone.Count == 0 ? "" : $" ({gone.Count} deleted before their logs were read: {string.Join(", ", gone)})";
        var present = new Dictionary<string, string> { ["lines"] = lines.ToString(CultureInfo.InvariantCulture), ["pods"] = read.ToString(CultureInfo.InvariantCulture) };
        if (gone.Count > 0) { present["pods_gone"] = gone.Count.ToString(CultureInfo.InvariantCulture); }
        var results = new List<CheckResult>
        {
            HealthChecks.Result(environment, "D.logs-present", lines > 0 ? Verdict.Pass : Verdict.Fail,
                (lines > 0 ? $"{lines} log lines from {read} pods in the last {since} s" : $"no log lines from {read} pods in the last {since} s") + goneNote,
                present),
        };
        var evidence = new Dictionary<string, string> { ["lines"] = lines.ToString(CultureInfo.InvariantCulture), ["findings"] = findings.ToString(CultureInfo.InvariantCulture) };
        foreach (var (kind, count) in kinds) { evidence["kind." + kind] = count.ToString(CultureInfo.InvariantCulture); }
        for (int i = 0; i < samples.Count; i++) { evidence[$"sample.{i + 1}"] = samples[i]; }
        results.Add(HealthChecks.Result(environment, "D.no-sensitive-payloads", findings == 0 ? Verdict.Pass : Verdict.Fail,
            findings == 0 ? "no credentials, tokens, keys or restricted ids in the logs" : $"{findings} log lines carry sensitive payloads ({string.Join(", ", kinds.Keys)})",
            evidence));
        return results;
    }
}
