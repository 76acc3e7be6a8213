using KfmRollback.Engine.Adapters.Helm;
using System.Text.Json.Nodes;

namespace KfmRollback.Engine.Rollback.Helm;

/// <summary>What a Helm rollback will write, with what Apply needs to write exactly that and to notice when the state moved.</summary>
public sealed record HelmRollbackPlan : MechanismPlan
{
    public required string Release { get; init; }
    /// <summary>Namespace of the release Secrets.</summary>
    public required string ReleaseNamespace { get; init; }
    public required string DeploymentNamespace { get; init; }
    public required string Deployment { get; init; }
    /// <summary>The newest revision (helm's currentRelease); the new one is this + 1.</summary>
    public required int CurrentVersion { get; init; }
    /// <summary>The revision rolled back to.</summary>
    public required int TargetVersion { get; init; }
    /// <summary>The release helm's rollback writes, status pending-rollback.</summary>
    public required HelmRelease NewRelease { get; init; }
    /// <summary>Every stored revision's Secret resourceVersion when planned.</summary>
    public required IReadOnlyDictionary<int, string> Observed { get; init; }
    /// <summary>Revisions deleted to keep helm.history_max (storage.go removeLeastRecent).</summary>
    public required IReadOnlyList<int> Pruned { get; init; }
    /// <summary>Deployed revisions marked superseded once the new one is deployed.</summary>
    public required IReadOnlyList<int> Superseded { get; init; }
    public required string DeploymentResourceVersion { get; init; }
    public required long DeploymentGeneration { get; init; }
    /// <summary>The target manifest's pod template that replaces the Deployment's.</summary>
    public required JsonObject TargetTemplate { get; init; }

    /// <summary>
    /// Resuming this run's own revision (already stored, pending-rollback, by an attempt that was
    /// killed): nothing is pruned or created, the Deployment is patched only if it is not at the
    /// target yet, then the revision is finished as helm does.
    /// </summary>
    public bool Resumes { get; init; }
    /// <summary>Resuming: the Deployment already has the target template, so no patch is sent.</summary>
    public bool DeploymentAtTarget { get; init; }

    public int NewVersion => Resumes ? CurrentVersion : CurrentVersion + 1;

    /// <summary>The Deployment patch: a resourceVersion test, then the target template.</summary>
    public JsonArray Patch(string resourceVersion) => new()
    {
        new JsonObject { ["op"] = "test", ["path"] = "/metadata/resourceVersion", ["value"] = resourceVersion },
        new JsonObject { ["op"] = "replace", ["path"] = "/spec/template", ["value"] = TargetTemplate.DeepClone() },
    };

    /// <summary>What Await needs from a result: <c>helm:namespace/release.vN</c>.</summary>
    public string RolloutTarget => HelmRolloutTarget.Format(ReleaseNamespace, Release, NewVersion);

    public override RollbackResult Decorate(RollbackResult result) => result with { RolloutTarget = RolloutTarget };
}

/// <summary>The release revision an applied Helm rollback waits for, carried in <see cref="RollbackResult.RolloutTarget"/>.</summary>
public static class HelmRolloutTarget
{
    public static string Format(string @namespace, string release, int version) => $"helm:{@namespace}/{release}.v{version}";

    public static (string Namespace, string Release, int Version)? Parse(string? target)
    {
        if (target is null || !target.StartsWith("helm:", StringComparison.Ordinal))
        {
            return null;
        }
        int slash = target.IndexOf('/'), dot = target.LastIndexOf(".v", StringComparison.Ordinal);
        return slash > 5 && dot > slash && int.TryParse(target[(dot + 2)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int version)
            ? (target[5..slash], target[(slash + 1)..dot], version)
            : null;
    }
}
