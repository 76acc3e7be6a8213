using System.Text.RegularExpressions;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Adapters.Kubernetes;

/// <summary>
/// Who holds a rollback lease: a person or job (<see cref="Actor"/>), the incident and the run it
/// serves, and this attempt of the run. Written as
/// <c>alice@host (INC-1042; run INC-1042/prod/cluster#1; attempt 3f2a9c01)</c>, readable in
/// <c>kubectl get lease</c> and parsed back so a rerun of the same run recognises its own lease.
/// </summary>
public sealed partial record LeaseHolder(string Actor, string? IncidentId, string? RunId, string Attempt)
{
    [GeneratedRegex(@"^(?<actor>.*) \((?<incident>[^;()]+); run (?<run>[^;()]+); attempt (?<attempt>[0-9a-f]+)\)$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();

    public string Identity => IncidentId is null || RunId is null
        ? $"{Actor} (no incident; attempt {Attempt})"
        : $"{Actor} ({IncidentId}; run {RunId}; attempt {Attempt})";

    /// <summary>The holder an identity names, or null for one written by someone else (an older module, a person).</summary>
    public static LeaseHolder? Parse(string? identity)
    {
        Match match = Pattern().Match(identity ?? string.Empty);
        return match.Success
            ? new LeaseHolder(match.Groups["actor"].Value, match.Groups["incident"].Value, match.Groups["run"].Value, match.Groups["attempt"].Value)
            : null;
    }

    /// <summary>Another attempt of the same run (same incident, environment and method): its lease is this run's own.</summary>
    public bool SameRun(LeaseHolder? other) =>
        other is not null && IncidentId is not null && RunId is not null
        && string.Equals(other.IncidentId, IncidentId, StringComparison.OrdinalIgnoreCase)
        && string.Equals(other.RunId, RunId, StringComparison.OrdinalIgnoreCase);

    public override string ToString() => Identity;
}

/// <summary>How a lease was taken: free, from an earlier attempt of the same run, expired, or broken on the record.</summary>
public enum LeaseTakeover
{
    Free,
    OwnRun,
    Expired,
    Broken,
}

/// <summary>
/// A coordination.k8s.io Lease used as a mutex per Deployment, so two operators (or an operator
/// and a job) never roll back the same Deployment at once. Taken by create, or by PUT with
/// resourceVersion when it is free, expired, held by an earlier attempt of the same run (a killed
/// job must not block its own rerun), or broken on the record (-BreakLock -Reason, for a holder
/// known dead). Renewed while held; a renewal that meets a conflict re-reads and retries while the
/// lease is still ours, and otherwise marks it lost, so the holder stops before Apply and reports a
/// loss during Await. Released at the end.
/// </summary>
public sealed class RollbackLease : IAsyncDisposable
{
    private readonly IKubernetes _client;
    private readonly IClock _clock;
    private readonly string _holder;
    private V1Lease _lease;
    private readonly CancellationTokenSource _renewing = new();
    private readonly Task _renewal;
    private volatile string? _lostTo;

    private RollbackLease(IKubernetes client, IClock clock, V1Lease lease, string? previous, LeaseTakeover takeover)
    {
        _client = client;
        _clock = clock;
        _lease = lease;
        _holder = lease.Spec.HolderIdentity;
        PreviousHolder = previous;
        Takeover = takeover;
        _renewal = RenewLoopAsync(_renewing.Token);
    }

    public string Holder => _holder;

    /// <summary>Who held the lease before (an earlier attempt of this run, an expired or broken holder), or null.</summary>
    public string? PreviousHolder { get; }

    public LeaseTakeover Takeover { get; }

    public string Description => $"lease {_lease.Metadata.NamespaceProperty}/{_lease.Metadata.Name}";

    /// <summary>Who took the lease while we held it, once renewal found out ("(deleted)" when it vanished).</summary>
    public string? LostTo => _lostTo;

    public bool Lost => _lostTo is not null;

    /// <param name="breakReason">-BreakLock -Reason: take the lease from a holder known dead, whoever it is (the caller journals it).</param>
    /// <param name="breakHint">The command that would break this lock, for the refusal's message.</param>
    public static async Task<RollbackLease> AcquireAsync(IKubernetes client, string @namespace, string name, LeaseHolder holder, TimeSpan duration, IClock clock,
        string? breakReason, string breakHint, CancellationToken cancellationToken)
    {
        for (int attempt = 0; ; attempt++)
        {
            DateTime now = clock.UtcNow.UtcDateTime;
            V1Lease? existing = await TryReadAsync(client, @namespace, name, cancellationToken).ConfigureAwait(false);
            try
            {
                if (existing is null)
                {
                    var lease = new V1Lease
                    {
                        ApiVersion = "coordination.k8s.io/v1",
                        Kind = "Lease",
                        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = @namespace, Labels = new Dictionary<string, string> { ["app.kubernetes.io/managed-by"] = "KfmRollback" } },
                        Spec = new V1LeaseSpec { HolderIdentity = holder.Identity, LeaseDurationSeconds = Seconds(duration), AcquireTime = now, RenewTime = now, LeaseTransitions = 0 },
                    };
                    V1Lease created = await client.CoordinationV1.CreateNamespacedLeaseAsync(lease, @namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
                    return new RollbackLease(client, clock, created, null, LeaseTakeover.Free);
                }

                string? current = string.IsNullOrEmpty(existing.Spec.HolderIdentity) ? null : existing.Spec.HolderIdentity;
                LeaseTakeover takeover;
                if (current is null || current == holder.Identity)
                {
                    takeover = LeaseTakeover.Free;
                }
                else if (holder.SameRun(LeaseHolder.Parse(current)))
                {
                    takeover = LeaseTakeover.OwnRun;
                }
                else if (!IsLive(existing, now))
                {
                    takeover = LeaseTakeover.Expired;
                }
                else if (breakReason is not null)
                {
                    takeover = LeaseTakeover.Broken;
                }
                else
                {
                    DateTime since = existing.Spec.AcquireTime ?? existing.Spec.RenewTime ?? now;
                    DateTime expires = Expiry(existing) ?? now;
                    throw new KfmException("RollbackLocked", KfmErrorKind.ResourceBusy,
                        $"Another rollback holds deployment {@namespace}/{name.Replace("kfm-rollback-", string.Empty)}: lease {name} is held by '{current}' since {since:yyyy-MM-dd HH:mm:ss} UTC " +
                        $"(expires {expires:yyyy-MM-dd HH:mm:ss} UTC unless renewed). Nothing was changed. Coordinate with that holder; if it is known dead (a killed job, a lost session), " +
                        $"break the lock on the record: {breakHint}", current);
                }

                existing.Spec.HolderIdentity = holder.Identity;
                existing.Spec.LeaseDurationSeconds = Seconds(duration);
                existing.Spec.AcquireTime = now;
                existing.Spec.RenewTime = now;
                if (current is not null && current != holder.Identity)
                {
                    existing.Spec.LeaseTransitions = (existing.Spec.LeaseTransitions ?? 0) + 1;
                }
                V1Lease taken = await client.CoordinationV1.ReplaceNamespacedLeaseAsync(existing, name, @namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
                return new RollbackLease(client, clock, taken, current == holder.Identity ? null : current, takeover);
            }
            catch (Exception ex) when (IsConflict(ex) && attempt < 3)
            {
                // Someone created or took it between our read and write: read again and decide again.
            }
            catch (Exception ex) when (ex is not KfmException && (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested))
            {
                if (IsConflict(ex))
                {
                    throw new KfmException("RollbackLocked", KfmErrorKind.ResourceBusy,
                        $"Another rollback took lease {@namespace}/{name} at the same moment. Nothing was changed; check Get-KfmIncident and retry.", name, ex);
                }
                throw KubernetesErrors.Wrap(ex, $"Taking the rollback lock {@namespace}/{name}", name);
            }
        }
    }

    /// <summary>
    /// Reads the lease afresh and throws RollbackLockLost unless we still hold it: called right before
    /// Apply, so a holder whose lease was taken or broken never sends a change.
    /// </summary>
    public async Task EnsureHeldAsync(CancellationToken cancellationToken)
    {
        if (_lostTo is null)
        {
            V1Lease? now = await TryReadAsync(_client, _lease.Metadata.NamespaceProperty, _lease.Metadata.Name, cancellationToken).ConfigureAwait(false);
            if (now is null || now.Spec.HolderIdentity != _holder)
            {
                _lostTo = now?.Spec.HolderIdentity is { Length: > 0 } other ? other : "(nobody: the lease was deleted or released)";
            }
        }
        if (_lostTo is { } holder)
        {
            throw new KfmException("RollbackLockLost", KfmErrorKind.ResourceBusy,
                $"The rollback lock ({Description}) is no longer ours: it is held by '{holder}'. Nothing more was sent. Find out who holds it (Get-KfmIncident, kubectl get lease), then run again.", holder);
        }
    }

    private static bool IsLive(V1Lease lease, DateTime now) => Expiry(lease) is { } expires && expires >= now;

    private static DateTime? Expiry(V1Lease lease) =>
        (lease.Spec.RenewTime ?? lease.Spec.AcquireTime)?.AddSeconds(lease.Spec.LeaseDurationSeconds ?? 0);

    private static int Seconds(TimeSpan duration) => Math.Max(1, (int)Math.Ceiling(duration.TotalSeconds));

    private static bool IsConflict(Exception ex) => KubernetesErrors.IsConflict(ex) || KubernetesErrors.Status(ex) == System.Net.HttpStatusCode.Conflict;

    private static async Task<V1Lease?> TryReadAsync(IKubernetes client, string @namespace, string name, CancellationToken cancellationToken)
    {
        try
        {
            return await client.CoordinationV1.ReadNamespacedLeaseAsync(name, @namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (KubernetesErrors.IsNotFound(ex))
        {
            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw KubernetesErrors.Wrap(ex, $"Reading the rollback lock {@namespace}/{name}", name);
        }
    }

    private async Task RenewLoopAsync(CancellationToken cancellationToken)
    {
        TimeSpan every = TimeSpan.FromSeconds(Math.Max(1, (_lease.Spec.LeaseDurationSeconds ?? 60) / 3.0));
        while (!cancellationToken.IsCancellationRequested && _lostTo is null)
        {
            try
            {
                await Task.Delay(every, cancellationToken).ConfigureAwait(false);
                await RenewAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception)
            {
                // A failed renewal (a slow or unreachable apiserver) is retried next round; the lease only
                // lapses after its full duration, and EnsureHeldAsync checks before any change.
            }
        }
    }

    /// <summary>One renewal: on a conflict, re-read; still ours, renew the fresh object; someone else's, lost.</summary>
    internal async Task RenewAsync(CancellationToken cancellationToken)
    {
        string ns = _lease.Metadata.NamespaceProperty, name = _lease.Metadata.Name;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            try
            {
                _lease.Spec.RenewTime = _clock.UtcNow.UtcDateTime;
                _lease = await _client.CoordinationV1.ReplaceNamespacedLeaseAsync(_lease, name, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (Exception ex) when (IsConflict(ex) || KubernetesErrors.IsNotFound(ex))
            {
                V1Lease? fresh = await TryReadAsync(_client, ns, name, cancellationToken).ConfigureAwait(false);
                if (fresh is null || fresh.Spec.HolderIdentity != _holder)
                {
                    _lostTo = fresh?.Spec.HolderIdentity is { Length: > 0 } other ? other : "(nobody: the lease was deleted or released)";
                    return;
                }
                _lease = fresh; // still ours (a status write, another field): renew the object as it is now
            }
        }
    }

    /// <summary>
    /// Releases the lease (clears the holder) so the next operator need not wait for expiry; one
    /// JSON patch whose test op makes sure it only clears our own hold.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        _renewing.Cancel();
        await _renewal.ConfigureAwait(false);
        if (_lostTo is null)
        {
            var release = new System.Text.Json.Nodes.JsonArray
            {
                new System.Text.Json.Nodes.JsonObject { ["op"] = "test", ["path"] = "/spec/holderIdentity", ["value"] = _holder },
                new System.Text.Json.Nodes.JsonObject { ["op"] = "remove", ["path"] = "/spec/holderIdentity" },
            };
            try
            {
                await _client.CoordinationV1.PatchNamespacedLeaseAsync(new V1Patch(release.ToJsonString(), V1Patch.PatchType.JsonPatch),
                    _lease.Metadata.Name, _lease.Metadata.NamespaceProperty).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Releasing is a courtesy: an unreleased lease expires after its duration, and a
                // failed test means someone else holds it now.
            }
        }
        _renewing.Dispose();
    }
}
