using KfmRollback.Engine.Adapters.Journal;
using KfmRollback.Engine.Adapters.Kubernetes;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Incidents;

/// <summary>The one place that knows which journal backends exist and which one an environment uses.</summary>
public static class IncidentJournals
{
    /// <summary>
    /// The environment's journal: on its own cluster when <c>incidents.cluster</c> is configured (shared
    /// by every operator and job that reaches the cluster), else the local files named by <paramref name="localPath"/>.
    /// </summary>
    public static IncidentJournal Open(Context.EngineContext engine, EnvironmentConfig? environment, string localPath)
    {
        if (environment?.Incidents?.Cluster is { } shared)
        {
            string cluster = environment.Cluster.Context is { } context ? $"cluster context {context}" : $"the cluster of environment {environment.Name}";
            var backend = new ConfigMapJournal(engine.Kubernetes(environment), shared.Namespace, cluster);
            return new IncidentJournal(backend, backend.Description, engine.TextSafety, engine.Clock);
        }
        return new IncidentJournal(localPath, engine.TextSafety, engine.Clock);
    }

    /// <summary>What the journal needs of the cluster when it lives there (Test-KfmAccess asks for it); none for local files.</summary>
    public static IReadOnlyList<AccessRequirement> AccessNeeds(EnvironmentConfig environment) =>
        environment.Incidents?.Cluster is { Namespace: var ns }
            ? new AccessRequirement[]
            {
                new("get", "", "configmaps", ns, "read the incident journal"),
                new("list", "", "configmaps", ns, "list the incident journal's streams"),
                new("create", "", "configmaps", ns, "start an incident's journal stream"),
                new("update", "", "configmaps", ns, "append to the incident journal"),
            }
            : Array.Empty<AccessRequirement>();
}
