using KfmRollback.Engine.Adapters.Kubernetes;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Rollback.Surfaces;

public enum ConfigObjectKind
{
    ConfigMap,
    Secret,
}

/// <summary>
/// A ConfigMap's or Secret's content as a comparison needs it: its content hash and, for a ConfigMap
/// only, its text data (a Secret's data never leaves <see cref="ConfigSnapshots"/>). For a snapshot,
/// <see cref="Name"/> is the snapshot object's name.
/// </summary>
public sealed record ConfigContent(ConfigObjectKind Kind, string Name, string Sha256, IReadOnlyDictionary<string, string>? ConfigMapData, IReadOnlyDictionary<string, byte[]>? ConfigMapBinary)
{
    /// <summary>The content hash with some ConfigMap keys left out (for a Secret, the plain hash).</summary>
    public string Sha256Without(IReadOnlyCollection<string> keys) =>
        keys.Count == 0 || Kind == ConfigObjectKind.Secret || ConfigMapData is null
            ? Sha256
            : ConfigSnapshots.Hash(ConfigMapData.Where(p => !keys.Contains(p.Key)), ConfigMapBinary?.Where(p => !keys.Contains(p.Key)));
}

/// <summary>One ConfigMap or Secret the API reads, by content hash only (never its values).</summary>
public sealed record ConfigObjectState(ConfigObjectKind Kind, string Name, string? ContentSha256, string? SnapshotName, string Action, string? SnapshotSha256 = null);

/// <summary>
/// Snapshots of the runtime configuration the API reads, kept inside the cluster next to it
/// (Secrets as Secrets, so their values never leave the cluster), labelled with the pod template
/// they ran with. `kubectl rollout undo` does not roll ConfigMaps or Secrets back
/// (kubernetes/kubernetes#22368); these snapshots let a rollback put back what a revision ran with
/// when a name was reused with changed content.
/// </summary>
public sealed class ConfigSnapshots
{
    public const string SnapshotOfLabel = "kfm.dev/snapshot-of";
    public const string KindLabel = "kfm.dev/snapshot-kind";
    public const string TemplatesAnnotation = "kfm.dev/pod-template-hashes";
    public const string ContentAnnotation = "kfm.dev/content-sha256";
    private readonly IKubernetes _client;
    private readonly string _namespace;

    public ConfigSnapshots(IKubernetes client, string @namespace)
    {
        _client = client;
        _namespace = @namespace;
    }

    /// <summary>Snapshots each named object as it is now, for pods of <paramref name="podTemplateHash"/>.</summary>
    public async Task<IReadOnlyList<ConfigObjectState>> TakeAsync(IEnumerable<(ConfigObjectKind Kind, string Name)> objects, string podTemplateHash, CancellationToken cancellationToken)
    {
        var states = new List<ConfigObjectState>();
        foreach (var (kind, name) in objects.Distinct())
        {
            Content? content = await ReadAsync(kind, name, cancellationToken).ConfigureAwait(false);
            if (content is null)
            {
                states.Add(new ConfigObjectState(kind, name, null, null, "missing"));
                continue;
            }
            string snapshotName = SnapshotName(kind, name, content.Sha256);
            await SaveSnapshotAsync(kind, name, snapshotName, content, podTemplateHash, cancellationToken).ConfigureAwait(false);
            states.Add(new ConfigObjectState(kind, name, content.Sha256, snapshotName, "snapshotted"));
        }
        return states;
    }

    /// <summary>
    /// What restoring the configuration of <paramref name="podTemplateHash"/> would do to each
    /// object: unchanged, restore (content differs from that template's snapshot), missing, or
    /// unknown (no snapshot for that template, so its content cannot be checked).
    /// </summary>
    public async Task<IReadOnlyList<ConfigObjectState>> PlanRestoreAsync(IEnumerable<(ConfigObjectKind Kind, string Name)> objects, string podTemplateHash, CancellationToken cancellationToken)
    {
        var plan = new List<ConfigObjectState>();
        foreach (var (kind, name) in objects.Distinct())
        {
            Content? current = await ReadAsync(kind, name, cancellationToken).ConfigureAwait(false);
            if (current is null)
            {
                plan.Add(new ConfigObjectState(kind, name, null, null, "missing"));
                continue;
            }
            (string SnapshotName, string Sha256)? snapshot = await FindSnapshotAsync(kind, name, podTemplateHash, cancellationToken).ConfigureAwait(false);
            plan.Add(snapshot is null
                ? new ConfigObjectState(kind, name, current.Sha256, null, "unknown")
                : new ConfigObjectState(kind, name, current.Sha256, snapshot.Value.SnapshotName, snapshot.Value.Sha256 == current.Sha256 ? "unchanged" : "restore", snapshot.Value.Sha256));
        }
        return plan;
    }

