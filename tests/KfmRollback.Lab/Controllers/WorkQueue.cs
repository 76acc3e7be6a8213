namespace KfmRollback.Lab.Controllers;

/// <summary>
/// A controller work queue after client-go's workqueue (a FIFO with a dirty set and a processing set, plus the
/// delaying and rate-limiting layers): a key added while queued is queued once; a key added while a worker
/// syncs it is handed out again only after that worker calls <see cref="Done"/>, so no two workers ever sync
/// the same key at once, and no change made during a sync is lost. Delays run on the lab's simulated clock
/// (pod start, termination grace, minReadySeconds, progress deadlines), so TimeScale and /lab/advance apply.
/// </summary>
public sealed class WorkQueue<T>(Func<DateTimeOffset> now) where T : notnull
{
    readonly object _lock = new();
    readonly Queue<T> _queue = new();
    readonly HashSet<T> _dirty = new();
    readonly HashSet<T> _processing = new();
    readonly PriorityQueue<T, DateTimeOffset> _waiting = new();
    readonly Dictionary<T, DateTimeOffset> _waitingDue = new();
    readonly Dictionary<T, int> _failures = new();
    readonly SemaphoreSlim _signal = new(0);

    /// <summary>First retry of a failed sync (simulated seconds); doubles per failure, up to <see cref="MaxRetryDelaySeconds"/>.</summary>
    public double BaseRetryDelaySeconds { get; init; } = 0.005;
    public double MaxRetryDelaySeconds { get; init; } = 10;

    /// <summary>Keys queued and not yet handed out (a key being synced and marked again counts once).</summary>
    public int Count { get { lock (_lock) return _dirty.Count; } }

    public void Add(T key)
    {
        lock (_lock)
        {
            if (!_dirty.Add(key)) return;
            if (_processing.Contains(key)) return;   // Done queues it again
            _queue.Enqueue(key);
        }
        Wake();
    }

    /// <summary>Adds <paramref name="key"/> once the simulated clock reaches <paramref name="due"/> (the earliest due time wins).</summary>
    public void AddAt(T key, DateTimeOffset due)
    {
        if (due <= now()) { Add(key); return; }
        lock (_lock)
        {
            if (_waitingDue.TryGetValue(key, out var have) && have <= due) return;
            _waitingDue[key] = due;
            _waiting.Enqueue(key, due);
        }
    }

    /// <summary>Adds a key whose sync failed, after a delay that doubles with each consecutive failure.</summary>
    public void AddRateLimited(T key)
    {
        int n;
        lock (_lock) { n = _failures.GetValueOrDefault(key); _failures[key] = n + 1; }
        var delay = Math.Min(MaxRetryDelaySeconds, BaseRetryDelaySeconds * Math.Pow(2, Math.Min(n, 30)));
        AddAt(key, now().AddSeconds(delay));
    }

    /// <summary>Forgets a key's failures (its sync succeeded).</summary>
    public void Forget(T key) { lock (_lock) _failures.Remove(key); }

    public int Failures(T key) { lock (_lock) return _failures.GetValueOrDefault(key); }

    /// <summary>Moves keys whose simulated due time has come into the queue.</summary>
    public void PromoteDue()
    {
        var t = now();
        List<T>? due = null;
        lock (_lock)
            while (_waiting.TryPeek(out var key, out var at) && at <= t)
            {
                _waiting.Dequeue();
                if (_waitingDue.TryGetValue(key, out var want) && want == at) { _waitingDue.Remove(key); (due ??= []).Add(key); }
            }
        if (due != null) foreach (var k in due) Add(k);
    }

    /// <summary>Hands out the next key and marks it processing (null when none is queued).</summary>
    public bool TryGet(out T key)
    {
        lock (_lock)
            while (_queue.TryDequeue(out key!))
            {
                // Claimed by a synchronous pass (TryClaim) while queued: it stays dirty and Done queues it again.
                if (_processing.Contains(key)) continue;
                _dirty.Remove(key);
                _processing.Add(key);
                return true;
            }
        key = default!;
        return false;
    }

    /// <summary>Waits (real time) until a key may be queued or <paramref name="wait"/> passes.</summary>
    public async Task WaitAsync(TimeSpan wait, CancellationToken ct)
    {
        try { await _signal.WaitAsync(wait, ct); } catch (OperationCanceledException) { }
    }

    /// <summary>
    /// For a synchronous pass outside the workers: claims <paramref name="key"/> as processing unless a worker
    /// is syncing it (then it is marked dirty, so that worker's Done queues it once more, and false is returned).
    /// </summary>
    public bool TryClaim(T key)
    {
        lock (_lock)
        {
            if (_processing.Contains(key)) { _dirty.Add(key); return false; }
            _processing.Add(key);
            return true;
        }
    }

    /// <summary>The sync of <paramref name="key"/> is over: if it changed meanwhile, it is queued again.</summary>
    public void Done(T key)
    {
        bool requeued;
        lock (_lock)
        {
            _processing.Remove(key);
            requeued = _dirty.Contains(key);
            if (requeued) _queue.Enqueue(key);
        }
        if (requeued) Wake();
    }

    void Wake() { if (_signal.CurrentCount < 64) _signal.Release(); }
}
