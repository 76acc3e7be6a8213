using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace KfmRollback.Lab.Api;

/// <summary>A change; the object is kept serialised so each watcher parses its own copy (JsonNode is not thread-safe).</summary>
public sealed record WatchEvent(string Type, ResourceType Rt, string Ns, string Name, long Rv, string Json)
{
    public WatchEvent(string type, ResourceType rt, string ns, string name, long rv, JsonObject obj) : this(type, rt, ns, name, rv, obj.ToJsonString()) { }
    public JsonObject Object => J.Parse(Json);
}

/// <summary>
/// In-memory object store with one global, monotonically increasing resourceVersion and an
/// event log for watches (compacted when it grows, or on demand).
/// </summary>
public sealed class Store(SimClock clock)
{
    readonly object _lock = new();
    long _rv = 1000;
    readonly Dictionary<string, SortedDictionary<string, JsonObject>> _objects = new();
    /// <summary>Per resource type and namespace, its objects by name: a namespace's list (a controller's, kubectl -n) reads only that namespace.</summary>
    readonly Dictionary<string, Dictionary<string, SortedDictionary<string, JsonObject>>> _byNamespace = new();
    /// <summary>Uids of the stored objects (owner lookups of the garbage collector).</summary>
    readonly HashSet<string> _uids = new(StringComparer.Ordinal);
    readonly List<WatchEvent> _log = new();
    long _compactedRv = 1000;
    /// <summary>Watch subscriptions with the resource type and namespace (null: all) each one wants.</summary>
    readonly List<(ResourceType rt, string? ns, Channel<WatchEvent> ch)> _subs = new();
    const int MaxLog = 20000;

    public SimClock Clock => clock;
    /// <summary>Raised (outside the lock) after every committed change.</summary>
    public event Action? Changed;
    /// <summary>
    /// Raised under the store lock for every committed change, in resourceVersion order, with the event type
    /// (ADDED, MODIFIED, DELETED) and the stored object: the controllers' informer feed. A handler must be quick,
    /// must not modify the object and must not write to the store.
    /// </summary>
    public event Action<string, ResourceType, JsonObject>? Written;

    /// <summary>Runs a read-modify-write under the store lock (the lock is re-entrant).</summary>
    public T WithLock<T>(Func<T> f) { lock (_lock) return f(); }

    public long CurrentRv { get { lock (_lock) return _rv; } }
    public long CompactedRv { get { lock (_lock) return _compactedRv; } }

    SortedDictionary<string, JsonObject> Bucket(ResourceType rt)
    {
        if (!_objects.TryGetValue(rt.Key, out var b)) _objects[rt.Key] = b = new(StringComparer.Ordinal);
        return b;
    }
    static string K(string ns, string name) => ns + "/" + name;

    void Put(ResourceType rt, string ns, string name, JsonObject o)
    {
        Bucket(rt)[K(ns, name)] = o;
        if (!_byNamespace.TryGetValue(rt.Key, out var byNs)) _byNamespace[rt.Key] = byNs = new(StringComparer.Ordinal);
        if (!byNs.TryGetValue(ns, out var inNs)) byNs[ns] = inNs = new(StringComparer.Ordinal);
        inNs[name] = o;
        if (o.Uid() is { Length: > 0 } uid) _uids.Add(uid);
    }

    void Remove(ResourceType rt, string ns, string name)
    {
        if (Bucket(rt).Remove(K(ns, name), out var o) && o.Uid() is { Length: > 0 } uid) _uids.Remove(uid);
        if (_byNamespace.TryGetValue(rt.Key, out var byNs) && byNs.TryGetValue(ns, out var inNs) && inNs.Remove(name) && inNs.Count == 0) byNs.Remove(ns);
    }

    public JsonObject? Get(ResourceType rt, string? ns, string name)
    {
        lock (_lock) return Bucket(rt).TryGetValue(K(rt.Namespaced ? ns ?? "" : "", name), out var o) ? o.Clone() : null;
    }

