using k8s;
using k8s.Models;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Cluster;

/// <summary>
/// A coordination.k8s.io Lease used as a mutex per Deployment, so two operators (or an operator
/// and a job) never roll back the same Deployment at once. Taken by create, or by PUT with
/// resourceVersion when the holder's lease has expired; renewed while held; released at the end.
/// </summary>
public sealed class RollbackLease : IAsyncDisposable
{
    private readonly IKubernetes _client;
    private readonly IClock _clock;
    private V1Lease _lease;
    private readonly CancellationTokenSource _renewing = new();
    private readonly Task _renewal;

    private RollbackLease(IKubernetes client, IClock clock, V1Lease lease)
    {
        _client = client;
        _clock = clock;
        _lease = lease;
        _renewal = RenewLoopAsync(_renewing.Token);
    }

    public string Holder => _lease.Spec.HolderIdentity;

    public static async Task<RollbackLease> AcquireAsync(IKubernetes client, string @namespace, string name, string holder, TimeSpan duration, IClock clock, CancellationToken cancellationToken)
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
                        Spec = new V1LeaseSpec { HolderIdentity = holder, LeaseDurationSeconds = (int)duration.TotalSeconds, AcquireTime = now, RenewTime = now, LeaseTransitions = 0 },
                    };
                    V1Lease created = await client.CoordinationV1.CreateNamespacedLeaseAsync(lease, @namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
                    return new RollbackLease(client, clock, created);
                }

                if (IsHeldByOther(existing, holder, now))
                {
                    DateTime since = existing.Spec.AcquireTime ?? existing.Spec.RenewTime ?? now;
                    DateTime expires = (existing.Spec.RenewTime ?? since).AddSeconds(existing.Spec.LeaseDurationSeconds ?? 0);
                    throw new KfmException("RollbackLocked", KfmErrorKind.ResourceBusy,
                        $"Another rollback holds deployment {@namespace}/{name.Replace("kfm-rollback-", string.Empty)}: lease {name} is held by '{existing.Spec.HolderIdentity}' since {since:yyyy-MM-dd HH:mm:ss} UTC " +
                        $"(expires {expires:HH:mm:ss} UTC unless renewed). Coordinate with that operator; nothing was changed.", existing.Spec.HolderIdentity);
                }

                existing.Spec.HolderIdentity = holder;
                existing.Spec.LeaseDurationSeconds = (int)duration.TotalSeconds;
                existing.Spec.AcquireTime = now;
                existing.Spec.RenewTime = now;
                existing.Spec.LeaseTransitions = (existing.Spec.LeaseTransitions ?? 0) + 1;
                V1Lease taken = await client.CoordinationV1.ReplaceNamespacedLeaseAsync(existing, name, @namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
                return new RollbackLease(client, clock, taken);
            }
            catch (Exception ex) when ((KubernetesErrors.IsConflict(ex) || KubernetesErrors.Status(ex) == System.Net.HttpStatusCode.Conflict) && attempt < 3)
            {
                // Someone created or took it between our read and write: read again and decide again.
            }
            catch (Exception ex) when (ex is not KfmException && (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested))
            {
                if (KubernetesErrors.IsConflict(ex))
                {
                    throw new KfmException("RollbackLocked", KfmErrorKind.ResourceBusy,
                        $"Another rollback took lease {@namespace}/{name} at the same moment. Nothing was changed; check Get-KfmIncident and retry.", name, ex);
                }
                throw KubernetesErrors.Wrap(ex, $"Taking the rollback lock {@namespace}/{name}", name);
            }
        }
    }

    private static bool IsHeldByOther(V1Lease lease, string holder, DateTime now)
    {
        if (string.IsNullOrEmpty(lease.Spec.HolderIdentity) || lease.Spec.HolderIdentity == holder)
        {
            return false;
        }
        DateTime renewed = lease.Spec.RenewTime ?? lease.Spec.AcquireTime ?? DateTime.MinValue;
        return renewed.AddSeconds(lease.Spec.LeaseDurationSeconds ?? 0) >= now;
    }

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
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(every, cancellationToken).ConfigureAwait(false);
                _lease.Spec.RenewTime = _clock.UtcNow.UtcDateTime;
                _lease = await _client.CoordinationV1.ReplaceNamespacedLeaseAsync(_lease, _lease.Metadata.Name, _lease.Metadata.NamespaceProperty, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception)
            {
                // A missed renewal is retried next round; the lease only lapses after its full duration.
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
        var release = new System.Text.Json.Nodes.JsonArray
        {
            new System.Text.Json.Nodes.JsonObject { ["op"] = "test", ["path"] = "/spec/holderIdentity", ["value"] = _lease.Spec.HolderIdentity },
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
        _renewing.Dispose();
    }
}
