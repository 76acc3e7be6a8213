using KfmRollback.Engine.Cluster;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Rollback.Preflight;

namespace KfmRollback.Engine.Rollback;

/// <summary>
/// The one entry point for every rollback (runbook steps 2-5): validate the request, let the
/// method's mechanism plan it, then apply exactly that plan and, with -Wait, await its rollout.
/// Fleets go through the same path: every environment is planned (freeze checks included) before
/// any is changed, then applied with a throttle, each result reported as it ends.
/// </summary>
public sealed class RollbackEngine
{
    private readonly RollbackMechanisms _mechanisms;
    private readonly IClock _clock;
    private readonly RollbackPreflight _preflight;

    public RollbackEngine(RollbackMechanisms mechanisms, IClock? clock = null, RollbackPreflight? preflight = null)
    {
        _mechanisms = mechanisms;
        _clock = clock ?? SystemClock.Instance;
        _preflight = preflight ?? new RollbackPreflight();
    }

    public static RollbackEngine Default { get; } = new(RollbackMechanisms.Default);

    public async Task<MechanismPlan> PlanAsync(RollbackRequest request, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        RollbackRules.Validate(request);
        IRollbackMechanism mechanism = _mechanisms.For(request.Method, request.Environment);
        MechanismPlan plan = await mechanism.PlanAsync(request, reporter, cancellationToken).ConfigureAwait(false);
        return plan with { Preflight = await _preflight.RunAsync(mechanism, request, plan, cancellationToken).ConfigureAwait(false) };
    }

    /// <summary>The result -WhatIf shows: the plan's changes, nothing sent.</summary>
    public static RollbackResult Preview(RollbackRequest request, MechanismPlan plan) =>
        plan.ToResult(request, plan.NoOp ? RollbackOutcome.NoOp : RollbackOutcome.Planned, plan.PlannedAt, plan.Summary, plan.Changes);

    /// <summary>Applies exactly <paramref name="plan"/>, then awaits its rollout when the request says -Wait.</summary>
    public async Task<RollbackResult> RunAsync(RollbackRequest request, MechanismPlan plan, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        IRollbackMechanism mechanism = _mechanisms.For(request.Method, request.Environment);
        if (plan.NoOp)
        {
            reporter.Record("OPS", $"{request.Method} rollback of {request.Environment.Name} skipped: {plan.Summary}");
            return plan.ToResult(request, RollbackOutcome.NoOp, _clock.UtcNow, plan.Summary, Array.Empty<PlannedChange>());
        }
        RollbackPreflight.ThrowIfFailed(plan.Preflight);
        await using IAsyncDisposable held = await mechanism.LockAsync(request, reporter, cancellationToken).ConfigureAwait(false);
        // Again just before the first write: a policy installed or a build deleted since the plan refuses here, not half-way.
        RollbackPreflight.ThrowIfFailed(await _preflight.RunAsync(mechanism, request, plan, cancellationToken).ConfigureAwait(false));
        RollbackResult applied = await mechanism.ApplyAsync(request, plan, reporter, cancellationToken).ConfigureAwait(false);
        // A GitOps rollback is PendingMerge until its pull request merges: -Wait follows it from there.
        if (request.Wait && applied.Outcome is RollbackOutcome.Succeeded or RollbackOutcome.PendingMerge)
        {
            applied = await mechanism.AwaitAsync(request, applied, reporter, cancellationToken).ConfigureAwait(false);
            applied = await PolicyCasesAsync(request, applied, reporter, cancellationToken).ConfigureAwait(false);
        }
        return applied;
    }

