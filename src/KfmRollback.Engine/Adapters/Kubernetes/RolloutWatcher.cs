using System.Threading.Channels;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Adapters.Kubernetes;

/// <summary>
/// Waits for a rollout the way `kubectl rollout status` does (LIST, then WATCH from that
/// resourceVersion; never polls), and closes its hazards: a dropped or expired watch is re-listed
/// and resumed, a crash-looping or unpullable target stops the wait at once, a paused deployment
/// does not hang, and a timeout or Ctrl+C ends it cleanly.
/// </summary>
public sealed class RolloutWatcher
{
    private readonly IKubernetes _client;
    private readonly string _namespace;
    private readonly string _name;
    private readonly Action<RolloutStatus>? _progress;

    public RolloutWatcher(IKubernetes client, string @namespace, string name, Action<RolloutStatus>? progress = null)
    {
        _client = client;
        _namespace = @namespace;
        _name = name;
        _progress = progress;
    }

    /// <summary>How many times a watch had to be re-established (for diagnostics and tests).</summary>
    public int Relists { get; private set; }

    /// <param name="targetPodTemplateHash">pod-template-hash of the ReplicaSet rolled back to, whose pods are checked for crash loops.</param>
    public async Task<RolloutStatus> WaitAsync(string? targetPodTemplateHash, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var changes = Channel.CreateUnbounded<bool>(new UnboundedChannelOptions { SingleReader = true });
        var state = new WatchedState();

        V1Deployment first = await ListDeploymentAsync(deadline.Token, cancellationToken, timeout).ConfigureAwait(false);
        state.Deployment = first;
        Task deploymentWatch = WatchDeploymentAsync(state, changes.Writer, first.Metadata.ResourceVersion, deadline.Token);
        Task podWatch = WatchPodsAsync(state, changes.Writer, first.Spec.Selector, deadline.Token);

        try
        {
            changes.Writer.TryWrite(true);
            await foreach (bool _ in changes.Reader.ReadAllAsync(deadline.Token).ConfigureAwait(false))
            {
                if (state.Deleted)
                {
                    return new RolloutStatus(RolloutPhase.Failed, $"deployment \"{_name}\" was deleted while waiting for its rollout", 0);
                }
                RolloutStatus status = RolloutStatus.Evaluate(state.Deployment!);
                RolloutStatus? podFailure = targetPodTemplateHash is null ? null : RolloutStatus.PodFailure(state.PodsOf(targetPodTemplateHash));
                RolloutStatus current = podFailure ?? status;
                _progress?.Invoke(current);
                if (current.Phase != RolloutPhase.Waiting)
                {
                    return current;
                }
            }
            throw new InvalidOperationException("watch channel closed unexpectedly");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new KfmException("RolloutWaitTimeout", KfmErrorKind.OperationTimeout,
                $"Timed out after {timeout.TotalSeconds:0}s waiting for deployment {_namespace}/{_name}: {(state.Deployment is null ? "no status yet" : RolloutStatus.Evaluate(state.Deployment).Message)} " +
                "The rollback itself was applied; check Get-KfmApiRef and the pods, then decide (fail closed if unsafe).", _name);
        }
        finally
        {
            deadline.Cancel();
            await Task.WhenAll(Quietly(deploymentWatch), Quietly(podWatch)).ConfigureAwait(false);
        }
    }

    private async Task<V1Deployment> ListDeploymentAsync(CancellationToken token, CancellationToken userToken, TimeSpan timeout)
    {
        try
        {
            V1DeploymentList list = await _client.AppsV1.ListNamespacedDeploymentAsync(_namespace, fieldSelector: $"metadata.name={_name}", cancellationToken: token).ConfigureAwait(false);
            V1Deployment? deployment = list.Items.FirstOrDefault();
            if (deployment is null)
            {
                throw new KfmException("RolloutDeploymentGone", KfmErrorKind.ObjectNotFound, $"deployment \"{_name}\" not found in namespace {_namespace}.", _name);
            }
            // The list's resourceVersion is the point to watch from.
            deployment.Metadata.ResourceVersion = list.Metadata.ResourceVersion ?? deployment.Metadata.ResourceVersion;
            return deployment;
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested && !userToken.IsCancellationRequested)
        {
            throw new KfmException("RolloutWaitTimeout", KfmErrorKind.OperationTimeout,
                $"Timed out after {timeout.TotalSeconds:0}s listing deployment {_namespace}/{_name}: the apiserver is slow or unreachable.", _name);
        }
        catch (Exception ex) when (ex is not KfmException && ex is not OperationCanceledException)
        {
            throw KubernetesErrors.Wrap(ex, $"Listing deployment {_namespace}/{_name}", _name);
        }
    }