    /// <summary>Copies the snapshot's content back into the object, with a resourceVersion precondition.</summary>
    /// <param name="dryRun">Send the replace with dryRun=All: validated and admitted, nothing stored (the preflight).</param>
    public async Task RestoreAsync(ConfigObjectState state, CancellationToken cancellationToken, bool dryRun = false)
    {
        string? dryRunMode = dryRun ? "All" : null;
        try
        {
            if (state.Kind == ConfigObjectKind.ConfigMap)
            {
                V1ConfigMap snapshot = await _client.CoreV1.ReadNamespacedConfigMapAsync(state.SnapshotName, _namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
                EnsureIntact(state, snapshot.Metadata, Hash(snapshot.Data, snapshot.BinaryData));
                V1ConfigMap live = await _client.CoreV1.ReadNamespacedConfigMapAsync(state.Name, _namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
                live.Data = snapshot.Data;
                live.BinaryData = snapshot.BinaryData;
                await _client.CoreV1.ReplaceNamespacedConfigMapAsync(live, state.Name, _namespace, dryRun: dryRunMode, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            else
            {
                V1Secret snapshot = await _client.CoreV1.ReadNamespacedSecretAsync(state.SnapshotName, _namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
                EnsureIntact(state, snapshot.Metadata, Hash(null, snapshot.Data));
                V1Secret live = await _client.CoreV1.ReadNamespacedSecretAsync(state.Name, _namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
                live.Data = snapshot.Data;
                live.StringData = null;
                await _client.CoreV1.ReplaceNamespacedSecretAsync(live, state.Name, _namespace, dryRun: dryRunMode, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not KfmException)
        {
            // The wrapped message carries names and status only, never data.
            throw KubernetesErrors.Wrap(ex, $"Restoring {state.Kind.ToString().ToLowerInvariant()} {_namespace}/{state.Name} from {state.SnapshotName}", state.Name);
        }
    }

    /// <summary>
    /// The data about to be restored must hash to what the plan compared (and to its own annotation):
    /// a snapshot whose content-sha256 annotation was forged, or whose data changed since planning, is
    /// never copied into the live object.
    /// </summary>
    private void EnsureIntact(ConfigObjectState state, V1ObjectMeta snapshot, string actual)
    {
        string? annotated = snapshot.Annotations?.TryGetValue(ContentAnnotation, out string? a) == true ? a : null;
        if (actual != state.SnapshotSha256 || actual != annotated)
        {
            throw Tampered(state.Kind, state.Name, state.SnapshotName!, $"its data hashes to {actual}, but {(actual != annotated ? $"its {ContentAnnotation} annotation says {annotated ?? "nothing"}" : $"the plan compared {state.SnapshotSha256}")}");
        }
    }

    private KfmException Tampered(ConfigObjectKind kind, string name, string snapshot, string why) =>
        new("ConfigSnapshotTampered", KfmErrorKind.SecurityError,
            $"Snapshot {_namespace}/{snapshot} of {kind.ToString().ToLowerInvariant()} {name} was not restored: {why}. Someone changed or planted it; " +
            "nothing was written. Find out who (the audit log), delete the snapshot, and roll the configuration back by hand or from Git.", snapshot);

    /// <summary>The live object's content (hash; text data for a ConfigMap only), or null when it does not exist.</summary>
    public async Task<ConfigContent?> ReadLiveAsync(ConfigObjectKind kind, string name, CancellationToken cancellationToken)
    {
        Content? content = await ReadAsync(kind, name, cancellationToken).ConfigureAwait(false);
        return content is null ? null : new ConfigContent(kind, name, content.Sha256,
            kind == ConfigObjectKind.ConfigMap ? ReadOnly(content.Text) : null, kind == ConfigObjectKind.ConfigMap ? ReadOnly(content.Binary) : null);
    }

    /// <summary>The snapshot of <paramref name="name"/> taken for pods of <paramref name="podTemplateHash"/>, or null when none was taken.</summary>
    public async Task<ConfigContent?> FindSnapshotContentAsync(ConfigObjectKind kind, string name, string podTemplateHash, CancellationToken cancellationToken)
    {
        (string SnapshotName, string Sha256)? found = await FindSnapshotAsync(kind, name, podTemplateHash, cancellationToken).ConfigureAwait(false);
        if (found is null)
        {
            return null;
        }
        if (kind == ConfigObjectKind.Secret)
        {
            return new ConfigContent(kind, found.Value.SnapshotName, found.Value.Sha256, null, null);
        }
        V1ConfigMap? map = await TryReadMapAsync(found.Value.SnapshotName, cancellationToken).ConfigureAwait(false);
        return map is null ? null : new ConfigContent(kind, found.Value.SnapshotName, found.Value.Sha256, ReadOnly(map.Data), ReadOnly(map.BinaryData));
    }

    private static IReadOnlyDictionary<string, T> ReadOnly<T>(IDictionary<string, T>? data) =>
        data is null ? new Dictionary<string, T>() : new Dictionary<string, T>(data, StringComparer.Ordinal);

    private sealed record Content(IDictionary<string, string>? Text, IDictionary<string, byte[]>? Binary, string? SecretType, string Sha256);

    private async Task<Content?> ReadAsync(ConfigObjectKind kind, string name, CancellationToken cancellationToken)
    {
        try
        {
            if (kind == ConfigObjectKind.ConfigMap)
            {
                V1ConfigMap map = await _client.CoreV1.ReadNamespacedConfigMapAsync(name, _namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
                return new Content(map.Data, map.BinaryData, null, Hash(map.Data, map.BinaryData));
            }
            V1Secret secret = await _client.CoreV1.ReadNamespacedSecretAsync(name, _namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
            return new Content(null, secret.Data, secret.Type, Hash(null, secret.Data));
        }
        catch (Exception ex) when (KubernetesErrors.IsNotFound(ex))
        {
            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw KubernetesErrors.Wrap(ex, $"Reading {kind.ToString().ToLowerInvariant()} {_namespace}/{name}", name);
        }
    }

    private async Task SaveSnapshotAsync(ConfigObjectKind kind, string name, string snapshotName, Content content, string podTemplateHash, CancellationToken cancellationToken)
    {
        var labels = new Dictionary<string, string>
        {
            ["app.kubernetes.io/managed-by"] = "KfmRollback",
            [SnapshotOfLabel] = name,
            [KindLabel] = kind.ToString().ToLowerInvariant(),
        };
        try
        {
            if (kind == ConfigObjectKind.ConfigMap)
            {
                V1ConfigMap? existing = await TryReadMapAsync(snapshotName, cancellationToken).ConfigureAwait(false);
                if (existing is null)
                {
                    await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap
                    {
                        Metadata = new V1ObjectMeta { Name = snapshotName, NamespaceProperty = _namespace, Labels = labels, Annotations = Annotations(content.Sha256, podTemplateHash, null) },
                        Data = content.Text,
                        BinaryData = content.Binary,
                    }, _namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                else if (!Templates(existing.Metadata.Annotations).Contains(podTemplateHash))
                {
                    existing.Metadata.Annotations = Annotations(content.Sha256, podTemplateHash, existing.Metadata.Annotations);
                    await _client.CoreV1.ReplaceNamespacedConfigMapAsync(existing, snapshotName, _namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                return;
            }

            V1Secret? existingSecret = await TryReadSecretAsync(snapshotName, cancellationToken).ConfigureAwait(false);
            if (existingSecret is null)
            {
                await _client.CoreV1.CreateNamespacedSecretAsync(new V1Secret
                {
                    Metadata = new V1ObjectMeta { Name = snapshotName, NamespaceProperty = _namespace, Labels = labels, Annotations = Annotations(content.Sha256, podTemplateHash, null) },
                    Type = content.SecretType,
                    Data = content.Binary,
                }, _namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            else if (!Templates(existingSecret.Metadata.Annotations).Contains(podTemplateHash))
            {
                existingSecret.Metadata.Annotations = Annotations(content.Sha256, podTemplateHash, existingSecret.Metadata.Annotations);
                await _client.CoreV1.ReplaceNamespacedSecretAsync(existingSecret, snapshotName, _namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw KubernetesErrors.Wrap(ex, $"Snapshotting {kind.ToString().ToLowerInvariant()} {_namespace}/{name}", name);
        }
    }

    private async Task<(string, string)?> FindSnapshotAsync(ConfigObjectKind kind, string name, string podTemplateHash, CancellationToken cancellationToken)
    {
        string selector = $"{SnapshotOfLabel}={name},{KindLabel}={kind.ToString().ToLowerInvariant()}";
        try
        {
            // Each candidate with the hash of the data it holds, never the hash it claims.
            IEnumerable<(V1ObjectMeta Meta, string Sha256)> snapshots = kind == ConfigObjectKind.ConfigMap
                ? (await _client.CoreV1.ListNamespacedConfigMapAsync(_namespace, labelSelector: selector, cancellationToken: cancellationToken).ConfigureAwait(false)).Items.Select(m => (m.Metadata, Hash(m.Data, m.BinaryData)))
                : (await _client.CoreV1.ListNamespacedSecretAsync(_namespace, labelSelector: selector, cancellationToken: cancellationToken).ConfigureAwait(false)).Items.Select(s => (s.Metadata, Hash(null, s.Data)));
            (V1ObjectMeta Meta, string Sha256) match = snapshots.FirstOrDefault(m => Templates(m.Meta.Annotations).Contains(podTemplateHash));
            if (match.Meta is null)
            {
                return null;
            }
            string? annotated = match.Meta.Annotations.TryGetValue(ContentAnnotation, out string? a) ? a : null;
            if (annotated != match.Sha256)
            {
                throw Tampered(kind, name, match.Meta.Name, $"its data hashes to {match.Sha256}, but its {ContentAnnotation} annotation says {annotated ?? "nothing"}");
            }
            return (match.Meta.Name, match.Sha256);
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not KfmException)
        {
            throw KubernetesErrors.Wrap(ex, $"Listing snapshots of {kind.ToString().ToLowerInvariant()} {_namespace}/{name}", name);
        }
    }

    private async Task<V1ConfigMap?> TryReadMapAsync(string name, CancellationToken cancellationToken)
    {
        try { return await _client.CoreV1.ReadNamespacedConfigMapAsync(name, _namespace, cancellationToken: cancellationToken).ConfigureAwait(false); }
        catch (Exception ex) when (KubernetesErrors.IsNotFound(ex)) { return null; }
    }

    private async Task<V1Secret?> TryReadSecretAsync(string name, CancellationToken cancellationToken)
    {
        try { return await _client.CoreV1.ReadNamespacedSecretAsync(name, _namespace, cancellationToken: cancellationToken).ConfigureAwait(false); }
        catch (Exception ex) when (KubernetesErrors.IsNotFound(ex)) { return null; }
    }

    private static Dictionary<string, string> Annotations(string sha256, string podTemplateHash, IDictionary<string, string>? existing)
    {
        var annotations = new Dictionary<string, string>(existing ?? new Dictionary<string, string>());
        annotations[ContentAnnotation] = sha256;
        annotations[TemplatesAnnotation] = string.Join(",", Templates(existing).Append(podTemplateHash).Distinct());
        return annotations;
    }

    private static IEnumerable<string> Templates(IDictionary<string, string>? annotations) =>
        annotations is not null && annotations.TryGetValue(TemplatesAnnotation, out string? list)
            ? list.Split(',', StringSplitOptions.RemoveEmptyEntries)
            : Array.Empty<string>();

    /// <summary>Content-addressed, so the same content is stored once however often it is snapshotted.</summary>
    private static string SnapshotName(ConfigObjectKind kind, string name, string sha256)
    {
        string prefix = kind == ConfigObjectKind.ConfigMap ? "kfm-snap-cm-" : "kfm-snap-secret-";
        string suffix = "-" + sha256["sha256:".Length..][..12];
        string body = name.Length > 200 ? name[..200] : name;
        return prefix + body + suffix;
    }

    /// <summary>sha256 over RFC 8785 canonical JSON of the data, so key order never matters.</summary>
    internal static string Hash(IEnumerable<KeyValuePair<string, string>>? text, IEnumerable<KeyValuePair<string, byte[]>>? binary)
    {
        var node = new JsonObject
        {
            ["data"] = new JsonObject((text ?? new Dictionary<string, string>()).Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
            ["binary"] = new JsonObject((binary ?? new Dictionary<string, byte[]>()).Select(p => KeyValuePair.Create(p.Key, (JsonNode?)Convert.ToBase64String(p.Value)))),
        };
        return "sha256:" + Convert.ToHexString(SHA256.HashData(Jcs.Canonicalize(node))).ToLowerInvariant();
    }
}