    /// <summary>
    /// Runbook step 5's "AND ensure policy tests still cover allow/deny cases": after a policy rollback
    /// has rolled out, the environment's policy cases (policy_surface.cases_file) run against the API.
    /// A flipped case, or OPA running another bundle, fails the rollback with PolicyCasesFailed.
    /// </summary>
    private async Task<RollbackResult> PolicyCasesAsync(RollbackRequest request, RollbackResult applied, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        if (applied.Outcome != RollbackOutcome.Succeeded || !request.Surfaces.HasFlag(Surfaces.RollbackSurfaces.Policy)
            || request.Environment.PolicySurface?.CasesFile is not { } file)
        {
            return applied;
        }
        reporter.Say($"Running the policy cases of {request.Environment.Name} ({file}).");
        TimeSpan activation = request.Timeout < TimeSpan.FromMinutes(1) ? request.Timeout : TimeSpan.FromMinutes(1);
        IReadOnlyList<Verification.CheckResult> results;
        try
        {
            results = await Verification.PolicyCases.RunAsync(request.Environment, file, activation, cancellationToken).ConfigureAwait(false);
        }
        catch (KfmException ex) when (ex.Kind is KfmErrorKind.ConnectionError or KfmErrorKind.InvalidArgument)
        {
            var error = new KfmException(PolicyCasesFailed, KfmErrorKind.InvalidOperation,
                $"The policy of {request.Environment.Name} was rolled back, but its policy cases could not run: {ex.Message}", request.Environment.Name, ex);
            reporter.Record("OPS", $"Policy cases of {request.Environment.Name} could not run after the policy rollback");
            return applied with { Outcome = RollbackOutcome.Failed, Detail = error.Message, Error = error, CompletedAt = _clock.UtcNow };
        }
        var failed = results.Where(r => r.Verdict == Verification.Verdict.Fail).Select(r => r.Check).ToList();
        int passed = results.Count(r => r.Verdict == Verification.Verdict.Pass && r.Check.StartsWith(Verification.PolicyCases.CasePrefix, StringComparison.Ordinal));
        if (failed.Count > 0)
        {
            string summary = string.Join("; ", results.Where(r => r.Verdict == Verification.Verdict.Fail).Select(r => r.Summary));
            var error = new KfmException(PolicyCasesFailed, KfmErrorKind.InvalidOperation,
                $"The policy of {request.Environment.Name} was rolled back, but the policy cases fail ({string.Join(", ", failed)}): {summary}. " +
                "The API may enforce the wrong policy: fail closed where it is unsafe (Enable-KfmFailClosed), then escalate.", request.Environment.Name);
            reporter.Record("OPS", $"Policy cases of {request.Environment.Name} failed after the policy rollback: {string.Join(", ", failed)}");
            return applied with { Outcome = RollbackOutcome.Failed, Detail = error.Message, Error = error, PolicyCases = results, CompletedAt = _clock.UtcNow };
        }
        string inconclusive = string.Join("; ", results.Where(r => r.Verdict == Verification.Verdict.Inconclusive).Select(r => r.Summary));
        string detail = $"{passed} policy case(s) pass" + (inconclusive.Length > 0 ? $"; inconclusive: {inconclusive}" : "");
        reporter.Record("OPS", $"Policy cases of {request.Environment.Name} after the policy rollback: {detail}");
        return applied with { PolicyCases = results, Detail = applied.Detail is null ? detail : $"{applied.Detail}; {detail}" };
    }

    /// <summary>Error id of a policy rollback whose policy cases fail afterwards.</summary>
    public const string PolicyCasesFailed = "PolicyCasesFailed";