    public List<JsonObject> List(ResourceType rt, string? ns = null)
    {
        lock (_lock) return ListNoLock(rt, ns).Select(o => o.Clone()).ToList();
    }

    public (List<JsonObject> items, long rv) ListWithRv(ResourceType rt, string? ns)
    {
        lock (_lock) return (ListNoLock(rt, ns).Select(o => o.Clone()).ToList(), _rv);
    }

    /// <summary>The objects of one type (in one namespace) that <paramref name="match"/> accepts; it sees the stored objects, so it must not change them.</summary>
    public List<JsonObject> List(ResourceType rt, string? ns, Func<JsonObject, bool> match)
    {
        lock (_lock) return ListNoLock(rt, ns).Where(match).Select(o => o.Clone()).ToList();
    }

    IEnumerable<JsonObject> ListNoLock(ResourceType rt, string? ns)
    {
        if (string.IsNullOrEmpty(ns) || !rt.Namespaced) return Bucket(rt).Values;
        return _byNamespace.TryGetValue(rt.Key, out var byNs) && byNs.TryGetValue(ns, out var inNs) ? inNs.Values : [];
    }

    /// <summary>Objects with owner references none of whose owners exists any more (what the garbage collector deletes).</summary>
    public List<(ResourceType rt, JsonObject obj)> Orphans()
    {
        var orphans = new List<(ResourceType, JsonObject)>();
        lock (_lock)
            foreach (var rt in Resources.All)
                foreach (var o in Bucket(rt).Values)
                    if (o.At("metadata.ownerReferences") is JsonArray { Count: > 0 } refs && refs.All(r => !_uids.Contains(r.Str("uid") ?? "")))
                        orphans.Add((rt, o.Clone()));
        return orphans;
    }

    public JsonObject? FindByUid(string uid)
    {
        lock (_lock)
            foreach (var b in _objects.Values)
                foreach (var o in b.Values)
                    if (o.Uid() == uid) return o.Clone();
        return null;
    }

    public bool UidExists(string uid)
    {
        lock (_lock) return _uids.Contains(uid);
    }

    void Emit(string type, ResourceType rt, JsonObject obj)
    {
        var ev = new WatchEvent(type, rt, obj.Ns(), obj.Name(), _rv, obj);
        _log.Add(ev);
        if (_log.Count > MaxLog)
        {
            var cut = _log.Count - MaxLog / 2;
            _compactedRv = _log[cut - 1].Rv;
            _log.RemoveRange(0, cut);
        }
        // Only to the watches of this type and namespace: a watch is not woken by every change of the cluster.
        foreach (var (srt, sns, ch) in _subs)
            if (srt == rt && (string.IsNullOrEmpty(sns) || sns == ev.Ns)) ch.Writer.TryWrite(ev);
        Written?.Invoke(type, rt, obj);
    }

    void Notify() => Changed?.Invoke();

