using KfmRollback.Engine.Adapters.Kubernetes;
using System.Globalization;
using System.Text;
using k8s;
using k8s.Models;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Adapters.Helm;

/// <summary>A release as read from its Secret, with what a conditional write of that Secret needs.</summary>
public sealed record StoredRelease(HelmRelease Release, string SecretName, string ResourceVersion)
{
    public int Version => Release.Version;
    public string? Status => Release.Status;
}

/// <summary>
/// Reads and writes helm v3 release Secrets exactly as helm's Secrets storage driver does
/// (pkg/storage/driver/secrets.go, pkg/storage/storage.go): Secret <c>sh.helm.release.v1.&lt;release&gt;.v&lt;N&gt;</c>
/// of type <c>helm.sh/release.v1</c>, data key <c>release</c>, labels <c>owner=helm</c>, <c>name</c>,
/// <c>status</c>, <c>version</c>, plus <c>createdAt</c> on create and <c>modifiedAt</c> on update.
/// Unlike helm, every update and delete carries the resourceVersion it was planned against, so a
/// concurrent helm or operator makes the write fail instead of being overwritten.
/// </summary>
public sealed class HelmReleaseStore
{
    public const string SecretType = "helm.sh/release.v1";
    public const string DataKey = "release";

    /// <summary>driver/util.go systemLabels.</summary>
    public static readonly IReadOnlySet<string> SystemLabels = new HashSet<string>(StringComparer.Ordinal) { "name", "owner", "status", "version", "createdAt", "modifiedAt" };

    private readonly IKubernetes _client;
    private readonly IClock _clock;

    public HelmReleaseStore(IKubernetes client, string @namespace, IClock? clock = null)
    {
        _client = client;
        Namespace = @namespace;
        _clock = clock ?? SystemClock.Instance;
    }

    public string Namespace { get; }

    /// <summary>storage.go makeKey.</summary>
    public static string SecretName(string release, int version) => $"sh.helm.release.v1.{release}.v{version}";

    /// <summary>Every stored revision of <paramref name="release"/>, oldest first (storage.go History: owner=helm,name=…).</summary>
    public async Task<IReadOnlyList<StoredRelease>> HistoryAsync(string release, CancellationToken cancellationToken)
    {
        V1SecretList list;
        try
        {
            list = await _client.CoreV1.ListNamespacedSecretAsync(Namespace, labelSelector: $"name={release},owner=helm", cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw KubernetesErrors.Wrap(ex, $"Listing the Secrets of Helm release {Namespace}/{release}", release);
        }
        return list.Items
            .Where(s => s.Type == SecretType && s.Data?.ContainsKey(DataKey) == true)
            .Select(Read)
            .OrderBy(r => r.Version)
            .ToList();
    }

    /// <summary>The history, refusing when the release has none (helm's "release: not found").</summary>
    public async Task<IReadOnlyList<StoredRelease>> RequireHistoryAsync(string release, CancellationToken cancellationToken)
    {
        IReadOnlyList<StoredRelease> history = await HistoryAsync(release, cancellationToken).ConfigureAwait(false);
        return history.Count > 0 ? history : throw new KfmException("HelmReleaseNotFound", KfmErrorKind.ObjectNotFound,
            $"Helm release \"{release}\" has no revisions in namespace {Namespace} (no Secret labelled owner=helm,name={release}). " +
            "Check helm.release and helm.namespace in the configuration, and 'helm list -n " + Namespace + "'.", release);
    }

    /// <summary>secrets.go Create: labels = custom labels + createdAt + helm's own.</summary>
    /// <param name="dryRun">Send it with dryRun=All (the preflight): admitted or refused, nothing stored.</param>
    public async Task<StoredRelease> CreateAsync(HelmRelease release, CancellationToken cancellationToken, bool dryRun = false)
    {
        var labels = new Dictionary<string, string>(release.CustomLabels, StringComparer.Ordinal) { ["createdAt"] = Now() };
        V1Secret created = await _client.CoreV1.CreateNamespacedSecretAsync(ToSecret(release, labels, resourceVersion: null), Namespace, dryRun: DryRun(dryRun), cancellationToken: cancellationToken).ConfigureAwait(false);
        return new StoredRelease(release, created.Metadata.Name, created.Metadata.ResourceVersion);
    }

    /// <summary>
    /// secrets.go Update: the whole Secret is replaced; labels = the release's labels as read + modifiedAt
    /// + helm's own. Conditional on <paramref name="stored"/>'s resourceVersion.
    /// </summary>
    public async Task<StoredRelease> UpdateAsync(StoredRelease stored, HelmRelease release, CancellationToken cancellationToken, bool dryRun = false)
    {
        var labels = new Dictionary<string, string>(release.SecretLabels.ToDictionary(), StringComparer.Ordinal) { ["modifiedAt"] = Now() };
        V1Secret updated = await _client.CoreV1.ReplaceNamespacedSecretAsync(ToSecret(release, labels, stored.ResourceVersion), stored.SecretName, Namespace, dryRun: DryRun(dryRun), cancellationToken: cancellationToken).ConfigureAwait(false);
        return new StoredRelease(new HelmRelease(release.Json, updated.Metadata.Labels.ToDictionary()), updated.Metadata.Name, updated.Metadata.ResourceVersion);
    }

    /// <summary>storage.go deleteReleaseVersion, conditional on the resourceVersion read.</summary>
    public Task DeleteAsync(StoredRelease stored, CancellationToken cancellationToken, bool dryRun = false) =>
        _client.CoreV1.DeleteNamespacedSecretAsync(stored.SecretName, Namespace,
            new V1DeleteOptions { Preconditions = new V1Preconditions { ResourceVersion = stored.ResourceVersion } }, dryRun: DryRun(dryRun), cancellationToken: cancellationToken);

    private static string? DryRun(bool dryRun) => dryRun ? "All" : null;

    /// <summary>secrets.go newSecretsObject.</summary>
    public static V1Secret ToSecret(HelmRelease release, IReadOnlyDictionary<string, string> labels, string? resourceVersion)
    {
        var all = new Dictionary<string, string>(labels.ToDictionary(), StringComparer.Ordinal)
        {
            ["name"] = release.Name,
            ["owner"] = "helm",
            ["status"] = release.Status ?? "unknown",
            ["version"] = release.Version.ToString(CultureInfo.InvariantCulture),
        };
        return new V1Secret
        {
            ApiVersion = "v1",
            Kind = "Secret",
            Metadata = new V1ObjectMeta { Name = SecretName(release.Name, release.Version), Labels = all, ResourceVersion = resourceVersion },
            Type = SecretType,
            Data = new Dictionary<string, byte[]> { [DataKey] = Encoding.ASCII.GetBytes(HelmReleaseCodec.Encode(release.Json)) },
        };
    }

    private static StoredRelease Read(V1Secret secret)
    {
        string data = Encoding.ASCII.GetString(secret.Data[DataKey]);
        var labels = (IReadOnlyDictionary<string, string>?)secret.Metadata.Labels?.ToDictionary() ?? new Dictionary<string, string>();
        return new StoredRelease(new HelmRelease(HelmReleaseCodec.Decode(data, secret.Metadata.Name), labels), secret.Metadata.Name, secret.Metadata.ResourceVersion);
    }

    private string Now() => _clock.UtcNow.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
}