    private async Task WatchDeploymentAsync(WatchedState state, ChannelWriter<bool> changes, string resourceVersion, CancellationToken token)
    {
        string? from = resourceVersion;
        while (!token.IsCancellationRequested)
        {
            bool needRelist = false;
            try
            {
                var events = _client.AppsV1.WatchListNamespacedDeploymentAsync(_namespace, fieldSelector: $"metadata.name={_name}",
                    resourceVersion: from, timeoutSeconds: 300, allowWatchBookmarks: true, onError: _ => needRelist = true, cancellationToken: token);
                await foreach (var (type, deployment) in events.ConfigureAwait(false))
                {
                    if (type == WatchEventType.Error)
                    {
                        needRelist = true;
                        break;
                    }
                    from = deployment.Metadata?.ResourceVersion ?? from;
                    if (type == WatchEventType.Bookmark)
                    {
                        continue;
                    }
                    if (type == WatchEventType.Deleted)
                    {
                        state.Deleted = true;
                    }
                    else
                    {
                        state.Deployment = deployment;
                    }
                    changes.TryWrite(true);
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception)
            {
                // Dropped connection, 410 Gone or a reset: fall through and re-list.
                needRelist = true;
            }

            if (token.IsCancellationRequested)
            {
                return;
            }
            // A watch that ended (server timeout, dropped stream, too-old version) is resumed from a
            // fresh LIST, so nothing that happened in between is missed.
            Relists++;
            if (needRelist || from is null)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100), token).ConfigureAwait(false);
            }
            try
            {
                V1DeploymentList list = await _client.AppsV1.ListNamespacedDeploymentAsync(_namespace, fieldSelector: $"metadata.name={_name}", cancellationToken: token).ConfigureAwait(false);
                if (list.Items.FirstOrDefault() is { } fresh)
                {
                    state.Deployment = fresh;
                }
                else
                {
                    state.Deleted = true;
                }
                from = list.Metadata.ResourceVersion;
                changes.TryWrite(true);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception)
            {
                // The apiserver is briefly unavailable: keep trying until the deadline.
                await Task.Delay(TimeSpan.FromMilliseconds(250), token).ConfigureAwait(false);
            }
        }
    }

    private async Task WatchPodsAsync(WatchedState state, ChannelWriter<bool> changes, V1LabelSelector selector, CancellationToken token)
    {
        string labelSelector = LabelSelectors.ToQuery(selector);
        while (!token.IsCancellationRequested)
        {
            try
            {
                V1PodList list = await _client.CoreV1.ListNamespacedPodAsync(_namespace, labelSelector: labelSelector, cancellationToken: token).ConfigureAwait(false);
                state.ReplacePods(list.Items);
                changes.TryWrite(true);
                var events = _client.CoreV1.WatchListNamespacedPodAsync(_namespace, labelSelector: labelSelector,
                    resourceVersion: list.Metadata.ResourceVersion, timeoutSeconds: 300, cancellationToken: token);
                await foreach (var (type, pod) in events.ConfigureAwait(false))
                {
                    if (type == WatchEventType.Error)
                    {
                        break;
                    }
                    if (type == WatchEventType.Bookmark)
                    {
                        continue;
                    }
                    state.ApplyPod(type, pod);
                    changes.TryWrite(true);
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception)
            {
                // Re-list on the next round; pod failures are also caught by the progress deadline.
                try { await Task.Delay(TimeSpan.FromMilliseconds(250), token).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
            }
        }
    }

    private static async Task Quietly(Task task)
    {
        try { await task.ConfigureAwait(false); }
        catch (Exception) { /* the wait already has its answer */ }
    }

    private sealed class WatchedState
    {
        private readonly object _gate = new();
        private readonly Dictionary<string, V1Pod> _pods = new(StringComparer.Ordinal);
        private V1Deployment? _deployment;

        public V1Deployment? Deployment
        {
            get { lock (_gate) { return _deployment; } }
            set { lock (_gate) { _deployment = value; } }
        }

        public bool Deleted { get; set; }

        public void ReplacePods(IEnumerable<V1Pod> pods)
        {
            lock (_gate)
            {
                _pods.Clear();
                foreach (V1Pod pod in pods)
                {
                    _pods[pod.Metadata.Name] = pod;
                }
            }
        }

        public void ApplyPod(WatchEventType type, V1Pod pod)
        {
            lock (_gate)
            {
                if (type == WatchEventType.Deleted)
                {
                    _pods.Remove(pod.Metadata.Name);
                }
                else
                {
                    _pods[pod.Metadata.Name] = pod;
                }
            }
        }

        public IReadOnlyList<V1Pod> PodsOf(string podTemplateHash)
        {
            lock (_gate)
            {
                return _pods.Values.Where(p => p.Metadata.Labels?.TryGetValue("pod-template-hash", out string? hash) == true && hash == podTemplateHash).ToList();
            }
        }
    }
}