    public JsonObject Create(ResourceType rt, JsonObject obj, bool dryRun = false)
    {
        JsonObject result;
        lock (_lock)
        {
            var meta = obj.Meta();
            var name = obj.Name();
            var ns = rt.Namespaced ? obj.Ns() : "";
            if (string.IsNullOrEmpty(name)) throw new ApiException(422, "Invalid", $"{rt.Kind} \"\" is invalid: metadata.name: Required value: name or generateName is required");
            if (rt.Namespaced)
            {
                if (string.IsNullOrEmpty(ns)) throw ApiException.BadRequest("the namespace of the provided object does not match the namespace sent on the request");
                if (!Bucket(Resources.Namespaces).ContainsKey(K("", ns)))
                    throw ApiException.NotFound(Resources.Namespaces, ns);
            }
            else meta.Remove("namespace");
            var b = Bucket(rt);
            if (b.ContainsKey(K(ns, name))) throw ApiException.AlreadyExists(rt, name);
            meta["uid"] = Guid.NewGuid().ToString();
            meta["creationTimestamp"] = J.Time(clock.Now);
            if (obj["spec"] != null || rt.IsCustom || rt == Resources.Deployments || rt == Resources.ReplicaSets) meta["generation"] = 1;
            else meta.Remove("generation");
            meta.Remove("deletionTimestamp");
            obj["apiVersion"] = rt.GroupVersion;
            obj["kind"] = rt.Kind;
            // The ResourceQuota admission plugin: a pod that would exceed a quota of its namespace is refused (dry runs too).
            if (rt == Resources.Pods) QuotaAdmission.Admit(obj, ListNoLock(Resources.ResourceQuotas, ns), ListNoLock(Resources.Pods, ns));
            // A dry-run create is never stored, so etcd assigns it no resourceVersion (the apiserver answers without one).
            if (dryRun) { meta.Remove("resourceVersion"); return obj.Clone(); }
            _rv++;
            meta["resourceVersion"] = _rv.ToString();
            Put(rt, ns, name, obj.Clone());
            Emit("ADDED", rt, obj);
            result = obj.Clone();
        }
        Notify();
        return result;
    }

    /// <summary>
    /// Replaces an object. A non-empty metadata.resourceVersion must match (else 409 Conflict).
    /// For resources with a status subresource, a main-resource write keeps the stored status and
    /// a status write keeps everything but status.
    /// </summary>
    public JsonObject Update(ResourceType rt, JsonObject obj, bool dryRun = false, bool statusOnly = false)
    {
        JsonObject result;
        lock (_lock)
        {
            var name = obj.Name();
            var ns = rt.Namespaced ? obj.Ns() : "";
            var b = Bucket(rt);
            if (!b.TryGetValue(K(ns, name), out var old)) throw ApiException.NotFound(rt, name);
            var rv = obj.Str("metadata.resourceVersion");
            if (!string.IsNullOrEmpty(rv) && rv != old.Str("metadata.resourceVersion")) throw ApiException.Conflict(rt, name);
            JsonObject next;
            if (statusOnly)
            {
                next = old.Clone();
                next["status"] = obj["status"]?.DeepClone();
            }
            else
            {
                next = obj.Clone();
                if (rt.HasStatus) next["status"] = old["status"]?.DeepClone();
                var nm = next.Meta();
                var om = old.Meta();
                foreach (var keep in new[] { "uid", "creationTimestamp", "generation", "deletionTimestamp" })
                {
                    if (om[keep] != null) nm[keep] = om[keep]!.DeepClone(); else nm.Remove(keep);
                }
                nm["name"] = name;
                if (rt.Namespaced) nm["namespace"] = ns;
                next["apiVersion"] = rt.GroupVersion;
                next["kind"] = rt.Kind;
                if (om["generation"] != null && SpecChanged(old, next))
                    nm["generation"] = (old.Long("metadata.generation") ?? 1) + 1;
            }
            next.Meta()["resourceVersion"] = old.Str("metadata.resourceVersion");
            if (J.Same(next, old)) return old.Clone();
            if (dryRun) return next;
            _rv++;
            next.Meta()["resourceVersion"] = _rv.ToString();
            Put(rt, ns, name, next.Clone());
            Emit("MODIFIED", rt, next);
            result = next;
        }
        Notify();
        return result;
    }

    static bool SpecChanged(JsonObject a, JsonObject b)
    {
        var x = a.Clone(); var y = b.Clone();
        foreach (var o in new[] { x, y }) { o.Remove("metadata"); o.Remove("status"); }
        return !J.Same(x, y);
    }

    /// <summary>Read-modify-write under the store lock; no write when nothing changed.</summary>
    public JsonObject? Mutate(ResourceType rt, string? ns, string name, Func<JsonObject, bool> change, bool statusOnly = false)
    {
        lock (_lock)
        {
            var cur = Get(rt, ns, name);
            if (cur == null) return null;
            if (!change(cur)) return cur;
            return Update(rt, cur, false, statusOnly);
        }
    }

