using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using LibGit2Sharp;
using YamlDotNet.RepresentationModel;

namespace KfmRollback.Lab.Controllers;

/// <summary>The files of one directory at one commit of a Git repository.</summary>
public sealed record GitSnapshot(string Sha, IReadOnlyDictionary<string, byte[]> Files);

/// <summary>
/// What Argo CD's repo-server and Flux's source-controller do for the lab: resolve a revision of a
/// real Git repository (a local bare repository, file://, or an http(s) remote on a loopback host,
/// mirrored under <c>cacheDir</c> and fetched at most every <c>fetchInterval</c>) and hand out the
/// files of one directory at that commit. Any other URL (a real code host) is not a lab source:
/// <see cref="IsLabSource"/> is false and the controllers keep their annotation/spec behaviour.
/// </summary>
public sealed class GitSource(string cacheDir, TimeSpan? fetchInterval = null)
{
    readonly TimeSpan _fetchInterval = fetchInterval ?? TimeSpan.FromMilliseconds(300);
    readonly ConcurrentDictionary<string, long> _lastFetch = new();
    readonly ConcurrentDictionary<(string, string, string), GitSnapshot> _snapshots = new();

    public static bool IsLabSource(string? url)
    {
        if (string.IsNullOrEmpty(url)) return false;
        if (Path.IsPathRooted(url)) return true;
        if (!Uri.TryCreate(url, UriKind.Absolute, out var u)) return false;
        return u.Scheme == Uri.UriSchemeFile || (u.Scheme is "http" or "https" && (u.IsLoopback || u.Host == "localhost"));
    }

    /// <summary>The commit <paramref name="revision"/> (a branch, HEAD, or a commit id) names, and the files directly in <paramref name="dir"/>.</summary>
    /// <exception cref="GitSourceException">the repository or revision cannot be read</exception>
    public GitSnapshot Snapshot(string url, string revision, string dir)
    {
        var (path, remote) = Local(url);
        try
        {
            using var repo = new Repository(path);
            var commit = Resolve(repo, revision, remote) ?? throw new GitSourceException($"unable to resolve '{revision}' to a commit SHA");
            dir = dir.StartsWith("./", StringComparison.Ordinal) ? dir[2..] : dir;
            dir = dir.Trim('/') is "." or "" ? "" : dir.Trim('/');
            return _snapshots.GetOrAdd((path, commit.Sha, dir), _ =>
            {
                var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                var tree = dir == "" ? commit.Tree : (commit[dir]?.Target as Tree);
                foreach (var e in tree ?? Enumerable.Empty<TreeEntry>())
                    if (e.TargetType == TreeEntryTargetType.Blob)
                    {
                        using var s = ((Blob)e.Target).GetContentStream();
                        using var m = new MemoryStream();
                        s.CopyTo(m);
                        files[e.Name] = m.ToArray();
                    }
                return new GitSnapshot(commit.Sha, files);
            });
        }
        catch (LibGit2SharpException e) { throw new GitSourceException(e.Message); }
    }

    static Commit? Resolve(Repository repo, string revision, bool remote)
    {
        if (revision.Length >= 7 && revision.All(Uri.IsHexDigit))
        {
            try { return repo.Lookup<Commit>(revision); } catch (LibGit2SharpException) { return null; }
        }
        if (revision is "" or "HEAD")
            return remote ? (repo.Refs["refs/remotes/origin/HEAD"]?.ResolveToDirectReference()?.Target as Commit ?? Resolve(repo, "main", remote)) : repo.Head.Tip;
        var name = revision.StartsWith("refs/heads/", StringComparison.Ordinal) ? revision["refs/heads/".Length..] : revision;
        var r = repo.Refs[remote ? "refs/remotes/origin/" + name : "refs/heads/" + name];
        return r?.ResolveToDirectReference()?.Target as Commit;
    }

    /// <summary>The repository to open: the path itself, or the fetched mirror of an http remote.</summary>
    (string Path, bool Remote) Local(string url)
    {
        if (Path.IsPathRooted(url)) return (url, false);
        var u = new Uri(url);
        if (u.Scheme == Uri.UriSchemeFile) return (u.LocalPath, false);
        var mirror = Path.Combine(cacheDir, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(url)))[..16]);
        var options = new FetchOptions { CredentialsProvider = Credentials(u) };
        var plain = new UriBuilder(u) { UserName = "", Password = "" }.Uri.ToString();
        try
        {
            if (!Directory.Exists(mirror))
            {
                Directory.CreateDirectory(cacheDir);
                Repository.Clone(plain, mirror, new CloneOptions(options) { IsBare = true });
                _lastFetch[url] = Stopwatch.GetTimestamp();
            }
            else if (Stopwatch.GetElapsedTime(_lastFetch.GetValueOrDefault(url)) >= _fetchInterval)
            {
                using var repo = new Repository(mirror);
                Commands.Fetch(repo, "origin", ["+refs/heads/*:refs/remotes/origin/*"], options, null);
                _lastFetch[url] = Stopwatch.GetTimestamp();
            }
        }
        catch (LibGit2SharpException e) { throw new GitSourceException(e.Message.Replace(u.UserInfo, "***")); }
        return (mirror, true);
    }

    static LibGit2Sharp.Handlers.CredentialsHandler? Credentials(Uri u)
    {
        if (string.IsNullOrEmpty(u.UserInfo)) return null;
        var parts = u.UserInfo.Split(':', 2);
        var creds = new UsernamePasswordCredentials { Username = Uri.UnescapeDataString(parts[0]), Password = parts.Length > 1 ? Uri.UnescapeDataString(parts[1]) : "" };
        return (_, _, _) => creds;
    }

    /// <summary>YAML (all documents) as JSON nodes, scalars as strings; null when the text is not YAML.</summary>
    public static IReadOnlyList<JsonNode?>? Yaml(byte[] bytes)
    {
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(Encoding.UTF8.GetString(bytes).TrimStart('\uFEFF')));
            return stream.Documents.Select(d => ToJson(d.RootNode)).ToList();
        }
        catch (YamlDotNet.Core.YamlException) { return null; }
    }

    static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode m => new JsonObject(m.Children.Select(kv => KeyValuePair.Create(((YamlScalarNode)kv.Key).Value ?? "", ToJson(kv.Value)))),
        YamlSequenceNode s => new JsonArray(s.Children.Select(ToJson).ToArray()),
        YamlScalarNode { Value: null or "~" or "null" } sc when sc.Style == YamlDotNet.Core.ScalarStyle.Plain => null,
        YamlScalarNode sc => JsonValue.Create(sc.Value),
        _ => null,
    };
}

/// <summary>A Git source could not be read (the controllers report it as a condition, as Argo's ComparisonError).</summary>
public sealed class GitSourceException(string message) : Exception(message);
