using System.Collections.Concurrent;
using k8s;
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
    // The client a cluster section resolved to, while its kubeconfig file (path, size, write time) and
    // token are unchanged: a fleet asks for its client several times per environment, and parsing the
    // kubeconfig and loading its certificates each time cost about 1.5 ms of CPU per ask.
    private static readonly ConcurrentDictionary<string, IKubernetes> s_resolved = new(StringComparer.Ordinal);

    public static IKubernetes For(ClusterConfig cluster)
    {
        string? resolvedKey = ResolvedKey(cluster);
        if (resolvedKey is not null && s_resolved.TryGetValue(resolvedKey, out IKubernetes? resolved))
        {
            return resolved;
        }
        KubernetesClientConfiguration configuration = BuildConfiguration(cluster);
        string key = string.Join('\n', configuration.Host, configuration.CurrentContext ?? string.Empty,
            Fingerprint(configuration.AccessToken), Fingerprint(configuration.ClientCertificateData), cluster.InCluster);
        IKubernetes client = s_clients.GetOrAdd(key, _ => new k8s.Kubernetes(configuration));
        if (resolvedKey is not null)
        {
            s_resolved[resolvedKey] = client;
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
    /// gets its client). Null (always built afresh) in-cluster or when the file is missing, so every
    /// error BuildConfiguration gives still comes from it.
    /// </summary>
    private static string? ResolvedKey(ClusterConfig cluster)
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
        return string.Join('\n', file.FullName, file.Length, file.LastWriteTimeUtc.Ticks, cluster.Context ?? string.Empty, cluster.AllowInsecureTls, Fingerprint(ReadToken(cluster)));
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
