using System.Collections.Concurrent;
using k8s;
using k8s.KubeConfigModels;
using KfmRollback.Engine.Configuration;
using KfmRollback.Engine.Core;

namespace KfmRollback.Engine.Adapters.Kubernetes;

/// <summary>
/// Builds KubernetesClient clients from an environment's cluster settings: kubeconfig path and
/// context (default $KUBECONFIG, then ~/.kube/config), the in-cluster service account, or a bearer
/// token from an environment variable or file. A client is created on first use and reused for
/// the same kubeconfig file, context and credentials, so several environments and clusters can be
/// used in one session without reconnecting each time.
/// </summary>
public static class ClusterClientFactory
{
    private static readonly ConcurrentDictionary<string, IKubernetes> s_clients = new(StringComparer.Ordinal);
    // The client a cluster section resolved to, while its kubeconfig file (path, size, write time), the
    // files that kubeconfig names by path (client certificate and key, CA) and the token are unchanged: a
    // fleet asks for its client several times per environment, and parsing the kubeconfig and loading its
    // certificates each time cost about 1.5 ms of CPU per ask.
    private static readonly ConcurrentDictionary<string, Resolved> s_resolved = new(StringComparer.Ordinal);

    private sealed record Resolved(IKubernetes Client, IReadOnlyList<FileStamp> Files);

    /// <summary>A file as last seen: its full path, size and last write (size -1 when it does not exist).</summary>
    private readonly record struct FileStamp(string Path, long Length, long WriteTicks)
    {
        public static FileStamp Of(string path)
        {
            var file = new FileInfo(path);
            return file.Exists ? new FileStamp(file.FullName, file.Length, file.LastWriteTimeUtc.Ticks) : new FileStamp(file.FullName, -1, 0);
        }

        public bool Unchanged => Of(Path) == this;

        public override string ToString() => string.Join('\n', Path, Length, WriteTicks);
    }

    public static IKubernetes For(ClusterConfig cluster)
    {
        (string Key, string Kubeconfig)? resolvedKey = ResolvedKey(cluster);
        if (resolvedKey is { } known && s_resolved.TryGetValue(known.Key, out Resolved? resolved) && resolved.Files.All(f => f.Unchanged))
        {
            return resolved.Client;
        }
        // Stamped before the build reads them: a file rotated in between looks changed at the next ask, never current.
        var referenced = resolvedKey is { } k ? ReferencedFiles(k.Kubeconfig, cluster.Context, clientCertificate: ReadToken(cluster) is null) : Array.Empty<(string Key, FileStamp Stamp)>();
        if (referenced.FirstOrDefault(f => f.Stamp.Length < 0) is { Key: not null } gone)
        {
            throw new KfmException("KubeconfigFileNotFound", KfmErrorKind.ObjectNotFound,
                $"The kubeconfig '{resolvedKey!.Value.Kubeconfig}' names '{gone.Stamp.Path}' as its {gone.Key}{(cluster.Context is null ? "" : $" (context '{cluster.Context}')")}, and that file does not exist. " +
                $"Restore it, or point {gone.Key} at the current file (kubectl config set-credentials/set-cluster), then run again.", gone.Stamp.Path);
        }
        IReadOnlyList<FileStamp> files = referenced.Select(f => f.Stamp).ToList();
        KubernetesClientConfiguration configuration = BuildConfiguration(cluster);
        string key = string.Join('\n', configuration.Host, configuration.CurrentContext ?? string.Empty,
            Fingerprint(configuration.AccessToken), Fingerprint(configuration.ClientCertificateData), cluster.InCluster, string.Join('\n', files));
        IKubernetes client = s_clients.GetOrAdd(key, _ => new k8s.Kubernetes(configuration));
        if (resolvedKey is { } r)
        {
            s_resolved[r.Key] = new Resolved(client, files);
        }
        return client;
    }

    /// <summary>Drops cached clients, e.g. after a kubeconfig changed (tests start new labs).</summary>
    public static void Reset()
    {
        s_resolved.Clear();
        foreach (IKubernetes client in s_clients.Values)
        {
            client.Dispose();
        }
        s_clients.Clear();
    }

    /// <summary>
    /// What decides the client of a kubeconfig-based cluster section without parsing the file: its path,
    /// size and last write, the context, the TLS allowance and the token (read afresh, so a rotated token
    /// gets its client), with the kubeconfig's path. Null (always built afresh) in-cluster or when the file
    /// is missing, so every error BuildConfiguration gives still comes from it.
    /// </summary>
    private static (string Key, string Kubeconfig)? ResolvedKey(ClusterConfig cluster)
    {
        if (cluster.InCluster)
        {
            return null;
        }
        string home = System.Environment.GetFolderPath(System.Environment.SpecialFolder.UserProfile);
        string? path = cluster.ResolveKubeconfigPath(System.Environment.GetEnvironmentVariable("KUBECONFIG"), home);
        var file = path is null ? null : new FileInfo(path);
        if (file is not { Exists: true })
        {
            return null;
        }
        return (string.Join('\n', file.FullName, file.Length, file.LastWriteTimeUtc.Ticks, cluster.Context ?? string.Empty, cluster.AllowInsecureTls, Fingerprint(ReadToken(cluster))),
            file.FullName);
    }