    public JsonObject Delete(ResourceType rt, string? ns, string name, bool dryRun = false)
    {
        JsonObject old;
        var cascade = new List<(ResourceType, string, string)>();
        lock (_lock)
        {
            var b = Bucket(rt);
            var key = K(rt.Namespaced ? ns ?? "" : "", name);
            if (!b.TryGetValue(key, out old!)) throw ApiException.NotFound(rt, name);
            if (dryRun) return old.Clone();
            Remove(rt, rt.Namespaced ? ns ?? "" : "", name);
            _rv++;
            old = old.Clone();
            old.Meta()["resourceVersion"] = _rv.ToString();
            Emit("DELETED", rt, old);
            if (rt == Resources.Namespaces)
                foreach (var t in Resources.All.Where(t => t.Namespaced))
                    foreach (var o in ListNoLock(t, name).ToList())
                        cascade.Add((t, name, o.Name()));
        }
        foreach (var (t, n, nm) in cascade) { try { Delete(t, n, nm); } catch (ApiException) { } }
        Notify();
        return old;
    }

    /// <summary>Graceful deletion: sets deletionTimestamp (= now + grace) once; the kubelet stand-in removes it later.</summary>
    public JsonObject MarkDeleting(ResourceType rt, string? ns, string name, double graceSeconds, bool dryRun = false)
    {
        JsonObject result;
        lock (_lock)
        {
            var b = Bucket(rt);
            var key = K(rt.Namespaced ? ns ?? "" : "", name);
            if (!b.TryGetValue(key, out var old)) throw ApiException.NotFound(rt, name);
            if (old.At("metadata.deletionTimestamp") != null || dryRun) return old.Clone();
            var next = old.Clone();
            next.Meta()["deletionTimestamp"] = J.Time(clock.Now.AddSeconds(graceSeconds));
            next.Meta()["deletionGracePeriodSeconds"] = (long)Math.Ceiling(graceSeconds);
            _rv++;
            next.Meta()["resourceVersion"] = _rv.ToString();
            Put(rt, rt.Namespaced ? ns ?? "" : "", name, next.Clone());
            Emit("MODIFIED", rt, next);
            result = next;
        }
        Notify();
        return result;
    }

    /// <summary>Drops the whole event log: watches from any older resourceVersion get 410 Gone.</summary>
    public void Compact()
    {
        lock (_lock) { _log.Clear(); _compactedRv = _rv; }
    }

    /// <summary>
    /// Subscribes to events of one resource type. With fromRv null/0, replays the current objects as
    /// ADDED; otherwise replays logged events after fromRv, or throws 410 Expired if compacted.
    /// </summary>
    public (List<WatchEvent> replay, ChannelReader<WatchEvent> live, IDisposable sub) Subscribe(ResourceType rt, string? ns, long? fromRv)
    {
        lock (_lock)
        {
            var replay = new List<WatchEvent>();
            if (fromRv is null or 0)
            {
                foreach (var o in ListNoLock(rt, ns))
                    replay.Add(new WatchEvent("ADDED", rt, o.Ns(), o.Name(), long.Parse(o.Str("metadata.resourceVersion")!), o.Clone()));
            }
            else
            {
                if (fromRv < _compactedRv)
                    throw new ApiException(410, "Expired", $"too old resource version: {fromRv} ({_compactedRv})");
                replay.AddRange(_log.Where(e => e.Rv > fromRv && e.Rt == rt && (string.IsNullOrEmpty(ns) || e.Ns == ns)));
            }
            var ch = Channel.CreateUnbounded<WatchEvent>();
            _subs.Add((rt, rt.Namespaced ? ns : null, ch));
            return (replay, ch.Reader, new Unsub(this, ch));
        }
    }

    sealed class Unsub(Store s, Channel<WatchEvent> ch) : IDisposable
    {
        public void Dispose() { lock (s._lock) s._subs.RemoveAll(x => x.ch == ch); ch.Writer.TryComplete(); }
    }
}
