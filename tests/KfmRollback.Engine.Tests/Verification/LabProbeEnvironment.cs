using KfmRollback.Engine.Tests.Support;

namespace KfmRollback.Engine.Tests.Verification;

/// <summary>The lab's environment as the module reads it for probing the lab's API.</summary>
internal static class LabProbeEnvironment
{
    /// <summary>
    /// The responder's environment whose API is the lab's, probed by callers anon, public-user and steward
    /// (tokens in environment variables of this call's own) on one governed endpoint, configured in
    /// <paramref name="dir"/>; <paramref name="restrictedIds"/> are the ids the probe must never show.
    /// </summary>
    public static LabConfig Probing(this EngineLab lab, string dir, string? restrictedIds = null)
    {
        string prefix = "KFM_TEST_LAB_" + Guid.NewGuid().ToString("N")[..6].ToUpperInvariant();
        System.Environment.SetEnvironmentVariable(prefix + "_PUBLIC", lab.Host.PublicToken);
        System.Environment.SetEnvironmentVariable(prefix + "_STEWARD", lab.Host.StewardToken);
        System.Environment.SetEnvironmentVariable(prefix + "_RESTRICTED", restrictedIds);
        string restricted = restrictedIds is null ? "" : $"restricted_ids_env: {prefix}_RESTRICTED, ";
        string callers = $"anon: {{ anonymous: true, role: public }}, public-user: {{ token_env: {prefix}_PUBLIC, role: public }}, steward: {{ token_env: {prefix}_STEWARD, role: restricted }}";
        return lab.Configure().In(dir).Responder(api:
            $"{{ base_url: '{lab.Host.KfmApiUrl}', openapi_path: /api/v1/openapi.json, probe: {{ {restricted}callers: {{ {callers} }}, endpoints: [ {{ path: /api/v1/datasets }} ] }} }}");
    }
}
