using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Adapters.Kubernetes;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Adapters.Journal;

/// <summary>
/// Journal streams on the cluster the environment already reaches: one ConfigMap per stream in a
/// configured namespace, its records as NDJSON under one key, appended by a replace that names the
/// resourceVersion read (the apiserver's optimistic concurrency), so two operators or an Azure
/// Automation job and an operator on different machines see one history and never overwrite each
/// other. A replace is all-or-nothing, so a stream has no torn tail; a record that is not a JSON
/// object was edited by hand and stops the read. RBAC: get, list, create, update on configmaps in
/// that namespace (docs/rbac.md).
/// </summary>
public sealed partial class ConfigMapJournal : IJournalBackend
{
    public const string RecordsKey = "records.ndjson";
    public const string ManagedByLabel = "app.kubernetes.io/managed-by";
    public const string ManagedBy = "kfm-rollback";
    public const string KindLabel = "kfm.dev/journal-kind";
    public const string StreamAnnotation = "kfm.dev/journal-stream";

    // Appends without a version to match retry on a concurrent writer's append; each retry re-reads.
    private const int UnconditionalAttempts = 8;

    private readonly IKubernetes _client;
    private readonly string _namespace;
    private readonly string _cluster;

    /// <param name="cluster">For messages: which cluster (its context or server).</param>
    public ConfigMapJournal(IKubernetes client, string @namespace, string cluster)
    {
        _client = client;
        _namespace = @namespace;
        _cluster = cluster;
    }

    public string Description => $"ConfigMaps in namespace {_namespace} of {_cluster}";

    public string Locate(string stream) => $"configmap {_namespace}/{ObjectName(stream)} ({_cluster})";

