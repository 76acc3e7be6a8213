using KfmRollback.Engine.Safety;

namespace KfmRollback.Engine.Configuration;

/// <summary>The one redaction (<see cref="Redactor"/>) as an environment's configuration sets it up.</summary>
public static class Redactors
{
    /// <summary>
    /// The environment's redaction: its restricted ids (read from their reference), restricted id
    /// patterns, and the env var names shown in clear (redaction.show_env, and policy_surface.env,
    /// whose value is the policy bundle ref the decision tree compares).
    /// </summary>
    public static Redactor For(EnvironmentConfig environment)
    {
        IReadOnlyList<string> ids = environment.ApiSection is { } api ? api.Probe.RestrictedIds() : Array.Empty<string>();
        IEnumerable<string> shown = environment.Redaction.ShowEnv;
        if (environment.PolicySurface?.Env is { } policyEnv) shown = shown.Append(policyEnv);
        return new Redactor(ids, environment.Observability.RestrictedIdPatterns, shown);
    }
}