    /// <summary>Wait-KfmRollback: awaits a result applied earlier (a PR merged later), under the mechanism's lock.</summary>
    public async Task<RollbackResult> AwaitAsync(RollbackRequest request, RollbackResult applied, RollbackReporter reporter, CancellationToken cancellationToken)
    {
        if (applied.Outcome is not (RollbackOutcome.Succeeded or RollbackOutcome.PendingMerge))
        {
            throw new KfmException("RollbackNothingToAwait", KfmErrorKind.InvalidArgument,
                $"The {applied.Method} rollback of {applied.Environment} is {applied.Outcome}: there is nothing to wait for. Pipe in a result that is Succeeded or PendingMerge.", applied.Outcome);
        }
        IRollbackMechanism mechanism = _mechanisms.For(request.Method, request.Environment);
        await using IAsyncDisposable held = await mechanism.LockAsync(request, reporter, cancellationToken).ConfigureAwait(false);
        RollbackResult awaited = await mechanism.AwaitAsync(request, applied, reporter, cancellationToken).ConfigureAwait(false);
        return await PolicyCasesAsync(request, awaited, reporter, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Plans every request (at most <paramref name="throttle"/> at once); a request that cannot be
    /// planned carries its error, so the caller can refuse the whole fleet before anything changes.
    /// </summary>
    public async Task<IReadOnlyList<FleetPlan>> PlanManyAsync(IReadOnlyList<RollbackRequest> requests, int throttle, Func<RollbackRequest, RollbackReporter> reporters, CancellationToken cancellationToken)
    {
        var plans = new FleetPlan[requests.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, requests.Count), Options(throttle, cancellationToken), async (i, token) =>
        {
            try { plans[i] = new FleetPlan(requests[i], await PlanAsync(requests[i], reporters(requests[i]), token).ConfigureAwait(false), null); }
            catch (KfmException ex) { plans[i] = new FleetPlan(requests[i], null, ex); }
        }).ConfigureAwait(false);
        return plans;
    }

    /// <summary>Runs approved plans, at most <paramref name="throttle"/> at once, handing each result over as it ends.</summary>
    public Task RunManyAsync(IReadOnlyList<FleetPlan> approved, int throttle, Func<RollbackRequest, RollbackReporter> reporters, Action<RollbackResult> completed, CancellationToken cancellationToken) =>
        Parallel.ForEachAsync(approved, Options(throttle, cancellationToken), async (item, token) =>
        {
            RollbackResult result;
            try { result = await RunAsync(item.Request, item.Plan!, reporters(item.Request), token).ConfigureAwait(false); }
            catch (KfmException ex)
            {
                // One environment failing (a held lock, a timeout) must not hide the others' results.
                result = item.Plan!.ToResult(item.Request, RollbackOutcome.Failed, _clock.UtcNow, ex.Message, Array.Empty<PlannedChange>()) with { Error = ex };
            }
            completed(result);
        });

    /// <summary>
    /// Runs a fleet wave by wave: a wave's environments at once (up to <paramref name="throttle"/>),
    /// then its bake time, then <paramref name="verify"/> on each; any failed rollback or verification
    /// stops the fleet there with FleetWaveFailed or FleetVerificationFailed, later waves untouched.
    /// </summary>
    /// <param name="verify">Verification of one environment: null when it passed, else why not (policy-safe words).</param>
    public async Task RunWavesAsync(IReadOnlyList<IReadOnlyList<FleetPlan>> waves, int throttle, TimeSpan bakeTime,
        Func<Configuration.EnvironmentConfig, CancellationToken, Task<string?>>? verify, Func<RollbackRequest, RollbackReporter> reporters,
        Action<RollbackResult> completed, Action<string> say, CancellationToken cancellationToken)
    {
        for (int w = 0; w < waves.Count; w++)
        {
            string later = w + 1 < waves.Count ? $" Waves {w + 2}-{waves.Count} were not started." : "";
            var failed = new List<string>();
            await RunManyAsync(waves[w], throttle, reporters, result =>
            {
                if (result.Outcome is not (RollbackOutcome.Succeeded or RollbackOutcome.NoOp or RollbackOutcome.PendingMerge))
                {
                    lock (failed) { failed.Add(result.Environment); }
                }
                completed(result);
            }, cancellationToken).ConfigureAwait(false);
            // Each failed result carries its own error; stopping matters only when later waves would follow.
            if (failed.Count > 0 && w + 1 < waves.Count)
            {
                throw new KfmException("FleetWaveFailed", KfmErrorKind.InvalidOperation,
                    $"Wave {w + 1} did not roll back in {string.Join(", ", failed.Order(StringComparer.Ordinal))}.{later} Fail closed where the API is unsafe (Enable-KfmFailClosed), then escalate.", w + 1);
            }
            if (bakeTime > TimeSpan.Zero)
            {
                say($"Wave {w + 1} rolled back; baking for {bakeTime} before verifying.");
                await Task.Delay(bakeTime, cancellationToken).ConfigureAwait(false);
            }
            if (verify is null)
            {
                continue;
            }
            foreach (FleetPlan item in waves[w])
            {
                if (await verify(item.Request.Environment, cancellationToken).ConfigureAwait(false) is { } why)
                {
                    throw new KfmException("FleetVerificationFailed", KfmErrorKind.InvalidOperation,
                        $"Wave {w + 1} failed verification in {item.Request.Environment.Name}: {why}.{later} Look at Test-KfmRollback -Environment {item.Request.Environment.Name}; fail closed if the API is unsafe.", item.Request.Environment.Name);
                }
            }
            say($"Wave {w + 1} verified.");
        }
    }

    private static ParallelOptions Options(int throttle, CancellationToken cancellationToken) =>
        new() { MaxDegreeOfParallelism = Math.Max(1, throttle), CancellationToken = cancellationToken };

    /// <summary>Test-KfmAccess: the permissions the method's mechanism needs, asked of the apiserver.</summary>
    public Task<IReadOnlyList<AccessCheck>> CheckAccessAsync(RollbackRequest request, CancellationToken cancellationToken)
    {
        IReadOnlyList<AccessRequirement> needs = _mechanisms.For(request.Method, request.Environment).Requirements(request);
        if (needs.Count == 0)
        {
            throw new KfmException("AccessCheckUnsupported", KfmErrorKind.InvalidArgument,
                $"Test-KfmAccess checks Kubernetes permissions, which the {request.Method} method does not use; it needs push access to the GitOps repository.", request.Method);
        }
        return AccessPreflight.CheckAsync(_mechanisms.ClusterClient(request.Environment), request.Environment.Name, needs, cancellationToken);
    }
}

/// <summary>One environment of a fleet: its request and either its plan or why it could not be planned.</summary>
public sealed record FleetPlan(RollbackRequest Request, MechanismPlan? Plan, KfmException? Error);
