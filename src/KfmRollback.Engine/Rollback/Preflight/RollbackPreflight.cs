using KfmRollback.Engine.Adapters.Registry;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Rollback.Preflight;

/// <summary>
/// The preflight of a planned rollback, run when it is planned (Get-KfmRollbackPlan, -WhatIf) and
/// again under the lock just before Apply: the mechanism's server-side dry run of each planned
/// Kubernetes write, and, when the environment has a registry, that the target digest still exists
/// there, and, when it has a verify section, that the target is signed and not revoked (TargetVerification). A failed check refuses the rollback before anything changes and says which check, what
/// it saw and what to do (design rules: "Nothing silent").
/// </summary>
public sealed class RollbackPreflight
{
    public const string RegistryCheck = "registry-digest";

    private readonly Func<RegistryConfig, IRegistryClient> _registries;
    private readonly TargetVerification _verification;

    /// <param name="registries">Builds the registry client of an environment (default: the OCI distribution API over HTTP).</param>
    public RollbackPreflight(Func<RegistryConfig, IRegistryClient>? registries = null)
    {
        _registries = registries ?? RegistryClients.Create;
        _verification = new TargetVerification(_registries);
    }

    public async Task<IReadOnlyList<PreflightCheck>> RunAsync(IRollbackMechanism mechanism, RollbackRequest request, MechanismPlan plan, CancellationToken cancellationToken)
    {
        if (plan.NoOp)
        {
            return Array.Empty<PreflightCheck>();
        }
        var checks = new List<PreflightCheck>(await mechanism.DryRunAsync(request, plan, cancellationToken).ConfigureAwait(false));
        checks.Add(await TargetInRegistryAsync(request, plan, cancellationToken).ConfigureAwait(false));
        checks.Add(await _verification.CheckAsync(request, plan, cancellationToken).ConfigureAwait(false));
        return checks;
    }

    /// <summary>The checks of <paramref name="preflight"/> the operator forced (any check: target-verify, registry-digest), as the receipt records them.</summary>
    public static IReadOnlyList<Receipts.ForcedCheck> Forced(IReadOnlyList<PreflightCheck> preflight, string? reason) =>
        preflight.Where(c => c.Verdict == PreflightVerdict.Forced)
            .Select(c => new Receipts.ForcedCheck { Check = c.Check, ErrorId = c.ErrorId!, Target = c.Target, Reason = reason! }).ToList();

    /// <summary>The first failed check as the refusal, else nothing.</summary>
    public static void ThrowIfFailed(IReadOnlyList<PreflightCheck> checks)
    {
        if (checks.FirstOrDefault(c => c.Failed) is { } failed)
        {
            throw failed.ToException();
        }
    }

    /// <summary>
    /// HEAD /v2/&lt;name&gt;/manifests/&lt;digest&gt; (OCI distribution spec, "Checking if content exists in the
    /// registry"): 200 passes, 404 fails (pods could not pull the target: ImagePullBackOff), and a
    /// registry that cannot be asked fails too, since the target's existence is then unconfirmed.
    /// </summary>
    private async Task<PreflightCheck> TargetInRegistryAsync(RollbackRequest request, MechanismPlan plan, CancellationToken cancellationToken)
    {
        EnvironmentConfig environment = request.Environment;
        RegistryConfig? registry = environment.Registry;
        string? digest = ImageRefs.IsDigest(plan.TargetRef) ? plan.TargetRef : null;
        PreflightCheck Result(string target, PreflightVerdict verdict, string saw) =>
            new() { Environment = environment.Name, Check = RegistryCheck, Target = target, Verdict = verdict, Saw = saw };
        if (registry is null)
        {
            return Result(digest is null ? "target" : ImageRefs.Short(digest), PreflightVerdict.Skipped, $"no registry is configured for {environment.Name}, so whether the target digest still exists is not checked");
        }
        if (digest is null)
        {
            return Result(registry.Url.Authority, PreflightVerdict.Skipped, "the plan targets no image digest (a configuration or policy change only)");
        }
        string? repository = registry.RepositoryOf(plan.TargetImage);
        if (repository is null)
        {
            return Result($"{registry.Url.Authority} ?@{ImageRefs.Short(digest)}", PreflightVerdict.Failed, "the plan does not say which repository holds the target") with
            {
                ErrorId = PreflightErrorIds.RegistryUnavailable, Kind = KfmErrorKind.Ambiguous,
                Advice = "Set registry.repository for this environment, then plan again.",
            };
        }
        string target = $"{registry.Url.Authority}/{repository}@{digest}";
        ManifestDescriptor? found;
        try
        {
            found = await _registries(registry).HeadManifestAsync(repository, digest, cancellationToken).ConfigureAwait(false);
        }
        catch (KfmException ex)
        {
            // Unconfirmed is not missing: a registry down in the same outage must not hold the rollback
            // hostage, so the operator may go ahead on the record (a 404 below stays a refusal: pods could not pull).
            string saw = $"the registry could not be asked: {ex.Message.TrimEnd('.')}";
            return Result(target, PreflightVerdict.Failed, saw).Refuse(PreflightErrorIds.RegistryUnavailable, ex.Kind,
                "Whether the target build still exists is unconfirmed. Fix the registry access (registry.url, registry.username, token_env/token_file) and plan again; if the target must go ahead unconfirmed, pass -Force -ForceReason '<why>' (recorded on the timeline and the receipt); or: " + PreflightErrorIds.WaysOut,
                request);
        }
        if (found is null)
        {
            return Result(target, PreflightVerdict.Failed, $"HEAD /v2/{repository}/manifests/{digest} answered 404: the target build is gone from the registry, so its pods could not pull it (ImagePullBackOff)") with
            {
                ErrorId = PreflightErrorIds.DigestMissing, Kind = KfmErrorKind.ObjectNotFound,
                Advice = "Push the build back under the same digest, or: " + PreflightErrorIds.WaysOut,
            };
        }
        return Result(target, PreflightVerdict.Passed, $"the registry has it ({found.MediaType ?? "manifest"}{(found.Size is { } size ? $", {size} bytes" : "")})");
    }
}

/// <summary>Registry clients for configured environments: the OCI distribution API, credentials read by reference.</summary>
public static class RegistryClients
{
    private static readonly SocketsHttpHandler s_handler = new() { PooledConnectionLifetime = TimeSpan.FromMinutes(5), AllowAutoRedirect = true };

    public static IRegistryClient Create(RegistryConfig config)
    {
        string? secret = SecretReference.Read(config.TokenEnv, config.TokenFile);
        RegistryCredential? credential = config.Username is null ? null : new RegistryCredential(config.Username, secret ?? "");
        return new OciRegistryClient(config.Url, credential, new HttpClient(s_handler, disposeHandler: false) { Timeout = config.Timeout });
    }
}