    /// <summary>
    /// The ConfigMap holding <paramref name="stream"/>: <c>kfm-journal-&lt;kind&gt;-&lt;name&gt;-&lt;hash&gt;</c>,
    /// lower case as object names must be; the hash keeps names apart that differ only in case or in
    /// characters a name cannot hold, and the stream's own name is kept in an annotation.
    /// </summary>
    public static string ObjectName(string stream)
    {
        (string kind, string name) = JournalStreams.Parse(stream);
        string readable = NotInName().Replace(name.ToLowerInvariant(), "-").Trim('-', '.');
        if (readable.Length > 100) readable = readable[..100].Trim('-', '.');
        string hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(stream)))[..10].ToLowerInvariant();
        return $"kfm-journal-{kind}-{(readable.Length == 0 ? "x" : readable)}-{hash}";
    }

    public JournalRead Read(string stream)
    {
        V1ConfigMap? map = Get(stream);
        return map is null ? JournalRead.Empty : new JournalRead(Parse(stream, map), map.Metadata.ResourceVersion, Array.Empty<string>());
    }

    public JournalAppend Append(string stream, IReadOnlyList<JsonObject> records, string? expectedVersion = null)
    {
        string lines = string.Concat(records.Select(r => r.ToJsonString() + "\n"));
        for (int attempt = 1; ; attempt++)
        {
            V1ConfigMap? map = Get(stream);
            string actual = map?.Metadata.ResourceVersion ?? JournalVersions.Empty;
            if (expectedVersion is not null && expectedVersion != actual)
            {
                throw new JournalConflictException(stream, expectedVersion, actual);
            }
            try
            {
                V1ConfigMap written = map is null ? Create(stream, lines) : Replace(map, lines);
                return new JournalAppend(written.Metadata.ResourceVersion, Array.Empty<string>());
            }
            catch (Exception e) when (KubernetesErrors.IsConflict(e))
            {
                // Another writer got there first (a create raced to AlreadyExists, or a replace to a stale resourceVersion).
                if (expectedVersion is not null)
                {
                    throw new JournalConflictException(stream, expectedVersion, "newer");
                }
                if (attempt >= UnconditionalAttempts)
                {
                    throw new JournalWriteException(Locate(stream), new IOException($"{UnconditionalAttempts} concurrent writers won the race in a row; nothing was written."));
                }
                Thread.Sleep(Random.Shared.Next(20, 60 * attempt));
            }
        }
    }

    public IReadOnlyList<string> List(string kind)
    {
        V1ConfigMapList list = Call(() => _client.CoreV1.ListNamespacedConfigMapAsync(_namespace, labelSelector: $"{ManagedByLabel}={ManagedBy},{KindLabel}={kind}"), $"list journal streams of kind {kind}");
        return list.Items
            .Select(m => m.Metadata.Annotations is { } a && a.TryGetValue(StreamAnnotation, out string? s) ? s : null)
            .OfType<string>()
            .Where(s => s.StartsWith(kind + "/", StringComparison.Ordinal))
            .Select(s => JournalStreams.Parse(s).Name)
            .ToList();
    }

    private V1ConfigMap? Get(string stream)
    {
        string name = ObjectName(stream);
        try
        {
            return _client.CoreV1.ReadNamespacedConfigMapAsync(name, _namespace).GetAwaiter().GetResult();
        }
        catch (Exception e) when (KubernetesErrors.IsNotFound(e))
        {
            return null;
        }
        catch (Exception e) when (e is k8s.Autorest.HttpOperationException or HttpRequestException)
        {
            throw Unavailable(e, $"read journal stream {stream} ({Locate(stream)})");
        }
    }

    private V1ConfigMap Create(string stream, string lines)
    {
        (string kind, _) = JournalStreams.Parse(stream);
        var map = new V1ConfigMap
        {
            Metadata = new V1ObjectMeta
            {
                Name = ObjectName(stream),
                NamespaceProperty = _namespace,
                Labels = new Dictionary<string, string> { [ManagedByLabel] = ManagedBy, [KindLabel] = kind },
                Annotations = new Dictionary<string, string> { [StreamAnnotation] = stream },
            },
            Data = new Dictionary<string, string> { [RecordsKey] = lines },
        };
        return Write(stream, () => _client.CoreV1.CreateNamespacedConfigMapAsync(map, _namespace));
    }

    private V1ConfigMap Replace(V1ConfigMap map, string lines)
    {
        string stream = map.Metadata.Annotations?.TryGetValue(StreamAnnotation, out string? s) == true ? s! : map.Metadata.Name;
        map.Data ??= new Dictionary<string, string>();
        map.Data[RecordsKey] = (map.Data.TryGetValue(RecordsKey, out string? existing) ? existing : string.Empty) + lines;
        // metadata.resourceVersion stays as read: the apiserver refuses the replace with 409 if anyone wrote since.
        return Write(stream, () => _client.CoreV1.ReplaceNamespacedConfigMapAsync(map, map.Metadata.Name, _namespace));
    }

    private V1ConfigMap Write(string stream, Func<Task<V1ConfigMap>> call)
    {
        try
        {
            return call().GetAwaiter().GetResult();
        }
        catch (Exception e) when (KubernetesErrors.IsConflict(e))
        {
            throw;
        }
        catch (Exception e) when (KubernetesErrors.Status(e) is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized)
        {
            throw new JournalWriteException(Locate(stream), new UnauthorizedAccessException(
                $"the cluster refused the write ({KubernetesErrors.StatusMessage(e)}); grant create and update on configmaps in namespace {_namespace} (docs/rbac.md)"));
        }
        catch (Exception e) when (KubernetesErrors.Status(e) is HttpStatusCode.RequestEntityTooLarge || KubernetesErrors.IsInvalid(e))
        {
            throw new JournalWriteException(Locate(stream), new IOException(
                $"the apiserver refused the stream's object ({KubernetesErrors.StatusMessage(e)}); a ConfigMap holds at most 1 MiB, so this incident's journal is full: record further steps in a new incident"));
        }
        catch (Exception e) when (e is k8s.Autorest.HttpOperationException or HttpRequestException)
        {
            throw new JournalWriteException(Locate(stream), new IOException(KubernetesErrors.StatusMessage(e)));
        }
    }

    private T Call<T>(Func<Task<T>> call, string what)
    {
        try
        {
            return call().GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is k8s.Autorest.HttpOperationException or HttpRequestException)
        {
            throw Unavailable(e, what);
        }
    }

    private KfmException Unavailable(Exception e, string what) =>
        KubernetesErrors.Status(e) is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized
            ? new KfmException("JournalAccessDenied", KfmErrorKind.PermissionDenied,
                $"Cannot {what}: the cluster refused ({KubernetesErrors.StatusMessage(e)}). Grant get, list, create and update on configmaps in namespace {_namespace} (docs/rbac.md).", _namespace, e)
            : new KfmException("JournalUnavailable", KfmErrorKind.ConnectionError,
                $"Cannot {what}: {KubernetesErrors.StatusMessage(e)}. Check the cluster connection of the environment that holds the journal (incidents.backend), then rerun.", _namespace, e);

    private List<JsonObject> Parse(string stream, V1ConfigMap map)
    {
        var records = new List<JsonObject>();
        string text = map.Data is { } data && data.TryGetValue(RecordsKey, out string? value) ? value : string.Empty;
        int number = 0;
        foreach (string line in text.Split('\n'))
        {
            if (line.Length == 0) continue;
            number++;
            JsonObject? record;
            string detail;
            try
            {
                record = JsonNode.Parse(line) as JsonObject;
                detail = "not an object";
            }
            catch (JsonException ex)
            {
                record = null;
                detail = $"invalid JSON at byte {ex.BytePositionInLine}";
            }
            if (record is null)
            {
                throw new JournalCorruptException(stream, Locate(stream), number, detail);
            }
            records.Add(record);
        }
        return records;
    }

    [GeneratedRegex("[^a-z0-9.-]+", RegexOptions.CultureInvariant)]
    private static partial Regex NotInName();
}