    /// <summary>
    /// The files the kubeconfig's context names by path (its cluster's certificate-authority, its user's
    /// client-certificate and client-key unless a token replaces that user; relative ones from the kubeconfig's
    /// folder, as kubectl reads them), stamped: a certificate rotated under an unchanged kubeconfig gets a new
    /// client. None when the file cannot be read as a kubeconfig: BuildConfiguration then says why.
    /// </summary>
    private static (string Key, FileStamp Stamp)[] ReferencedFiles(string kubeconfig, string? context, bool clientCertificate)
    {
        K8SConfiguration config;
        try { config = KubernetesClientConfiguration.LoadKubeConfig(new FileInfo(kubeconfig)); }
        catch (Exception ex) when (ex is k8s.Exceptions.KubeConfigException or IOException or UnauthorizedAccessException or YamlDotNet.Core.YamlException)
        {
            return Array.Empty<(string, FileStamp)>();
        }
        string? name = context ?? config.CurrentContext;
        ContextDetails? details = config.Contexts?.FirstOrDefault(c => c.Name == name)?.ContextDetails;
        if (details is null)
        {
            return Array.Empty<(string, FileStamp)>();
        }
        ClusterEndpoint? endpoint = config.Clusters?.FirstOrDefault(c => c.Name == details.Cluster)?.ClusterEndpoint;
        // A bearer token from cluster.token_env/token_file replaces the kubeconfig user (BuildConfiguration), so its files do not count.
        UserCredentials? user = clientCertificate ? config.Users?.FirstOrDefault(u => u.Name == details.User)?.UserCredentials : null;
        string folder = Path.GetDirectoryName(kubeconfig) ?? ".";
        return new[] { ("certificate-authority", endpoint?.CertificateAuthority), ("client-certificate", user?.ClientCertificate), ("client-key", user?.ClientKey) }
            .Where(named => !string.IsNullOrWhiteSpace(named.Item2))
            .Select(named => (named.Item1, FileStamp.Of(Path.IsPathRooted(named.Item2) ? named.Item2! : Path.Combine(folder, named.Item2!))))
            .ToArray();
    }

    public static KubernetesClientConfiguration BuildConfiguration(ClusterConfig cluster)
    {
        KubernetesClientConfiguration configuration;
        try
        {
            if (cluster.InCluster)
            {
                if (!KubernetesClientConfiguration.IsInCluster())
                {
                    throw new KfmException("ClusterNotInCluster", KfmErrorKind.InvalidOperation,
                        "cluster.in_cluster is set, but this process does not run in a Kubernetes pod (no service account token). " +
                        "Use cluster.kubeconfig_path and cluster.context outside the cluster.");
                }
                configuration = KubernetesClientConfiguration.InClusterConfig();
            }
            else
            {
                string home = System.Environment.GetFolderPath(System.Environment.SpecialFolder.UserProfile);
                string? path = cluster.ResolveKubeconfigPath(System.Environment.GetEnvironmentVariable("KUBECONFIG"), home);
                if (path is null || !File.Exists(path))
                {
                    throw new KfmException("KubeconfigNotFound", KfmErrorKind.ObjectNotFound,
                        $"No kubeconfig at '{path}'. Set cluster.kubeconfig_path, $KUBECONFIG, or cluster.in_cluster.", path);
                }
                configuration = KubernetesClientConfiguration.BuildConfigFromConfigFile(path, cluster.Context);
            }
        }
        catch (k8s.Exceptions.KubeConfigException ex)
        {
            // The message names contexts and files, never credentials.
            throw new KfmException("KubeconfigInvalid", KfmErrorKind.InvalidData,
                $"The kubeconfig cannot be used: {ex.Message} Check cluster.context against 'kubectl config get-contexts'.", cluster.Context, ex);
        }

        // insecure-skip-tls-verify: the token goes to whoever answers. Only an environment that says so accepts it.
        if (configuration.SkipTlsVerify && !cluster.AllowInsecureTls)
        {
            throw new KfmException("ClusterInsecureTls", KfmErrorKind.SecurityError,
                $"The kubeconfig{(cluster.Context is null ? "" : $" context '{cluster.Context}'")} sets insecure-skip-tls-verify, so the apiserver's certificate would not be checked and its credentials could go to anyone on the path. " +
                "Give the kubeconfig the cluster's certificate-authority(-data), or set cluster.allow_insecure_tls: true for this environment (receipts record it).", cluster.Context);
        }

        string? token = ReadToken(cluster);
        if (token is not null)
        {
            configuration.AccessToken = token;
            configuration.TokenProvider = null;
            configuration.ClientCertificateData = null;
            configuration.ClientCertificateKeyData = null;
            configuration.ClientCertificateFilePath = null;
            configuration.ClientKeyFilePath = null;
            configuration.Username = null;
            configuration.Password = null;
        }
        return configuration;
    }

    /// <summary>True when the environment reaches its cluster without TLS verification (allowed, and the kubeconfig asks for it).</summary>
    public static bool SkipsTlsVerification(ClusterConfig cluster)
    {
        if (!cluster.AllowInsecureTls) return false;
        try { return BuildConfiguration(cluster).SkipTlsVerify; }
        catch (KfmException) { return true; } // allowed, and the kubeconfig cannot be read now: record it as allowed
    }

    private static string? ReadToken(ClusterConfig cluster)
    {
        if (cluster.TokenEnv is { } variable)
        {
            string? value = System.Environment.GetEnvironmentVariable(variable);
            if (string.IsNullOrWhiteSpace(value))
            {
                throw new KfmException("ClusterTokenMissing", KfmErrorKind.InvalidArgument,
                    $"cluster.token_env names ${variable}, which is empty. Set it to the bearer token, or remove token_env to use the kubeconfig user.", variable);
            }
            return value.Trim();
        }
        if (cluster.TokenFile is { } file)
        {
            try
            {
                return File.ReadAllText(file).Trim();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new KfmException("ClusterTokenUnreadable", KfmErrorKind.ReadError,
                    $"Cannot read cluster.token_file '{file}': {ex.Message}", file, ex);
            }
        }
        return null;
    }

    // Keys the cache without keeping the secret itself in the key.
    private static string Fingerprint(string? secret) =>
        secret is null ? string.Empty : Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(secret)))[..16];
}
